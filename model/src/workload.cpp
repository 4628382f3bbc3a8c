#include "trainsim/model/workload.hpp"

#include <algorithm>
#include <stdexcept>

#include "trainsim/sim/engine.hpp"

namespace trainsim::model {

TimedOp time_op(const Op& op, const hw::KernelTimer& timer, const TimingContext& ctx) {
  TimedOp t;
  t.op = op;
  switch (op.kind) {
    case OpKind::Gemm:
    case OpKind::GroupedGemm:
      t.duration = timer.gemm(op.gemm.m, op.gemm.n, op.gemm.k, op.gemm.groups, op.precision,
                              op.pass == Pass::BackwardWeight);
      break;
    case OpKind::Attention:
      t.duration = timer.attention(op.flops.value(), op.pass != Pass::Forward);
      break;
    case OpKind::Memory:
      t.duration = timer.memory(op.hbm_bytes);
      break;
    case OpKind::Comm: {
      t.stream = Stream::Comm;
      const auto& c = *ctx.cluster;
      const BytesPerSecond nic = c.network.nic_bandwidth;
      const BytesPerSecond nvl = c.gpu.nvlink_unidir;
      switch (op.comm.kind) {
        case CommKind::EpDispatch:
          t.duration = timer.ep_dispatch(op.comm.bytes, op.comm.group_size, c.gpus_per_node, nic, nvl, ctx.comm_sms);
          break;
        case CommKind::EpCombine:
          t.duration = timer.ep_combine(op.comm.bytes, op.comm.group_size, c.gpus_per_node, nic, nvl, ctx.comm_sms);
          break;
        case CommKind::TpAllReduce:
        case CommKind::TpAllGather:
        case CommKind::TpReduceScatter: {
          // Ring collective inside a node over NVLink: each GPU moves
          // (n-1)/n of the buffer per phase; all-reduce has two phases.
          const double n = op.comm.group_size;
          const double phases = op.comm.kind == CommKind::TpAllReduce ? 2.0 : 1.0;
          const double bytes = op.comm.bytes.value() * phases * (n - 1) / n;
          t.duration = n <= 1 ? Time::zero()
                              : Time::seconds(bytes / nvl.value()) + c.gpu.nvlink_latency * static_cast<std::int64_t>(phases * (n - 1));
          break;
        }
        case CommKind::None:
        case CommKind::DpReduceScatter:
        case CommKind::DpAllGather:
        case CommKind::DpAllReduce:
          break;
      }
      break;
    }
  }
  return t;
}

ChunkProgram build_program(const std::vector<std::vector<TimedOp>>& layer_ops, ChunkPass pass) {
  ChunkProgram p;
  p.pass = pass;
  auto append = [&](int layer, Pass which) {
    for (const auto& t : layer_ops[static_cast<std::size_t>(layer)]) {
      if (t.op.pass != which) continue;
      p.ops.push_back(t);
      p.ops.back().layer = layer;
    }
  };
  const int n = static_cast<int>(layer_ops.size());
  switch (pass) {
    case ChunkPass::Forward:
      for (int l = 0; l < n; ++l) append(l, Pass::Forward);
      break;
    case ChunkPass::BackwardInput:
      for (int l = n - 1; l >= 0; --l) append(l, Pass::BackwardInput);
      break;
    case ChunkPass::BackwardWeight:
      for (int l = n - 1; l >= 0; --l) append(l, Pass::BackwardWeight);
      break;
    case ChunkPass::BackwardFull:
      for (int l = n - 1; l >= 0; --l) {
        append(l, Pass::BackwardInput);
        append(l, Pass::BackwardWeight);
      }
      break;
  }
  return p;
}

namespace {

// Event-driven list scheduling of chains on two streams.
class ChunkSimulator {
 public:
  ChunkSimulator(const std::vector<const ChunkProgram*>& programs, bool keep)
      : programs_(programs), keep_(keep), next_(programs.size(), 0), ready_at_(programs.size()),
        running_(programs.size(), 0), allow_(programs.size(), 0), queued_(programs.size(), 0) {}

  ChunkSimResult run() {
    for (std::size_t p = 0; p < programs_.size(); ++p) make_ready(static_cast<int>(p));
    dispatch();
    engine_.run();
    for (std::size_t p = 0; p < programs_.size(); ++p)
      if (next_[p] != programs_[p]->ops.size() || running_[p] != 0)
        throw std::logic_error("chunk simulation ended with ops left");
    result_.makespan = engine_.now();
    return std::move(result_);
  }

