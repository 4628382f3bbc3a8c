#include "trainsim/model/step.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <numeric>
#include <stdexcept>

#include "trainsim/hardware/topology.hpp"
#include "trainsim/sim/collectives.hpp"

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

std::vector<int> partition_layers(const std::vector<double>& cost, int stages) {
  const int n = static_cast<int>(cost.size());
  if (stages < 1 || n < stages)
    throw std::invalid_argument(fmt::format("cannot split {} layers into {} stages", n, stages));
  // best[s][i]: minimal max-stage cost of splitting the first i layers into s
  // stages; classic O(S * n^2) dynamic programme (n is a few hundred at most).
  std::vector<double> prefix(static_cast<std::size_t>(n) + 1, 0.0);
  for (int i = 0; i < n; ++i) prefix[static_cast<std::size_t>(i) + 1] = prefix[static_cast<std::size_t>(i)] + cost[static_cast<std::size_t>(i)];
  const double inf = 1e300;
  std::vector<std::vector<double>> best(static_cast<std::size_t>(stages) + 1, std::vector<double>(static_cast<std::size_t>(n) + 1, inf));
  std::vector<std::vector<int>> cut(static_cast<std::size_t>(stages) + 1, std::vector<int>(static_cast<std::size_t>(n) + 1, 0));
  best[0][0] = 0;
  for (int s = 1; s <= stages; ++s)
    for (int i = s; i <= n - (stages - s); ++i)
      for (int j = s - 1; j < i; ++j) {
        const double prev = best[static_cast<std::size_t>(s) - 1][static_cast<std::size_t>(j)];
        if (prev >= inf) continue;
        const double v = std::max(prev, prefix[static_cast<std::size_t>(i)] - prefix[static_cast<std::size_t>(j)]);
        // Strictly better only: ties keep the earliest cut, which is deterministic.
        if (v < best[static_cast<std::size_t>(s)][static_cast<std::size_t>(i)]) {
          best[static_cast<std::size_t>(s)][static_cast<std::size_t>(i)] = v;
          cut[static_cast<std::size_t>(s)][static_cast<std::size_t>(i)] = j;
        }
      }
  std::vector<int> counts(static_cast<std::size_t>(stages));
  int i = n;
  for (int s = stages; s >= 1; --s) {
    const int j = cut[static_cast<std::size_t>(s)][static_cast<std::size_t>(i)];
    counts[static_cast<std::size_t>(s) - 1] = i - j;
    i = j;
  }
  return counts;
}

