#include "trainsim/model/ops.hpp"
#include "trainsim/model/parallel.hpp"

namespace trainsim::model {

const char* to_string(Pass p) {
  switch (p) {
    case Pass::Forward: return "forward";
    case Pass::BackwardInput: return "backward_input";
    case Pass::BackwardWeight: return "backward_weight";
  }
  return "?";
}

const char* to_string(OpKind k) {
  switch (k) {
    case OpKind::Gemm: return "gemm";
    case OpKind::GroupedGemm: return "grouped_gemm";
    case OpKind::Attention: return "attention";
    case OpKind::Memory: return "memory";
    case OpKind::Comm: return "comm";
  }
  return "?";
}

const char* to_string(CommKind c) {
  switch (c) {
    case CommKind::None: return "none";
    case CommKind::EpDispatch: return "ep_dispatch";
    case CommKind::EpCombine: return "ep_combine";
    case CommKind::TpAllReduce: return "tp_all_reduce";
    case CommKind::TpAllGather: return "tp_all_gather";
    case CommKind::TpReduceScatter: return "tp_reduce_scatter";
    case CommKind::DpReduceScatter: return "dp_reduce_scatter";
    case CommKind::DpAllGather: return "dp_all_gather";
    case CommKind::DpAllReduce: return "dp_all_reduce";
  }
  return "?";
}

const char* to_string(ScheduleKind s) {
  switch (s) {
    case ScheduleKind::GPipe: return "gpipe";
    case ScheduleKind::OneFOneB: return "1f1b";
    case ScheduleKind::Interleaved: return "interleaved";
    case ScheduleKind::ZB1P: return "zb1p";
    case ScheduleKind::DualPipe: return "dualpipe";
    case ScheduleKind::DualPipeV: return "dualpipev";
  }
  return "?";
}

const char* to_string(Recompute r) {
  switch (r) {
    case Recompute::None: return "none";
    case Recompute::Selective: return "selective";
    case Recompute::Full: return "full";
  }
  return "?";
}

}  // namespace trainsim::model
