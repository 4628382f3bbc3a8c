#include "trainsim/model/step.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <tuple>
#include <stdexcept>

#include "trainsim/hardware/topology.hpp"
#include "trainsim/common/random.hpp"
#include "trainsim/model/cluster_exec.hpp"
#include "trainsim/model/cluster_layout.hpp"
#include "trainsim/model/moe_traffic.hpp"

namespace trainsim::model {

std::vector<LayerKind> layer_sequence(const Architecture& arch) {
  std::vector<LayerKind> seq;
  seq.push_back(LayerKind::Embedding);
  for (int i = 0; i < arch.dense_layer_count(); ++i) seq.push_back(LayerKind::Dense);
  for (int i = 0; i < arch.moe_layer_count(); ++i) seq.push_back(LayerKind::Moe);
  seq.push_back(LayerKind::Head);
  for (int i = 0; i < arch.mtp_depth; ++i) seq.push_back(LayerKind::Mtp);
  return seq;
}

namespace {

// Parameters of routed experts in one layer (all experts, unsharded).
double routed_expert_params(const Architecture& a, LayerKind k) {
  if (!a.moe) return 0;
  if (k != LayerKind::Moe && k != LayerKind::Mtp) return 0;
  const double mats = a.activation == FfnActivation::SwiGLU ? 3.0 : 2.0;
  return static_cast<double>(a.moe->routed_experts) * mats * a.hidden * static_cast<double>(a.moe->expert_ffn_hidden);
}

// Parameters of layer `k` held by one GPU of a stage (routed experts split
// over the EP group, the rest over the TP group).
void add_layer_params(StageCost& sc, const Architecture& arch, const ParallelPlan& plan, LayerKind k) {
  const ParamCount pc = layer_params(arch, k);
  const double routed = routed_expert_params(arch, k);
  sc.expert_params_per_gpu += routed / plan.ep;
  sc.params_per_gpu += (pc.total - routed) / plan.tp + routed / plan.ep;
}

// Overlapped F&B pairs of the schedule, each simulated alone on one GPU's
// two streams: reported per pair (the step itself runs on the cluster).
void pair_costs(StepResult& r) {
  std::map<std::pair<int, int>, bool> seen;
  for (const auto& ops : r.schedule.per_rank)
    for (const ScheduleOp& op : ops) {
      if (op.type != ChunkOpType::FB || seen[{op.fwd.stage, op.bwd.stage}]) continue;
      seen[{op.fwd.stage, op.bwd.stage}] = true;
      const ChunkProgram& f = r.program_f[static_cast<std::size_t>(op.fwd.stage)];
      const ChunkProgram& bw = r.program_bw[static_cast<std::size_t>(op.bwd.stage)];
      const auto res = simulate_chunks({&f, &bw}, true);
      r.pairs.push_back(PairCost{op.fwd.stage, op.bwd.stage, res.makespan, res.compute_busy, res.comm_busy, res.exposed});
      // The communication stream's order in the pair as simulated with the
      // profile's times: the static arrangement every GPU then follows.
      std::vector<OpInterval> comm;
      for (const OpInterval& iv : res.intervals) {
        const ChunkProgram& prog = iv.program == 0 ? f : bw;
        if (prog.ops[static_cast<std::size_t>(iv.op)].stream == Stream::Comm) comm.push_back(iv);
      }
      std::stable_sort(comm.begin(), comm.end(), [](const OpInterval& a, const OpInterval& b) { return a.start < b.start; });
      auto& order = r.fb_comm_order[{op.fwd.stage, op.bwd.stage}];
      for (const OpInterval& iv : comm) order.emplace_back(iv.program, iv.op);
    }
}

// Copies of a stage along the pipeline: 2 under DualPipe (rank r and rank
// pp-1-r both hold stage r), 1 otherwise; the schedule says.
int stage_copies(const Schedule& s) {
  std::vector<int> holders(static_cast<std::size_t>(s.stages), 0);
  for (int rk = 0; rk < s.ranks; ++rk)
    for (int st : s.stages_of_rank(rk)) ++holders[static_cast<std::size_t>(st)];
  return *std::max_element(holders.begin(), holders.end());
}

// Sizes of the data-parallel gradient groups: dense over the replicas of
// every rank holding the same stages, routed experts over those with the
// same EP rank.
struct DpGroups {
  int dense = 1, expert = 1;
};
DpGroups dp_groups(const ParallelPlan& plan, const Schedule& s) {
  const int copies = stage_copies(s);
  return {plan.dp * copies, std::max(1, plan.dp * plan.tp / plan.ep) * copies};
}

// Gradient synchronisation and optimizer work of each pipeline rank.
// Gradients are reduced in FP32 and parameters gathered in BF16
// (DeepSeek-V3 report §3.3: FP32 weight gradients, BF16 compute weights).
// AdamW over this GPU's shard reads FP32 master weight and gradient and BF16
// moments and writes master, moments and the BF16 weight: 4+4+2+2 read,
// 4+2+2+2 written = 22 bytes per parameter (BF16 moments per the V3 report).
std::vector<TailWork> tail_work(const StepResult& r, const ParallelPlan& plan, const hw::KernelTimer& timer) {
  constexpr double kGradBytes = 4.0, kParamBytes = 2.0, kAdamBytes = 22.0;
  std::vector<TailWork> out;
  for (int rk = 0; rk < r.schedule.ranks; ++rk) {
    double dense = 0, expert = 0;
    for (int s : r.schedule.stages_of_rank(rk)) {
      const StageCost& sc = r.stages[static_cast<std::size_t>(s)];
      dense += sc.params_per_gpu - sc.expert_params_per_gpu;
      expert += sc.expert_params_per_gpu;
    }
    TailWork t;
    t.all_reduce = plan.zero_stage == 0;
    // ZeRO-3 moves gradients and parameters layer by layer during the
    // chunks (layer_shards); the tail keeps the optimizer. Overlapped
    // gradient reduction moves the gradients during the last backward; the
    // tail keeps the parameter all-gathers.
    const bool zero3 = plan.zero_stage >= 3;
    const bool dense_sync = r.dp_group_dense > 1 && !zero3, expert_sync = r.dp_group_expert > 1 && !zero3;
    const bool grads_in_tail = !plan.overlap_grad_reduce;
    t.dense_grad_bytes = dense_sync && grads_in_tail ? dense * kGradBytes : 0;
    t.expert_grad_bytes = expert_sync && grads_in_tail ? expert * kGradBytes : 0;
    t.dense_param_bytes = dense_sync && !t.all_reduce ? dense * kParamBytes : 0;
    t.expert_param_bytes = expert_sync && !t.all_reduce ? expert * kParamBytes : 0;
    const double shard = plan.zero_stage >= 1 ? dense / r.dp_group_dense + expert / r.dp_group_expert : dense + expert;
    t.optimizer = timer.memory(ByteCount(shard * kAdamBytes));
    out.push_back(t);
  }
  return out;
}

// Per-layer data-parallel collectives (ZeRO-3, or overlapped gradient
// reduction): what one GPU moves per layer of a stage: its BF16 parameters
// gathered and FP32 gradients reduced, dense over the dense data-parallel
// group and routed experts over the expert group (nothing over a group of
// one). Empty when the plan has no per-layer collectives or no group has
// peers.
std::vector<LayerShard> layer_shards(const std::vector<LayerKind>& kinds, const Architecture& arch,
                                     const ParallelPlan& plan, int dp_dense, int dp_expert) {
  constexpr double kGradBytes = 4.0, kParamBytes = 2.0;
  std::vector<LayerShard> out;
  if ((plan.zero_stage < 3 && !plan.overlap_grad_reduce) || (dp_dense <= 1 && dp_expert <= 1)) return out;
  for (LayerKind k : kinds) {
    StageCost sc;
    add_layer_params(sc, arch, plan, k);
    const double dense = dp_dense > 1 ? sc.params_per_gpu - sc.expert_params_per_gpu : 0.0;
    const double expert = dp_expert > 1 ? sc.expert_params_per_gpu : 0.0;
    out.push_back(LayerShard{dense * kParamBytes, expert * kParamBytes, dense * kGradBytes, expert * kGradBytes});
  }
  return out;
}

// Rings for tensor- and data-parallel collectives; the MoE all-to-all as
// DeepEP moves it (model/moe_traffic). Balanced routing has one state; a
// skewed routing model has `routing_states` drawn states, and each (EP
// group, layer, micro-batch) picks one of them by a counter-based hash, so
// every group sees its own sequence of imbalances and the bundles and
// kernel times of a state are computed once (docs: the pool bounds the cost
// of full-fidelity skew at states x groups bundles).
class StepTraffic {
 public:
  StepTraffic(const StepInputs& in, const hw::Topology& topo, const ClusterLayout& layout,
              const hw::KernelTimer& timer)
      : in_(in), topo_(topo), layout_(layout), timer_(timer) {
    const Architecture& a = *in.arch;
    if (!a.moe || in.plan->ep <= 1) return;
    OpContext c;
    c.micro_batch_size = in.plan->micro_batch_size;
    c.seq_len = in.seq_len;
    c.tp = in.plan->tp;
    c.ep = in.plan->ep;
    c.gpus_per_node = in.cluster->gpus_per_node;
    // The accounting's logical bytes per GPU are tokens x nodes per token x
    // bytes per token; the flow model needs the bytes per token.
    tokens_ = static_cast<double>(in.plan->micro_batch_size) * static_cast<double>(in.seq_len) / in.plan->tp;
    nodes_per_token_ = dispatch_nodes_per_token(a, c);
    base_ = moe_traffic_params(a, layout.ep_members(0), c.gpus_per_node, tokens_, Precision::BF16);
    base_.routing = in.routing;
    skewed_ = in.routing.kind != RoutingKind::Balanced;
  }