 private:
  struct StreamState {
    bool busy = false;
    Time idle_since{};
  };

  // Queues program p's next op when it may start: nothing of p in flight,
  // or one op in flight that lets the next start with it.
  void make_ready(int p) {
    const auto pi = static_cast<std::size_t>(p);
    if (queued_[pi] || next_[pi] >= programs_[pi]->ops.size()) return;
    if (running_[pi] != 0 && !(running_[pi] == 1 && allow_[pi])) return;
    ready_at_[pi] = engine_.now();
    queued_[pi] = 1;
    waiting_.push_back(p);
  }

  // Starts the earliest-ready op on each idle stream.
  void dispatch() {
    for (Stream s : {Stream::Compute, Stream::Comm}) {
      StreamState& st = state(s);
      if (st.busy) continue;
      int best = -1;
      for (int p : waiting_) {
        const auto& op = programs_[static_cast<std::size_t>(p)]->ops[next_[static_cast<std::size_t>(p)]];
        if (op.stream != s) continue;
        if (best < 0) { best = p; continue; }
        const Time a = ready_at_[static_cast<std::size_t>(p)], b = ready_at_[static_cast<std::size_t>(best)];
        const bool p_bwd = programs_[static_cast<std::size_t>(p)]->pass != ChunkPass::Forward;
        const bool b_bwd = programs_[static_cast<std::size_t>(best)]->pass != ChunkPass::Forward;
        if (a < b || (a == b && p_bwd && !b_bwd)) best = p;
      }
      if (best < 0) continue;
      waiting_.erase(std::find(waiting_.begin(), waiting_.end(), best));
      queued_[static_cast<std::size_t>(best)] = 0;
      start(best, s);
    }
  }

  void start(int p, Stream s) {
    const auto pi = static_cast<std::size_t>(p);
    const std::size_t i = next_[pi];
    const TimedOp& op = programs_[pi]->ops[i];
    StreamState& st = state(s);
    if (s == Stream::Compute && engine_.now() > st.idle_since && i > 0) {
      // The compute stream sat idle; if this program's previous op was a
      // communication, that wait is exposed communication.
      const TimedOp& prev = programs_[pi]->ops[i - 1];
      if (prev.stream == Stream::Comm && !prev.concurrent_with_next) {
        attribute(prev.op.comm.kind, engine_.now() - st.idle_since);
      }
    }
    st.busy = true;
    const Time begin = engine_.now();
    ++next_[pi];
    ++running_[pi];
    allow_[pi] = op.concurrent_with_next ? 1 : 0;
    const int index = static_cast<int>(i);
    engine_.schedule(op.duration, [this, p, s, begin, index] { finish(p, s, begin, index); });
    make_ready(p);  // the next op, when this one lets it start along
  }

  void attribute(CommKind k, Time gap) {
    switch (k) {
      case CommKind::EpDispatch: result_.exposed.ep_dispatch += gap; break;
      case CommKind::EpCombine: result_.exposed.ep_combine += gap; break;
      default: result_.exposed.tp += gap; break;
    }
  }

  void finish(int p, Stream s, Time begin, int index) {
    const auto pi = static_cast<std::size_t>(p);
    StreamState& st = state(s);
    st.busy = false;
    st.idle_since = engine_.now();
    (s == Stream::Compute ? result_.compute_busy : result_.comm_busy) += engine_.now() - begin;
    if (keep_) result_.intervals.push_back(OpInterval{p, index, begin, engine_.now()});
    --running_[pi];
    make_ready(p);
    dispatch();
  }

  StreamState& state(Stream s) { return s == Stream::Compute ? compute_ : comm_; }

  const std::vector<const ChunkProgram*>& programs_;
  bool keep_;
  std::vector<std::size_t> next_;
  std::vector<Time> ready_at_;
  std::vector<int> running_;              // ops of each program in flight
  std::vector<unsigned char> allow_;      // its last started op lets the next start along
  std::vector<unsigned char> queued_;     // its next op is in waiting_
  std::vector<int> waiting_;
  StreamState compute_, comm_;
  sim::Engine engine_;
  ChunkSimResult result_;
};

}  // namespace

ChunkSimResult simulate_chunks(const std::vector<const ChunkProgram*>& programs, bool keep_intervals) {
  return ChunkSimulator(programs, keep_intervals).run();
}

}  // namespace trainsim::model
