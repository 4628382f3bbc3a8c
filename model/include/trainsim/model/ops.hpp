#pragma once
// The operation vocabulary shared by the accounting, the memory model, the
// workload builder and the report. Costs are computed once per layer, as a
// list of Op values, and every consumer reads the same numbers: the analytic
// totals (FLOPs per token, MFU) and the event-level workload can never
// disagree about FLOPs.
//
// An Op is one kernel-sized piece of work on ONE GPU for ONE micro-batch,
// in one pass:
//   Forward         - the forward pass;
//   BackwardInput   - backward for the inputs (dgrad; "B" minus "W");
//   BackwardWeight  - backward for the weights (wgrad; "W" in zero-bubble
//                     and DualPipe terminology).
// Recomputation appears as Forward-kind work emitted into the BackwardInput
// pass with `recompute = true`: it costs time but is not model FLOPs.
#include <cstdint>
#include <string>
#include <vector>

#include "trainsim/common/precision.hpp"
#include "trainsim/common/units.hpp"

namespace trainsim::model {

enum class Pass { Forward, BackwardInput, BackwardWeight };
enum class OpKind {
  Gemm,         // dense matrix multiply, shape gemm
  GroupedGemm,  // gemm.groups GEMMs of gemm.m rows each (MoE experts)
  Attention,    // fused attention core (softmax(QK^T)V), shape attn
  Memory,       // bandwidth-bound elementwise/norm/cast/permute work: hbm_bytes
  Comm          // a communication the compute stream must wait for: comm
};
using trainsim::Precision;
enum class CommKind {
  None,
  EpDispatch,       // MoE all-to-all dispatch (tokens to experts)
  EpCombine,        // MoE all-to-all combine (expert outputs back)
  TpAllReduce,      // tensor-parallel all-reduce of activations
  TpAllGather,      // sequence-parallel all-gather
  TpReduceScatter,  // sequence-parallel reduce-scatter
  // Data-parallel gradient synchronisation after the last backward (issued by
  // the cluster executor, never by the per-layer accounting).
  DpReduceScatter,
  DpAllGather,
  DpAllReduce
};

const char* to_string(Pass p);
const char* to_string(OpKind k);
const char* to_string(CommKind c);

struct GemmShape {
  std::int64_t m = 0;       // rows (tokens) per group
  std::int64_t n = 0;       // output features
  std::int64_t k = 0;       // reduction dimension
  std::int64_t groups = 1;  // >1 for grouped GEMMs
};

struct AttentionShape {
  std::int64_t batch = 0;     // sequences in the micro-batch (on this GPU)
  std::int64_t heads = 0;     // query heads on this GPU
  std::int64_t seq_q = 0;
  std::int64_t seq_kv = 0;
  std::int64_t head_dim_qk = 0;
  std::int64_t head_dim_v = 0;
  bool causal = true;
};

struct CommSpec {
  CommKind kind = CommKind::None;
  // Bytes this GPU sends for the operation, counted the way the calibration
  // source counts them (for EP: tokens x distinct target nodes x bytes per
  // token, the "logical RDMA bytes" of DeepEP's benchmark).
  ByteCount bytes{};
  int group_size = 1;  // GPUs taking part (EP or TP degree)
};

struct Op {
  std::string name;  // stable dotted name, e.g. "mla.wq_b", "moe.experts.up"
  OpKind kind = OpKind::Memory;
  Pass pass = Pass::Forward;
  Precision precision = Precision::BF16;
  GemmShape gemm{};
  AttentionShape attn{};
  CommSpec comm{};
  Flops flops{};           // FLOPs executed (recompute included)
  Flops model_flops{};     // FLOPs counted as model work (0 for recompute)
  ByteCount hbm_bytes{};   // bytes read + written in HBM (Memory ops; informative otherwise)
  bool recompute = false;
};

}  // namespace trainsim::model