  bool skewed() const { return skewed_; }

  CollectiveTraffic operator()(CommKind kind, const std::vector<int>& m, double bytes, int state) const {
    const int n = static_cast<int>(m.size());
    switch (kind) {
      case CommKind::TpAllReduce:
      case CommKind::DpAllReduce: return {ring_transfers(m, bytes, 2), 2 * (n - 1)};
      case CommKind::TpAllGather:
      case CommKind::TpReduceScatter:
      case CommKind::DpReduceScatter:
      case CommKind::DpAllGather: return {ring_transfers(m, bytes, 1), n - 1};
      case CommKind::EpDispatch:
      case CommKind::EpCombine: return moe(kind, m, bytes, state);
      case CommKind::None: break;
    }
    return {};
  }

  int state(int group, int layer, int microbatch) const {
    std::uint64_t h = in_.routing.seed ^ 0x9e3779b97f4a7c15ull;
    for (std::uint64_t v : {static_cast<std::uint64_t>(group), static_cast<std::uint64_t>(layer),
                            static_cast<std::uint64_t>(microbatch)}) {
      h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
      h ^= h >> 31;
    }
    return static_cast<int>(h % static_cast<std::uint64_t>(std::max(1, in_.routing_states)));
  }

  // Expert GEMMs of GPU `gpu` in routing state `state`: rows per local
  // expert from the state's received rows (the mean over the GPU's experts).
  Time retime(int gpu, const TimedOp& t, int st) const {
    if (t.op.kind != OpKind::GroupedGemm) return t.duration;
    const double rows = counts(st).received_rows[static_cast<std::size_t>(layout_.replica_of(gpu) % layout_.ep())];
    const auto m = static_cast<std::int64_t>(std::ceil(rows / static_cast<double>(t.op.gemm.groups)));
    const GemmShape& g = t.op.gemm;
    if (t.op.pass == Pass::BackwardWeight) return timer_.gemm(g.m, g.n, std::max<std::int64_t>(m, 1), g.groups, t.op.precision, true);
    return timer_.gemm(std::max<std::int64_t>(m, 1), g.n, g.k, g.groups, t.op.precision, false);
  }

 private:
  struct State {
    RoutingCounts counts;
    std::vector<double> received_rows;  // per EP rank
  };

  const State& counts(int st) const {
    auto it = states_.find(st);
    if (it != states_.end()) return it->second;
    MoeTrafficParams p = base_;
    p.layer = st;  // the draw of state st
    State s;
    s.counts = routing_counts(topo_, p);
    s.received_rows = moe_traffic(topo_, p, s.counts, MoePhase::Dispatch).received_rows;
    return states_.emplace(st, std::move(s)).first->second;
  }