namespace {

int gpu_id(const ParallelPlan& p, int pp_rank, int dp_idx, int tp_idx) {
  return pp_rank * p.dp * p.tp + dp_idx * p.tp + tp_idx;
}

// Parameters of routed experts in one layer (all experts, unsharded).
double routed_expert_params(const Architecture& a, LayerKind k) {
  if (!a.moe) return 0;
  if (k != LayerKind::Moe && k != LayerKind::Mtp) return 0;
  const double mats = a.activation == FfnActivation::SwiGLU ? 3.0 : 2.0;
  return static_cast<double>(a.moe->routed_experts) * mats * a.hidden * static_cast<double>(a.moe->expert_ffn_hidden);
}

}  // namespace

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

  // ---- per-layer timed ops, computed once per layer kind ----
  const std::vector<LayerKind> seq = layer_sequence(arch);
  std::map<LayerKind, std::vector<TimedOp>> kind_ops;
  std::map<LayerKind, ChunkSimResult> kind_alone;  // full F+BW of one layer alone, for partitioning
  for (LayerKind k : seq) {
    if (kind_ops.count(k)) continue;
    std::vector<TimedOp> timed;
    for (const Op& op : layer_ops(arch, k, octx)) timed.push_back(time_op(op, timer, tctx));
    kind_ops[k] = timed;
    r.layer_kinds.push_back(LayerTiming{k, timed});
  }

  // ---- schedule: it decides how many stages the model is cut into and
  // which ranks hold them ----
  r.schedule = make_schedule(plan.schedule, plan.pp, static_cast<int>(in.microbatches), plan.virtual_stages);

  // ---- stage partition by compute cost of one micro-batch ----
  const int stages = r.schedule.stages;
  std::vector<double> layer_cost;
  for (LayerKind k : seq) {
    double c = 0;
    for (const auto& t : kind_ops[k]) c += t.duration.to_seconds();
    layer_cost.push_back(c);
  }
  const std::vector<int> counts = partition_layers(layer_cost, stages);

  // ---- chunk programs and their durations per stage ----
  std::vector<std::vector<std::vector<TimedOp>>> stage_layers(static_cast<std::size_t>(stages));
  {
    std::size_t li = 0;
    for (int s = 0; s < stages; ++s) {
      StageCost sc;
      for (int c = 0; c < counts[static_cast<std::size_t>(s)]; ++c, ++li) {
        sc.layers.push_back(seq[li]);
        stage_layers[static_cast<std::size_t>(s)].push_back(kind_ops[seq[li]]);
      }
      r.stages.push_back(sc);
    }
  }
  for (int s = 0; s < stages; ++s) {
    auto& sc = r.stages[static_cast<std::size_t>(s)];
    const auto& L = stage_layers[static_cast<std::size_t>(s)];
    ChunkProgram f = build_program(L, ChunkPass::Forward);
    ChunkProgram b = build_program(L, ChunkPass::BackwardInput);
    ChunkProgram w = build_program(L, ChunkPass::BackwardWeight);
    ChunkProgram bw = build_program(L, ChunkPass::BackwardFull);
    const auto rf = simulate_chunks({&f});
    const auto rb = simulate_chunks({&b});
    const auto rw = simulate_chunks({&w});
    const auto rbw = simulate_chunks({&bw});
    sc.forward = rf.makespan;
    sc.backward_input = rb.makespan;
    sc.backward_weight = rw.makespan;
    sc.backward_full = rbw.makespan;
    sc.forward_exposed = rf.exposed;
    sc.backward_full_exposed = rbw.exposed;
    sc.backward_input_exposed = rb.exposed;
    sc.forward_compute = rf.compute_busy;
    sc.backward_input_compute = rb.compute_busy;
    sc.backward_weight_compute = rw.compute_busy;
    sc.backward_full_compute = rbw.compute_busy;
    for (LayerKind k : sc.layers) {
      const ParamCount pc = layer_params(arch, k);
      const double routed = routed_expert_params(arch, k);
      sc.expert_params_per_gpu += routed / plan.ep;
      sc.params_per_gpu += (pc.total - routed) / plan.tp + routed / plan.ep;
      sc.activations_per_microbatch += activation_bytes(arch, k, octx);
      for (const auto& t : kind_ops[k]) {
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
    r.program_f.push_back(std::move(f));
    r.program_b.push_back(std::move(b));
    r.program_w.push_back(std::move(w));
    r.program_bw.push_back(std::move(bw));
  }
  const auto& prog_f = r.program_f;
  const auto& prog_bw = r.program_bw;


  std::map<std::pair<int, int>, std::size_t> pair_index;
  auto pair_cost = [&](int fs, int bs) -> const PairCost& {
    auto key = std::make_pair(fs, bs);
    auto it = pair_index.find(key);
    if (it != pair_index.end()) return r.pairs[it->second];
    const auto res = simulate_chunks({&prog_f[static_cast<std::size_t>(fs)], &prog_bw[static_cast<std::size_t>(bs)]});
    PairCost pc{fs, bs, res.makespan, res.compute_busy, res.comm_busy, res.exposed};
    r.pairs.push_back(pc);
    pair_index[key] = r.pairs.size() - 1;
    return r.pairs.back();
  };

  auto duration = [&](const ScheduleOp& op, int /*rank*/) -> Time {
    const auto& fs = r.stages[static_cast<std::size_t>(op.fwd.stage)];
    const auto& bs = r.stages[static_cast<std::size_t>(op.bwd.stage)];
    switch (op.type) {
      case ChunkOpType::F: return fs.forward;
      case ChunkOpType::B: return bs.backward_input;
      case ChunkOpType::W: return bs.backward_weight;
      case ChunkOpType::BW: return bs.backward_full;
      case ChunkOpType::FB: return pair_cost(op.fwd.stage, op.bwd.stage).duration;
    }
    return Time::zero();
  };

  // ---- pipeline transfers on the fabric ----
  const hw::Topology topo = hw::Topology::build(cluster);
  const double act_bytes = static_cast<double>(plan.micro_batch_size) * static_cast<double>(in.seq_len) *
                           arch.hidden * 2.0 / (plan.sequence_parallel ? plan.tp : 1);
  auto idle_transfer = [&](int src_gpu, int dst_gpu, double bytes) {
    const sim::CollectiveSchedule one = sim::point_to_point(ByteCount(bytes));
    const std::vector<int> members{src_gpu, dst_gpu};
    return sim::collective_time_idle(topo.links(), one, [&](int a, int b) {
      return topo.route(members[static_cast<std::size_t>(a)], members[static_cast<std::size_t>(b)]);
    });
  };
  std::map<std::pair<int, int>, Time> p2p_cache;
  auto p2p = [&](int from_rank, int to_rank, bool /*forward*/) -> Time {
    auto key = std::make_pair(from_rank, to_rank);
    auto it = p2p_cache.find(key);
    if (it != p2p_cache.end()) return it->second;
    const Time t = idle_transfer(gpu_id(plan, from_rank, 0, 0), gpu_id(plan, to_rank, 0, 0), act_bytes);
    p2p_cache[key] = t;
    return t;
  };
  if (plan.pp > 1) r.p2p_seconds = p2p(0, 1, true).to_seconds();

  ExecCosts costs{duration, p2p};
  r.exec = execute(r.schedule, costs);
  r.makespan = r.exec.makespan;
  ExecCosts costs_no_p2p{duration, {}};
  r.makespan_no_p2p = execute(r.schedule, costs_no_p2p).makespan;

  // ---- data-parallel synchronisation (ZeRO) and optimizer ----
  // Replicas of a non-expert parameter: the dp copies of its stage, twice as
  // many under DualPipe (rank r and rank pp-1-r both hold stage r). Routed
  // expert parameters: dp*tp/ep copies per stage, likewise doubled.
  // Copies of a stage along the pipeline: 2 under DualPipe (rank r and rank
  // pp-1-r both hold stage r), 1 otherwise; the schedule says.
  int copies = 1;
  {
    std::vector<int> holders(static_cast<std::size_t>(stages), 0);
    for (int rk = 0; rk < r.schedule.ranks; ++rk)
      for (int st : r.schedule.stages_of_rank(rk)) ++holders[static_cast<std::size_t>(st)];
    copies = *std::max_element(holders.begin(), holders.end());
  }
  const int mirror = copies;
  r.dp_group_dense = plan.dp * mirror;
  r.dp_group_expert = std::max(1, plan.dp * plan.tp / plan.ep) * mirror;
  // Gradients are reduced in FP32 and parameters gathered in BF16
  // (DeepSeek-V3 report §3.3: FP32 weight gradients, BF16 compute weights).
  constexpr double kGradBytes = 4.0, kParamBytes = 2.0;
  auto rank_stages = [&](int rk) { return r.schedule.stages_of_rank(rk); };
  // A ring collective on an idle fabric takes latency + bytes x cost: time it
  // at two sizes once per (group, kind) and interpolate. The members are
  // consecutive data-parallel replicas of pipeline rank 0 (continuing on the
  // mirror rank's GPUs for DualPipe); every pipeline rank's group has the
  // same shape on the fabric, so the same line serves all of them.
  struct Line { double t0 = 0, slope = 0; };
  std::map<std::pair<int, bool>, Line> lines;
  auto ring_time = [&](int group, double bytes_per_gpu, bool all_gather) {
    if (group <= 1 || bytes_per_gpu <= 0) return Time::zero();
    auto key = std::make_pair(group, all_gather);
    auto it = lines.find(key);
    if (it == lines.end()) {
      std::vector<int> members;
      for (int m = 0; m < group; ++m) {
        const int rank = m < plan.dp ? 0 : plan.pp - 1;
        members.push_back(gpu_id(plan, rank, m % plan.dp, 0));
      }
      auto time_at = [&](double bytes) {
        const auto sched = all_gather ? sim::ring_all_gather(group, ByteCount(bytes))
                                      : sim::ring_reduce_scatter(group, ByteCount(bytes));
        return sim::collective_time_idle(topo.links(), sched, [&](int a, int b) {
                 return topo.route(members[static_cast<std::size_t>(a)], members[static_cast<std::size_t>(b)]);
               }).to_seconds();
      };
      const double ref = 1e9;
      const double t_small = time_at(0.0), t_ref = time_at(ref);
      it = lines.emplace(key, Line{t_small, (t_ref - t_small) / ref}).first;
    }
    return Time::seconds(it->second.t0 + it->second.slope * bytes_per_gpu);
  };
  struct Sync { Time dp{}, opt{}; };
  auto sync_of = [&](int rk) {
    double dense_params = 0, expert_params = 0;
    for (int s : rank_stages(rk)) {
      dense_params += r.stages[static_cast<std::size_t>(s)].params_per_gpu - r.stages[static_cast<std::size_t>(s)].expert_params_per_gpu;
      expert_params += r.stages[static_cast<std::size_t>(s)].expert_params_per_gpu;
    }
    Sync sy;
    if (plan.zero_stage == 0) {
      // Plain all-reduce of gradients (reduce-scatter + all-gather of the same buffer).
      sy.dp = ring_time(r.dp_group_dense, dense_params * kGradBytes, false) * 2 +
              ring_time(r.dp_group_expert, expert_params * kGradBytes, false) * 2;
    } else {
      sy.dp = ring_time(r.dp_group_dense, dense_params * kGradBytes, false) +
              ring_time(r.dp_group_dense, dense_params * kParamBytes, true) +
              ring_time(r.dp_group_expert, expert_params * kGradBytes, false) +
              ring_time(r.dp_group_expert, expert_params * kParamBytes, true);
    }
    // AdamW over this GPU's shard: read FP32 master weight and gradient, BF16
    // moments; write master, moments and the BF16 weight: 4+4+2+2 read,
    // 4+2+2+2 write = 22 bytes per parameter (BF16 moments per the V3 report).
    const double shard = plan.zero_stage >= 1 ? dense_params / r.dp_group_dense + expert_params / r.dp_group_expert
                                              : dense_params + expert_params;
    sy.opt = timer.memory(ByteCount(shard * 22.0));
    return sy;
  };
  // Each rank synchronises its gradients when its own last backward is done;
  // the step ends when the last rank has updated its weights.
  int critical = 0;
  Sync critical_sync;
  Time critical_end{};
  for (int rk = 0; rk < r.schedule.ranks; ++rk) {
    const auto& tl = r.exec.timeline[static_cast<std::size_t>(rk)];
    const Time end = tl.empty() ? Time::zero() : tl.back().end;
    const Sync sy = sync_of(rk);
    if (end + sy.dp + sy.opt > r.step_time) {
      r.step_time = end + sy.dp + sy.opt;
      critical = rk;
      critical_sync = sy;
      critical_end = end;
    }
  }

  // ---- breakdown on the rank that ends the step ----
  StepBreakdown& bd = r.breakdown;
  bd.rank = critical;
  bd.dp_sync = critical_sync.dp;
  bd.optimizer = critical_sync.opt;
  {
    const auto& ops = r.schedule.per_rank[static_cast<std::size_t>(critical)];
    for (const auto& op : ops) {
      const auto& fs = r.stages[static_cast<std::size_t>(op.fwd.stage)];
      const auto& bs = r.stages[static_cast<std::size_t>(op.bwd.stage)];
      auto add = [&](const ExposedComm& e) {
        bd.exposed_ep.ep_dispatch += e.ep_dispatch;
        bd.exposed_ep.ep_combine += e.ep_combine;
        bd.exposed_ep.tp += e.tp;
      };
      switch (op.type) {
        case ChunkOpType::F: bd.compute += fs.forward_compute; add(fs.forward_exposed); break;
        case ChunkOpType::BW: bd.compute += bs.backward_full_compute; add(bs.backward_full_exposed); break;
        case ChunkOpType::B: bd.compute += bs.backward_input_compute; add(bs.backward_input_exposed); break;
        case ChunkOpType::W: bd.compute += bs.backward_weight_compute; break;
        case ChunkOpType::FB: {
          const PairCost& pc = pair_cost(op.fwd.stage, op.bwd.stage);
          bd.compute += pc.compute_busy;
          add(pc.exposed);
          break;
        }
      }
    }
  }
  const Time busy = r.exec.busy_per_rank[static_cast<std::size_t>(critical)];
  // busy = compute + exposed comm (+ tiny scheduling gaps inside pairs); the
  // rest of the rank's time until its last op is transfer waits (the
  // makespan the transfers add) and bubble.
  bd.exposed_pp = min(r.makespan - r.makespan_no_p2p, critical_end - busy);
  bd.bubble = critical_end - busy - bd.exposed_pp;

  // ---- FLOPs ----
  for (const auto& sc : r.stages) {
    r.model_flops_per_step += sc.model_flops_per_microbatch;
    r.executed_flops_per_step += sc.executed_flops_per_microbatch;
  }
  // Per micro-batch per pipeline, every GPU of a stage works on its own data:
  // cluster FLOPs = per-GPU stage FLOPs summed over stages x micro-batches x dp x tp.
  r.model_flops_per_step *= static_cast<double>(in.microbatches) * plan.dp * plan.tp;
  r.executed_flops_per_step *= static_cast<double>(in.microbatches) * plan.dp * plan.tp;

  // ---- memory per pipeline rank ----
  for (int rk = 0; rk < r.schedule.ranks; ++rk) {
    MemoryBreakdown m;
    m.rank = rk;
    double params = 0, expert = 0, transient = 0;
    for (int s : rank_stages(rk)) {
      const auto& sc = r.stages[static_cast<std::size_t>(s)];
      params += sc.params_per_gpu;
      expert += sc.expert_params_per_gpu;
      transient = std::max(transient, sc.transient.value());
    }
    const double dense = params - expert;
    const double shard_div_dense = r.dp_group_dense, shard_div_expert = r.dp_group_expert;
    auto sharded = [&](double bytes_per_param, bool shard) {
      return shard ? dense * bytes_per_param / shard_div_dense + expert * bytes_per_param / shard_div_expert
                   : params * bytes_per_param;
    };
    m.weights_bytes = sharded(2.0, plan.zero_stage >= 3);
    m.gradients_bytes = sharded(4.0, plan.zero_stage >= 2);
    // FP32 master weights + BF16 first and second moments (V3 report §3.3.3).
    m.optimizer_bytes = sharded(8.0, plan.zero_stage >= 1);
    m.activation_chunks_peak = r.exec.peak_activations_per_rank[static_cast<std::size_t>(rk)];
    // Weighted peak: walk the rank's executed ops in time order; a forward
    // adds its stage's activations, the input-backward of the same chunk
    // frees them (an overlapped F&B holds both while it runs).
    {
      const auto& ops = r.schedule.per_rank[static_cast<std::size_t>(rk)];
      const auto& tl = r.exec.timeline[static_cast<std::size_t>(rk)];
      auto act = [&](int stage) { return r.stages[static_cast<std::size_t>(stage)].activations_per_microbatch.value(); };
      auto wgt = [&](int stage) {
        return r.stages[static_cast<std::size_t>(stage)].weight_grad_inputs_per_microbatch.value();
      };
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
          // A split backward frees the chunk's activations at B but keeps
          // what its deferred W needs (Linear inputs, output gradients)
          // until W runs.
          case ChunkOpType::B:
            live += wgt(op.bwd.stage) - act(op.bwd.stage);
            peak = std::max(peak, live);
            break;
          case ChunkOpType::W: live -= wgt(op.bwd.stage); break;
          case ChunkOpType::BW: live -= act(op.bwd.stage); break;
        }
      }
      m.activations_bytes = peak;
    }
    m.transient_bytes = transient;
    r.memory.push_back(m);
    if (m.total_bytes() > r.peak_memory.total_bytes()) r.peak_memory = m;
  }
  return r;
}

}  // namespace trainsim::model