  CollectiveTraffic moe(CommKind kind, const std::vector<int>& m, double bytes, int st) const {
    MoeTrafficParams p = base_;
    p.ep_group = m;
    p.dispatch_bytes_per_token = bytes / (tokens_ * nodes_per_token_);
    p.combine_bytes_per_token = p.dispatch_bytes_per_token;
    const MoePhase phase = kind == CommKind::EpDispatch ? MoePhase::Dispatch : MoePhase::Combine;
    MoeTraffic t;
    if (skewed_) {
      // The state's counts, moved onto this group's nodes (every EP group
      // spans the same number of whole nodes, in the same order).
      RoutingCounts c = counts(st).counts;
      c.node_ids.clear();
      for (int gpu : m) {
        const int node = topo_.node_of(gpu);
        if (std::find(c.node_ids.begin(), c.node_ids.end(), node) == c.node_ids.end()) c.node_ids.push_back(node);
      }
      t = moe_traffic(topo_, p, c, phase);
    } else {
      t = moe_traffic(topo_, p, phase);
    }
    CollectiveTraffic out;
    out.transfers.reserve(t.transfers.size());
    for (const MoeTransfer& x : t.transfers) out.transfers.push_back(GpuTransfer{x.src_gpu, x.dst_gpu, x.bytes});
    // The IB hop and the NVLink forward are pipelined: one latency.
    out.sequential_steps = 1;
    return out;
  }

  const StepInputs& in_;
  const hw::Topology& topo_;
  const ClusterLayout& layout_;
  const hw::KernelTimer& timer_;
  MoeTrafficParams base_;
  double tokens_ = 0;
  double nodes_per_token_ = 1;
  bool skewed_ = false;
  mutable std::map<int, State> states_;
};

// tp_comm_overlap: an all-gather directly before a GEMM runs with it, and a
// GEMM directly before a reduce-scatter runs with that (both pipelined in
// chunks, as Megatron's ring-exchange overlap does).
void mark_tp_overlap(ChunkProgram& prog) {
  auto& ops = prog.ops;
  for (std::size_t i = 0; i + 1 < ops.size(); ++i) {
    const Op& a = ops[i].op;
    const Op& b = ops[i + 1].op;
    const bool ag_gemm = a.kind == OpKind::Comm && a.comm.kind == CommKind::TpAllGather && b.kind == OpKind::Gemm;
    const bool gemm_rs = a.kind == OpKind::Gemm && b.kind == OpKind::Comm && b.comm.kind == CommKind::TpReduceScatter;
    if (ag_gemm || gemm_rs) ops[i].concurrent_with_next = true;
  }
}

bool is_tp_kind(CommKind k) {
  return k == CommKind::TpAllReduce || k == CommKind::TpAllGather || k == CommKind::TpReduceScatter;
}

void fill_breakdown(StepResult& r, const ClusterLayout& layout, const ClusterExecResult& cr) {
  const auto it = std::find_if(cr.gpus.begin(), cr.gpus.end(),
                               [&](const GpuStats& g) { return g.gpu == cr.critical_gpu; });
  const GpuStats& c = *it;
  StepBreakdown& bd = r.breakdown;
  bd.rank = layout.rank_of(c.gpu);
  bd.compute = c.compute;
  bd.exposed_ep = c.exposed;
  bd.exposed_pp = c.exposed_pp;
  bd.bubble = max(Time::zero(), c.pipeline_end - c.busy - c.exposed_pp);
  // After the pipeline, and under ZeRO-3 inside it: waits for gathers.
  bd.dp_sync = c.sync_end - c.pipeline_end + c.exposed_dp;
  bd.optimizer = c.end - c.sync_end;
}

// The step as one discrete-event execution over the cluster.
// The fabric as the step sees it: the topology, the layout of the GPUs on
// it, the traffic of every collective and the achievable link capacities.
struct Fabric {
  const hw::Topology& topo;
  const ClusterLayout& layout;
  const StepTraffic& traffic;
  std::vector<double> capacity_Bps;

  // A collective of the group of GPU 0 alone on the fabric: the latency plus
  // its most loaded link's bytes over that link's achievable capacity. This
  // is what a chunk's communication kernel costs when nothing else runs; it
  // times the chunk programs for the stage partition and for the order of an
  // overlapped pair, while the step itself runs every collective on the
  // shared fabric.
  Time isolated(CommKind kind, double bytes) const {
    const bool tp = is_tp(kind);
    const std::vector<int> m = tp ? layout.tp_members(0) : layout.ep_members(0);
    return alone(kind, m, bytes);
  }
  // A collective of group `m` alone on the fabric (memoised: the partition
  // search asks for the same gradient syncs once per candidate).
  Time alone(CommKind kind, const std::vector<int>& m, double bytes) const {
    auto key = std::make_tuple(static_cast<int>(kind), m, bytes);
    const auto it = alone_memo.find(key);
    if (it != alone_memo.end()) return it->second;
    const CollectiveTraffic t = traffic(kind, m, bytes, 0);
    const Bundle b = make_bundle(topo, t.transfers, t.sequential_steps, &capacity_Bps);
    return alone_memo.emplace(std::move(key), b.latency + b.idle_time).first->second;
  }
  mutable std::map<std::tuple<int, std::vector<int>, double>, Time> alone_memo;
  // A collective of `gpu`'s dense or expert data-parallel group alone (zero
  // bytes: nothing to move).
  Time dp_alone(CommKind kind, int gpu, bool expert, double bytes) const {
    if (bytes <= 0) return Time::zero();
    return alone(kind, layout.dp_members(layout.dp_group_of(gpu, expert), expert), bytes);
  }
  static bool is_tp(CommKind k) {
    return k == CommKind::TpAllReduce || k == CommKind::TpAllGather || k == CommKind::TpReduceScatter;
  }
};

// One activation from pipeline rank 0 to rank 1 alone: the path latency plus
// the bytes over the first link's capacity (zero with one rank).
Time p2p_alone(const hw::Topology& topo, const ClusterLayout& layout, double activation_bytes) {
  if (layout.ranks() < 2) return Time::zero();
  const int a = layout.gpu(0, 0), b = layout.gpu(1, 0);
  const sim::Route route = topo.route(a, b);
  return topo.path_latency(a, b) +
         Time::seconds(activation_bytes / topo.links()[static_cast<std::size_t>(route.front())].capacity.value());
}

// Bytes of one activation (or its gradient) between two pipeline stages.
double activation_transfer_bytes(const StepInputs& in) {
  const ParallelPlan& plan = *in.plan;
  return static_cast<double>(plan.micro_batch_size) * static_cast<double>(in.seq_len) * in.arch->hidden * 2.0 /
         (plan.sequence_parallel ? plan.tp : 1);
}

// ---- stage partition search (partition.hpp) ----

// Chunk times of a stage, each program simulated alone on one GPU's two
// streams, and of overlapped pairs; cached by layer kinds because most
// stages of a model hold the same layers.
class StageTimer {
 public:
  struct Times {
    Time f, b, w, bw;
  };
  using Kinds = std::vector<LayerKind>;

  StageTimer(const std::map<LayerKind, std::vector<TimedOp>>& kind_ops, bool tp_overlap)
      : kind_ops_(kind_ops), tp_overlap_(tp_overlap) {}

  const Times& stage(const Kinds& layers) {
    auto it = stages_.find(layers);
    if (it != stages_.end()) return it->second;
    Times t;
    t.f = simulate_chunks({&program(layers, ChunkPass::Forward)}).makespan;
    t.b = simulate_chunks({&program(layers, ChunkPass::BackwardInput)}).makespan;
    t.w = simulate_chunks({&program(layers, ChunkPass::BackwardWeight)}).makespan;
    t.bw = simulate_chunks({&program(layers, ChunkPass::BackwardFull)}).makespan;
    return stages_.emplace(layers, t).first->second;
  }

  Time pair(const Kinds& fwd, const Kinds& bwd) {
    const auto key = std::make_pair(fwd, bwd);
    auto it = pairs_.find(key);
    if (it != pairs_.end()) return it->second;
    const ChunkProgram& f = program(fwd, ChunkPass::Forward);
    const ChunkProgram& bw = program(bwd, ChunkPass::BackwardFull);
    return pairs_.emplace(key, simulate_chunks({&f, &bw}).makespan).first->second;
  }

  const ChunkProgram& program(const Kinds& layers, ChunkPass pass) {
    const auto key = std::make_pair(layers, static_cast<int>(pass));
    auto it = programs_.find(key);
    if (it != programs_.end()) return it->second;
    std::vector<std::vector<TimedOp>> ops;
    for (LayerKind k : layers) ops.push_back(kind_ops_.at(k));
    ChunkProgram p = build_program(ops, pass);
    if (tp_overlap_) mark_tp_overlap(p);
    return programs_.emplace(key, std::move(p)).first->second;
  }

 private:
  const std::map<LayerKind, std::vector<TimedOp>>& kind_ops_;
  bool tp_overlap_;
  std::map<std::pair<Kinds, int>, ChunkProgram> programs_;
  std::map<Kinds, Times> stages_;
  std::map<std::pair<Kinds, Kinds>, Time> pairs_;
};

bool has_op(const Schedule& s, ChunkOpType type) {
  for (const auto& ops : s.per_rank)
    for (const ScheduleOp& op : ops)
      if (op.type == type) return true;
  return false;
}

// What one layer costs a rank per micro-batch as the schedule runs it: an
// overlapped forward+backward pair where the schedule pairs them, else its
// forward plus backward(s), each simulated alone.
std::vector<double> scheduled_layer_cost(const std::vector<LayerKind>& seq, const Schedule& s, StageTimer& timer) {
  const bool fb = has_op(s, ChunkOpType::FB), split = has_op(s, ChunkOpType::B);
  std::vector<double> cost;
  for (LayerKind k : seq) {
    const StageTimer::Kinds one{k};
    const auto& t = timer.stage(one);
    const Time c = fb ? timer.pair(one, one) : split ? t.f + t.b + t.w : t.f + t.bw;
    cost.push_back(c.to_seconds());
  }
  return cost;
}

std::vector<StageTimer::Kinds> stage_kinds(const std::vector<LayerKind>& seq, const std::vector<int>& counts) {
  std::vector<StageTimer::Kinds> out;
  std::size_t li = 0;
  for (int c : counts) {
    out.emplace_back(seq.begin() + static_cast<std::ptrdiff_t>(li), seq.begin() + static_cast<std::ptrdiff_t>(li + c));
    li += static_cast<std::size_t>(c);
  }
  return out;
}

// Overlapped gradient reduction in the estimate: the reductions of a stage's
// layers hide behind its last backward except the last layer's (the
// stage's first), which follows it; the rank's largest such, alone.
template <typename Coll>
Time last_reduction(const StepInputs& in, const Schedule& sched, const std::vector<StageTimer::Kinds>& kinds, int rk,
                    bool all_reduce, const Coll& coll) {
  const DpGroups g = dp_groups(*in.plan, sched);
  const CommKind k = all_reduce ? CommKind::DpAllReduce : CommKind::DpReduceScatter;
  Time worst = Time::zero();
  for (int st : sched.stages_of_rank(rk)) {
    const auto shards = layer_shards(kinds[static_cast<std::size_t>(st)], *in.arch, *in.plan, g.dense, g.expert);
    if (shards.empty()) continue;
    worst = max(worst, coll(k, false, shards.front().dense_grad_bytes) + coll(k, true, shards.front().expert_grad_bytes));
  }
  return worst;
}

// Gradient synchronisation and optimizer of every rank, each collective
// alone on the fabric (tail_work's steps, in the cluster executor's order).
std::vector<Time> tail_alone(const StepInputs& in, const Schedule& sched, const std::vector<StageTimer::Kinds>& kinds,
                             const hw::KernelTimer& timer, const Fabric& fabric) {
  StepResult tmp;
  tmp.schedule = sched;
  for (const auto& ks : kinds) {
    StageCost sc;
    for (LayerKind k : ks) add_layer_params(sc, *in.arch, *in.plan, k);
    tmp.stages.push_back(sc);
  }
  const DpGroups g = dp_groups(*in.plan, sched);
  tmp.dp_group_dense = g.dense;
  tmp.dp_group_expert = g.expert;
  const std::vector<TailWork> work = tail_work(tmp, *in.plan, timer);
  std::vector<Time> out;
  for (int rk = 0; rk < sched.ranks; ++rk) {
    const TailWork& t = work[static_cast<std::size_t>(rk)];
    const int gpu = fabric.layout.gpu(rk, 0);
    auto coll = [&](CommKind k, bool expert, double bytes) { return fabric.dp_alone(k, gpu, expert, bytes); };
    Time sum = t.optimizer;
    if (t.all_reduce) {
      sum += coll(CommKind::DpAllReduce, false, t.dense_grad_bytes) + coll(CommKind::DpAllReduce, true, t.expert_grad_bytes);
    } else {
      sum += coll(CommKind::DpReduceScatter, false, t.dense_grad_bytes) +
             coll(CommKind::DpAllGather, false, t.dense_param_bytes) +
             coll(CommKind::DpReduceScatter, true, t.expert_grad_bytes) +
             coll(CommKind::DpAllGather, true, t.expert_param_bytes);
    }
    if (in.plan->overlap_grad_reduce && in.plan->zero_stage < 3)
      sum += last_reduction(in, sched, kinds, rk, t.all_reduce, coll);
    out.push_back(sum);
  }
  return out;
}

// ZeRO-3 in the estimate: a stage's data-parallel stream alone on the fabric.
// The first layer's gather (the last layer's for a backward) delays the
// chunk's first kernel; the rest of the stream runs beside the kernels, so
// a chunk takes first + max(kernels, rest of the stream).
struct ShardEstimate {
  Time gather{}, scatter{}, first_forward{}, first_backward{};
  Time op(ChunkOpType t, Time d) const {
    switch (t) {
      case ChunkOpType::F: return first_forward + max(d, gather - first_forward);
      case ChunkOpType::B: return first_backward + max(d, gather - first_backward);
      case ChunkOpType::W: return max(d, scatter);
      case ChunkOpType::BW: return first_backward + max(d, gather - first_backward + scatter);
      case ChunkOpType::FB: break;  // rejected with ZeRO-3 (cluster_exec.hpp)
    }
    return d;
  }
};

std::vector<ShardEstimate> shard_estimates(const std::vector<StageTimer::Kinds>& kinds, const StepInputs& in,
                                           const Schedule& sched, const Fabric& fabric) {
  const DpGroups groups = dp_groups(*in.plan, sched);
  std::vector<ShardEstimate> out(kinds.size());
  for (int rk = 0; rk < sched.ranks; ++rk) {
    const int gpu = fabric.layout.gpu(rk, 0);
    auto coll = [&](CommKind k, bool expert, double bytes) { return fabric.dp_alone(k, gpu, expert, bytes); };
    for (int st : sched.stages_of_rank(rk)) {
      ShardEstimate& e = out[static_cast<std::size_t>(st)];
      const auto shards = layer_shards(kinds[static_cast<std::size_t>(st)], *in.arch, *in.plan, groups.dense, groups.expert);
      for (std::size_t i = 0; i < shards.size(); ++i) {
        const LayerShard& l = shards[i];
        const Time g = coll(CommKind::DpAllGather, false, l.dense_param_bytes) +
                       coll(CommKind::DpAllGather, true, l.expert_param_bytes);
        e.gather += g;
        e.scatter += coll(CommKind::DpReduceScatter, false, l.dense_grad_bytes) +
                     coll(CommKind::DpReduceScatter, true, l.expert_grad_bytes);
        if (i == 0) e.first_forward = g;
        if (i + 1 == shards.size()) e.first_backward = g;
      }
    }
  }
  return out;
}

// The step with layer counts `counts`, estimated: the pipeline schedule
// executed with the stages' simulated chunk times and one p2p delay, then
// each rank's tail after the last of the ranks it synchronises with.
Time estimate_step(const std::vector<int>& counts, const std::vector<LayerKind>& seq, const StepInputs& in,
                   const Schedule& sched, StageTimer& st, const hw::KernelTimer& timer, const Fabric& fabric, Time p2p,
                   ExecResult* exec_out = nullptr) {
  const auto kinds = stage_kinds(seq, counts);
  ExecCosts costs;
  const std::vector<ShardEstimate> shards =
      in.plan->zero_stage >= 3 ? shard_estimates(kinds, in, sched, fabric) : std::vector<ShardEstimate>{};
  const auto chunk = [&](const ScheduleOp& op) -> Time {
    switch (op.type) {
      case ChunkOpType::F: return st.stage(kinds[static_cast<std::size_t>(op.fwd.stage)]).f;
      case ChunkOpType::B: return st.stage(kinds[static_cast<std::size_t>(op.bwd.stage)]).b;
      case ChunkOpType::W: return st.stage(kinds[static_cast<std::size_t>(op.bwd.stage)]).w;
      case ChunkOpType::BW: return st.stage(kinds[static_cast<std::size_t>(op.bwd.stage)]).bw;
      case ChunkOpType::FB:
        return st.pair(kinds[static_cast<std::size_t>(op.fwd.stage)], kinds[static_cast<std::size_t>(op.bwd.stage)]);
    }
    return Time::zero();
  };
  costs.duration = [&](const ScheduleOp& op, int) -> Time {
    if (shards.empty()) return chunk(op);
    const int stage = op.type == ChunkOpType::F ? op.fwd.stage : op.bwd.stage;
    return shards[static_cast<std::size_t>(stage)].op(op.type, chunk(op));
  };
  costs.p2p = [p2p](int, int, bool) { return p2p; };
  ExecResult ex = execute(sched, costs);
  const std::vector<Time> tail = tail_alone(in, sched, kinds, timer, fabric);
  Time step = Time::zero();
  for (int rk = 0; rk < sched.ranks; ++rk) {
    Time ready = Time::zero();
    for (int q = 0; q < sched.ranks; ++q)  // ranks holding the same stages sync together
      if (sched.stages_of_rank(q) == sched.stages_of_rank(rk) && !ex.timeline[static_cast<std::size_t>(q)].empty())
        ready = max(ready, ex.timeline[static_cast<std::size_t>(q)].back().end);
    step = max(step, ready + tail[static_cast<std::size_t>(rk)]);
  }
  if (exec_out) *exec_out = std::move(ex);
  return step;
}

// Estimates every candidate and picks the smallest estimate (the first on a
// tie); `chosen_exec`, when given, receives the chosen one's execution.
PartitionChoice finish_choice(PartitionChoice choice, const std::vector<LayerKind>& seq, const StepInputs& in,
                              const Schedule& sched, StageTimer& st, const hw::KernelTimer& timer,
                              const Fabric& fabric, const std::vector<double>& sched_cost, ExecResult* chosen_exec) {
  const Time p2p = p2p_alone(fabric.topo, fabric.layout, activation_transfer_bytes(in));
  for (std::size_t i = 0; i < choice.candidates.size(); ++i) {
    auto& c = choice.candidates[i];
    ExecResult ex;
    c.estimate = estimate_step(c.counts, seq, in, sched, st, timer, fabric, p2p, chosen_exec ? &ex : nullptr);
    if (i == 0 || c.estimate < choice.candidates[static_cast<std::size_t>(choice.chosen)].estimate) {
      choice.chosen = static_cast<int>(i);
      if (chosen_exec) *chosen_exec = std::move(ex);
    }
  }
  choice.device_load_s =
      device_loads(sched_cost, choice.candidates[static_cast<std::size_t>(choice.chosen)].counts, sched);
  return choice;
}

PartitionChoice choose_partition(const std::vector<LayerKind>& seq, const std::vector<double>& op_cost,
                                 const StepInputs& in, const Schedule& sched, StageTimer& st,
                                 const hw::KernelTimer& timer, const Fabric& fabric, ExecResult* chosen_exec) {
  const std::vector<double> sched_cost = scheduled_layer_cost(seq, sched, st);
  PartitionChoice choice;
  auto add = [&](std::string method, std::vector<int> counts) {
    for (const auto& c : choice.candidates)
      if (c.counts == counts) return;
    choice.candidates.push_back(PartitionCandidate{std::move(method), std::move(counts), Time::zero()});
  };
  if (!in.plan->layers_per_stage.empty()) {
    add("given in the scenario", in.plan->layers_per_stage);
    return finish_choice(choice, seq, in, sched, st, timer, fabric, sched_cost, chosen_exec);
  }
  const std::vector<int> by_ops = partition_layers(op_cost, sched.stages);
  const std::vector<int> by_chunk = partition_layers(sched_cost, sched.stages);
  add("stages balanced by every operation's time", by_ops);
  add("stages balanced by chunk time as scheduled", by_chunk);
  add("devices balanced by chunk time, from the chunk-time stages", balance_devices(sched_cost, by_chunk, sched));
  add("devices balanced by chunk time, from the operation-time stages", balance_devices(sched_cost, by_ops, sched));
  return finish_choice(choice, seq, in, sched, st, timer, fabric, sched_cost, chosen_exec);
}

void run_cluster(const StepInputs& in, StepResult& r, const hw::KernelTimer& timer, const Fabric& fabric) {
  const ParallelPlan& plan = *in.plan;
  const hw::Topology& topo = fabric.topo;
  const ClusterLayout& layout = fabric.layout;
  const DpGroups g = dp_groups(plan, r.schedule);
  r.dp_group_dense = g.dense;
  r.dp_group_expert = g.expert;

  ClusterExecInputs ci;
  ci.schedule = &r.schedule;
  ci.layout = &layout;
  ci.topology = &topo;
  ci.program_f = &r.program_f;
  ci.program_b = &r.program_b;
  ci.program_w = &r.program_w;
  ci.program_bw = &r.program_bw;
  ci.fb_comm_order = r.fb_comm_order;
  ci.activation_bytes = activation_transfer_bytes(in);
  ci.tail = tail_work(r, plan, timer);
  for (const StageCost& sc : r.stages) {
    std::vector<LayerShard> ls = layer_shards(sc.layers, *in.arch, plan, r.dp_group_dense, r.dp_group_expert);
    if (ls.empty()) break;
    ci.layer_shards.push_back(std::move(ls));
  }
  ci.layer_sync = plan.zero_stage >= 3 ? LayerSync::Zero3 : LayerSync::GradientsOverlapped;
  ci.slowdown = in.slowdown;
  const StepTraffic& traffic = fabric.traffic;
  ci.traffic = [&traffic](CommKind k, const std::vector<int>& m, double bytes, int st) {
    return traffic(k, m, bytes, st);
  };
  if (traffic.skewed()) {
    ci.routing_state = [&traffic](int group, int layer, int mb) { return traffic.state(group, layer, mb); };
    ci.retime = [&traffic](int gpu, const TimedOp& t, int st) { return traffic.retime(gpu, t, st); };
    int first = 0;
    for (const StageCost& sc : r.stages) {
      ci.stage_first_layer.push_back(first);
      first += static_cast<int>(sc.layers.size());
    }
  }
  ci.link_capacity_Bps = fabric.capacity_Bps;
  ci.fidelity = in.fidelity;
  ci.record = in.record;
  if (in.progress) {
    ci.progress_horizon = r.partition.candidates[static_cast<std::size_t>(r.partition.chosen)].estimate;
    const double horizon = ci.progress_horizon.to_seconds();
    ci.progress = [&in, horizon](Time now) { in.progress(horizon > 0 ? now.to_seconds() / horizon : 0.0); };
  }
  ClusterExecResult cr = execute_cluster(ci);
  r.tail = ci.tail;
  r.activation_bytes = ci.activation_bytes;
  if (cr.critical_link >= 0) {
    r.critical_link = topo.links()[static_cast<std::size_t>(cr.critical_link)].name;
    r.critical_link_time = cr.critical_link_time;
  }
  if (in.record) {
    r.kernels = std::move(cr.kernels);
    r.transfers = std::move(cr.transfers);
    for (const sim::Link& l : topo.links()) r.link_names.push_back(l.name);
  }

  fill_breakdown(r, layout, cr);
  r.exec = std::move(cr.exec);
  r.makespan = r.exec.makespan;
  r.step_time = cr.step_time;
  r.fidelity = in.fidelity;
  r.critical_gpu = cr.critical_gpu;
  r.critical_group = cr.critical_group;
  if (cr.critical_group.instances > 0)
    r.critical_group_members = is_tp_kind(cr.critical_group.kind) ? layout.tp_members(cr.critical_group.group)
                                                                  : layout.ep_members(cr.critical_group.group);
  r.simulated_gpus = cr.simulated_gpus;
  r.events = cr.events;
  r.flows = cr.flows;
  r.collectives = cr.collectives;
  r.p2p_seconds = p2p_alone(topo, layout, ci.activation_bytes).to_seconds();
}

// StepInputs::estimate_only: the chosen partition's estimate stands for the
// step; its pipeline execution (chunk times simulated, one p2p delay, no
// contention between GPUs) gives the timeline the memory is read from.
// `exec` is the chosen partition's execution from the search.
void estimate_only(const StepInputs& in, StepResult& r, ExecResult exec, const hw::KernelTimer& timer,
                   const Fabric& fabric) {
  const DpGroups g = dp_groups(*in.plan, r.schedule);
  r.dp_group_dense = g.dense;
  r.dp_group_expert = g.expert;
  r.activation_bytes = activation_transfer_bytes(in);
  const Time p2p = p2p_alone(fabric.topo, fabric.layout, r.activation_bytes);
  r.step_time = r.partition.candidates[static_cast<std::size_t>(r.partition.chosen)].estimate;
  r.exec = std::move(exec);
  r.makespan = r.exec.makespan;
  r.fidelity = in.fidelity;
  r.tail = tail_work(r, *in.plan, timer);
  r.p2p_seconds = p2p.to_seconds();
}

}  // namespace

// Peak bytes of live activations on a rank: walk its executed ops in time
// order; a forward adds its stage's activations, the input-backward of the
// same chunk frees them (an overlapped F&B holds both while it runs).
double activation_peak(const StepResult& r, int rk) {
  const auto& ops = r.schedule.per_rank[static_cast<std::size_t>(rk)];
  const auto& tl = r.exec.timeline[static_cast<std::size_t>(rk)];
  auto act = [&](int stage) { return r.stages[static_cast<std::size_t>(stage)].activations_per_microbatch.value(); };
  auto wgt = [&](int stage) { return r.stages[static_cast<std::size_t>(stage)].weight_grad_inputs_per_microbatch.value(); };
  double live = 0, peak = 0;
  for (const auto& t : tl) {
    const auto& op = ops[static_cast<std::size_t>(t.index)];
    switch (op.type) {
      case ChunkOpType::F: live += act(op.fwd.stage); peak = std::max(peak, live); break;
      case ChunkOpType::FB:
        live += act(op.fwd.stage);
        peak = std::max(peak, live);
        live -= act(op.bwd.stage);
        break;
      // A split backward frees the chunk's activations at B but keeps what
      // its deferred W needs (Linear inputs, output gradients) until W runs.
      case ChunkOpType::B:
        live += wgt(op.bwd.stage) - act(op.bwd.stage);
        peak = std::max(peak, live);
        break;
      case ChunkOpType::W: live -= wgt(op.bwd.stage); break;
      case ChunkOpType::BW: live -= act(op.bwd.stage); break;
    }
  }
  return peak;
}

// Memory per pipeline rank: weights, gradients and optimizer state of the
// stages it holds (sharded by ZeRO over the data-parallel groups), the
// activation peak its executed timeline reached, and the largest transient.
// Under ZeRO-3 the transient adds the gathered layers: the BF16 parameters
// of the layer computing and the one prefetched, and the FP32 gradients of
// the layer being computed and the one being reduce-scattered (its largest
// layer, twice; cluster_exec.hpp).
void memory_per_rank(StepResult& r, const Architecture& arch, const ParallelPlan& plan) {
  for (int rk = 0; rk < r.schedule.ranks; ++rk) {
    MemoryBreakdown m;
    m.rank = rk;
    double params = 0, expert = 0, transient = 0, gathered = 0;
    for (int s : r.schedule.stages_of_rank(rk)) {
      const auto& sc = r.stages[static_cast<std::size_t>(s)];
      params += sc.params_per_gpu;
      expert += sc.expert_params_per_gpu;
      transient = std::max(transient, sc.transient.value());
      if (plan.zero_stage >= 3)
        for (const LayerShard& l : layer_shards(sc.layers, arch, plan, r.dp_group_dense, r.dp_group_expert))
          gathered = std::max(gathered, 2.0 * (l.dense_param_bytes + l.expert_param_bytes + l.dense_grad_bytes +
                                               l.expert_grad_bytes));
    }
    transient += gathered;
    const double dense = params - expert;
    auto sharded = [&](double bytes_per_param, bool shard) {
      return shard ? dense * bytes_per_param / r.dp_group_dense + expert * bytes_per_param / r.dp_group_expert
                   : params * bytes_per_param;
    };
    m.weights_bytes = sharded(2.0, plan.zero_stage >= 3);
    m.gradients_bytes = sharded(4.0, plan.zero_stage >= 2);
    // FP32 master weights + BF16 first and second moments (V3 report §3.3.3).
    m.optimizer_bytes = sharded(8.0, plan.zero_stage >= 1);
    m.activation_chunks_peak = r.exec.peak_activations_per_rank[static_cast<std::size_t>(rk)];
    m.activations_bytes = activation_peak(r, rk);
    m.transient_bytes = transient;
    r.memory.push_back(m);
    if (m.total_bytes() > r.peak_memory.total_bytes()) r.peak_memory = m;
  }
}

// Per stage: the chunk programs (F, B, W, BW) of its layers, each simulated
// alone on one GPU's two streams (for the report), and its parameters,
// activations and FLOPs from the layer accounting.
void build_stages(StepResult& r, const std::map<LayerKind, std::vector<TimedOp>>& kind_ops, StageTimer& timer,
                  const StepInputs& in, const OpContext& octx) {
  const Architecture& arch = *in.arch;
  const ParallelPlan& plan = *in.plan;
  for (auto& sc : r.stages) {
    const StageTimer::Times& t = timer.stage(sc.layers);
    sc.forward = t.f;
    sc.backward_input = t.b;
    sc.backward_weight = t.w;
    sc.backward_full = t.bw;
    for (LayerKind k : sc.layers) {
      add_layer_params(sc, arch, plan, k);
      sc.activations_per_microbatch += activation_bytes(arch, k, octx);
      for (const auto& t : kind_ops.at(k)) {
        sc.model_flops_per_microbatch += t.op.model_flops.value();
        sc.executed_flops_per_microbatch += t.op.flops.value();
        // dW = dY^T X with M = output features, N = input features, K =
        // tokens: X (N x K) in the GEMM's input format, dY (M x K) in BF16.
        if (t.op.pass == Pass::BackwardWeight &&
            (t.op.kind == OpKind::Gemm || t.op.kind == OpKind::GroupedGemm)) {
          const auto& g = t.op.gemm;
          const double x = static_cast<double>(g.groups) * static_cast<double>(g.n) * static_cast<double>(g.k) *
                           bytes_per_element(t.op.precision);
          const double dy = static_cast<double>(g.groups) * static_cast<double>(g.m) * static_cast<double>(g.k) * 2.0;
          sc.weight_grad_inputs_per_microbatch += ByteCount(x + dy);
        }
      }
      if (k == LayerKind::Head || k == LayerKind::Mtp) {
        // Logits of the micro-batch in FP32 plus their BF16 copy live at once
        // during the loss.
        const double tokens = static_cast<double>(plan.micro_batch_size) * static_cast<double>(in.seq_len);
        sc.transient = ByteCount(std::max(sc.transient.value(), tokens * arch.vocab / plan.tp * 6.0));
      }
    }
    r.program_f.push_back(timer.program(sc.layers, ChunkPass::Forward));
    r.program_b.push_back(timer.program(sc.layers, ChunkPass::BackwardInput));
    r.program_w.push_back(timer.program(sc.layers, ChunkPass::BackwardWeight));
    r.program_bw.push_back(timer.program(sc.layers, ChunkPass::BackwardFull));
  }
}

StepResult simulate_step(const StepInputs& in) {
  const Architecture& arch = *in.arch;
  const hw::ClusterSpec& cluster = *in.cluster;
  const ParallelPlan& plan = *in.plan;
  StepResult r;

  r.compute_sms = cluster.gpu.sms - plan.comm_sms;
  hw::KernelTimer timer(*in.profile, cluster.gpu, r.compute_sms);
  TimingContext tctx{in.profile, in.cluster, r.compute_sms, plan.comm_sms};

  OpContext octx;
  octx.micro_batch_size = plan.micro_batch_size;
  octx.seq_len = in.seq_len;
  octx.tp = plan.tp;
  octx.sequence_parallel = plan.sequence_parallel;
  octx.ep = plan.ep;
  octx.gpus_per_node = cluster.gpus_per_node;
  octx.gemm_precision = in.precision;
  octx.recompute = plan.recompute;

  // ---- schedule: it decides how many stages the model is cut into and
  // which ranks hold them ----
  r.schedule = make_schedule(plan.schedule, plan.pp, static_cast<int>(in.microbatches), plan.virtual_stages);

  // ---- the fabric: topology, GPU layout, traffic, achievable capacities ----
  const hw::Topology topo = hw::Topology::build(cluster);
  const ClusterLayout layout(plan, r.schedule);
  const StepTraffic traffic(in, topo, layout, timer);
  NetworkEfficiency eff = load_network_efficiency();
  eff.comm_sms = plan.comm_sms > 0 ? plan.comm_sms : eff.saturating_comm_sms;
  std::vector<double> capacity = effective_capacities_Bps(topo, eff);
  if (in.link_sigma > 0)
    for (std::size_t l = 0; l < capacity.size(); ++l) {
      const auto li = static_cast<sim::LinkIndex>(l);
      const bool nvlink = topo.vertex_kind(topo.link_tail(li)) == hw::VertexKind::NvSwitch ||
                          topo.vertex_kind(topo.link_head(li)) == hw::VertexKind::NvSwitch;
      if (!nvlink) capacity[l] *= std::exp(-in.link_sigma * counter_half_normal(in.link_seed, l));
    }
  const Fabric fabric{topo, layout, traffic, std::move(capacity), {}};

  // ---- per-layer timed ops, computed once per layer kind; communication
  // kernels timed on the fabric (alone), compute kernels by the profile ----
  const std::vector<LayerKind> seq = layer_sequence(arch);
  std::map<LayerKind, std::vector<TimedOp>> kind_ops;
  std::map<std::pair<int, double>, Time> comm_time;
  for (LayerKind k : seq) {
    if (kind_ops.count(k)) continue;
    std::vector<TimedOp> timed;
    for (const Op& op : layer_ops(arch, k, octx)) {
      TimedOp t = time_op(op, timer, tctx);
      if (op.kind == OpKind::Comm) {
        const auto key = std::make_pair(static_cast<int>(op.comm.kind), op.comm.bytes.value());
        auto it = comm_time.find(key);
        if (it == comm_time.end()) it = comm_time.emplace(key, fabric.isolated(op.comm.kind, op.comm.bytes.value())).first;
        t.duration = it->second;
      }
      timed.push_back(t);
    }
    kind_ops[k] = timed;
    r.layer_kinds.push_back(LayerTiming{k, timed});
  }

  // ---- stage partition: candidates, each estimated; the best is simulated ----
  std::vector<double> layer_cost;
  for (LayerKind k : seq) {
    double c = 0;
    for (const auto& t : kind_ops[k]) c += t.duration.to_seconds();
    layer_cost.push_back(c);
  }
  StageTimer stage_timer(kind_ops, plan.tp_comm_overlap);
  ExecResult chosen_exec;
  r.partition = choose_partition(seq, layer_cost, in, r.schedule, stage_timer, timer, fabric,
                                 in.estimate_only ? &chosen_exec : nullptr);
  const std::vector<int> counts = r.partition.candidates[static_cast<std::size_t>(r.partition.chosen)].counts;

  // ---- chunk programs and their durations per stage ----
  for (auto& kinds : stage_kinds(seq, counts)) {
    StageCost sc;
    sc.layers = std::move(kinds);
    r.stages.push_back(std::move(sc));
  }
  build_stages(r, kind_ops, stage_timer, in, octx);
  pair_costs(r);
  if (in.estimate_only)
    estimate_only(in, r, std::move(chosen_exec), timer, fabric);
  else
    run_cluster(in, r, timer, fabric);

  // ---- FLOPs ----
  for (const auto& sc : r.stages) {
    r.model_flops_per_step += sc.model_flops_per_microbatch;
    r.executed_flops_per_step += sc.executed_flops_per_microbatch;
  }
  // Per micro-batch per pipeline, every GPU of a stage works on its own data:
  // cluster FLOPs = per-GPU stage FLOPs summed over stages x micro-batches x dp x tp.
  r.model_flops_per_step *= static_cast<double>(in.microbatches) * plan.dp * plan.tp;
  r.executed_flops_per_step *= static_cast<double>(in.microbatches) * plan.dp * plan.tp;

  memory_per_rank(r, *in.arch, plan);
  return r;
}

}  // namespace trainsim::model
