#include <doctest/doctest.h>

#include <cstdlib>
#include <stdexcept>
#include <vector>

#include "../support/test_support.hpp"
#include "trainsim/hardware/gpu.hpp"
#include "trainsim/hardware/topology.hpp"
#include "trainsim/model/cluster_exec.hpp"
#include "trainsim/model/cluster_layout.hpp"
#include "trainsim/model/fabric_traffic.hpp"
#include "trainsim/model/pipeline_exec.hpp"
#include "trainsim/model/schedule.hpp"
#include "trainsim/sim/collectives.hpp"

using namespace trainsim;
using namespace trainsim::model;

namespace {

hw::ClusterSpec mpft(int nodes) {
  return hw::ClusterSpec{
      .gpu = hw::gpu_preset("H800"),
      .nodes = nodes,
      .gpus_per_node = 8,
      .nics_per_node = 8,
      .network = {.topology = hw::TopologyKind::MultiPlaneFatTree,
                  .planes = 8,
                  .tiers = 2,
                  .switch_radix = 64,
                  .nic_bandwidth = gbits_per_s(400)},
  };
}

TimedOp compute(double us) {
  TimedOp t;
  t.op.kind = OpKind::Gemm;
  t.stream = Stream::Compute;
  t.duration = Time::us(us);
  return t;
}

TimedOp comm(CommKind kind, double bytes, int group) {
  TimedOp t;
  t.op.kind = OpKind::Comm;
  t.op.comm = CommSpec{kind, ByteCount(bytes), group};
  t.stream = Stream::Comm;
  return t;
}

// Uniform all-to-all (bytes / n to every member) and rings.
CollectiveTraffic traffic(CommKind kind, const std::vector<int>& m, double bytes, int /*state*/) {
  const int n = static_cast<int>(m.size());
  if (kind == CommKind::EpDispatch || kind == CommKind::EpCombine) {
    CollectiveTraffic t;
    for (int a : m)
      for (int b : m) t.transfers.push_back(GpuTransfer{a, b, bytes / n});
    return t;
  }
  return {ring_transfers(m, bytes, 1), n - 1};
}

// Everything one execution needs, kept alive together.
struct Setup {
  hw::Topology topo;
  ParallelPlan plan;
  Schedule schedule;
  ClusterLayout layout;
  std::vector<ChunkProgram> f, b, w, bw;
  ClusterExecInputs in;

  Setup(const hw::ClusterSpec& c, ParallelPlan p, Schedule s, const ChunkProgram& fwd, const ChunkProgram& bwd)
      : topo(hw::Topology::build(c)), plan(p), schedule(std::move(s)), layout(plan, schedule) {
    for (int st = 0; st < schedule.stages; ++st) {
      f.push_back(fwd);
      bw.push_back(bwd);
      b.push_back(bwd);
      w.push_back(ChunkProgram{ChunkPass::BackwardWeight, {}});
    }
    in.schedule = &schedule;
    in.layout = &layout;
    in.topology = &topo;
    in.program_f = &f;
    in.program_b = &b;
    in.program_w = &w;
    in.program_bw = &bw;
    in.tail.assign(static_cast<std::size_t>(schedule.ranks), TailWork{});
    in.traffic = traffic;
  }
};

ChunkProgram program(ChunkPass pass, std::vector<TimedOp> ops) { return ChunkProgram{pass, std::move(ops)}; }

TimedOp at(TimedOp t, int layer) {
  t.layer = layer;
  return t;
}

// One rank (pp = 1) of a dp = 2 pair (GPUs 0 and 1 of one node) running
// two layers: forward 1 us each, full backward 100 us each (layers 1 then
// 0), `m` micro-batches of 1F1B; each layer moves 2 MB of parameters and
// 4 MB of gradients.
ParallelPlan dp_pair() {
  ParallelPlan p;
  p.dp = 2;
  return p;
}

struct LayeredPair {
  hw::ClusterSpec c = mpft(1);
  Setup s;
  explicit LayeredPair(int m)
      : s(c, dp_pair(), make_schedule(ScheduleKind::OneFOneB, 1, m),
          program(ChunkPass::Forward, {at(compute(1), 0), at(compute(1), 1)}),
          program(ChunkPass::BackwardFull, {at(compute(100), 1), at(compute(100), 0)})) {
    s.in.layer_shards = {{LayerShard{2e6, 0, 4e6, 0}, LayerShard{2e6, 0, 4e6, 0}}};
  }
  // A ring of two sends half of each GPU's bytes to the peer over NVLink.
  Time ring(double bytes) const {
    return c.gpu.nvlink_latency + sim::transfer_duration(bytes / 2, c.gpu.nvlink_unidir.value());
  }
};

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("cluster execution: compute-only pipeline equals the pipeline executor") {
  // pp=4 ranks on GPUs 0..3 of one node, 1F1B, 8 micro-batches, no
  // collectives, a 1 MB activation per hand-off. The pipeline executor with
  // F = 30 us, BW = 50 us and p2p = NVLink latency + 1 MB / NVLink rate
  // (GPU -> NVSwitch -> GPU, a lone flow) must give the same makespan.
  const hw::ClusterSpec c = mpft(1);
  ParallelPlan plan;
  plan.pp = 4;
  const ChunkProgram f = program(ChunkPass::Forward, {compute(10), compute(20)});
  const ChunkProgram bw = program(ChunkPass::BackwardFull, {compute(50)});
  Setup s(c, plan, make_schedule(ScheduleKind::OneFOneB, 4, 8), f, bw);
  s.in.activation_bytes = 1e6;
  const ClusterExecResult r = execute_cluster(s.in);

  const Time p2p = c.gpu.nvlink_latency + sim::transfer_duration(1e6, c.gpu.nvlink_unidir.value());
  ExecCosts costs;
  costs.duration = [](const ScheduleOp& op, int) { return op.type == ChunkOpType::F ? Time::us(30) : Time::us(50); };
  costs.p2p = [&](int, int, bool) { return p2p; };
  const ExecResult ref = execute(s.schedule, costs);
  CHECK(r.exec.makespan == ref.makespan);
  CHECK(r.step_time == ref.makespan);  // no gradient sync, no optimizer work
  for (int rk = 0; rk < 4; ++rk) {
    CAPTURE(rk);
    CHECK(r.exec.busy_per_rank[static_cast<std::size_t>(rk)] == ref.busy_per_rank[static_cast<std::size_t>(rk)]);
    CHECK(r.exec.peak_activations_per_rank[static_cast<std::size_t>(rk)] ==
          ref.peak_activations_per_rank[static_cast<std::size_t>(rk)]);
  }
}

TEST_CASE("cluster execution: full and collapsed fidelity agree on a symmetric scenario") {
  // 2 nodes of 8 GPUs, pp=2 (rank r on node r), dp=8, ep=8: every EP group
  // is one node (NVLink only); replica k's pipeline transfers go from GPU k
  // to GPU 8+k on plane k, so no two replicas share a link. Collapsing to
  // replica 0 must not change a picosecond.
  ParallelPlan plan;
  plan.pp = 2;
  plan.dp = 8;
  plan.ep = 8;
  const ChunkProgram f = program(ChunkPass::Forward, {compute(10), comm(CommKind::EpDispatch, 4e6, 8), compute(20),
                                                      comm(CommKind::EpCombine, 8e6, 8), compute(5)});
  const ChunkProgram bw = program(ChunkPass::BackwardFull, {compute(15), comm(CommKind::EpDispatch, 8e6, 8),
                                                            compute(40), comm(CommKind::EpCombine, 4e6, 8)});
  Setup s(mpft(2), plan, make_schedule(ScheduleKind::OneFOneB, 2, 6), f, bw);
  s.in.activation_bytes = 2e6;
  for (auto& t : s.in.tail) {
    t.dense_grad_bytes = 64e6;
    t.dense_param_bytes = 32e6;
    t.optimizer = Time::us(100);
  }
  s.in.fidelity = Fidelity::Collapsed;
  const ClusterExecResult collapsed = execute_cluster(s.in);
  s.in.fidelity = Fidelity::Full;
  const ClusterExecResult full = execute_cluster(s.in);
  CHECK(collapsed.simulated_gpus == 2);
  CHECK(full.simulated_gpus == 16);
  CHECK(full.step_time == collapsed.step_time);
  CHECK(full.exec.makespan == collapsed.exec.makespan);
  for (int rk = 0; rk < 2; ++rk)
    CHECK(full.exec.busy_per_rank[static_cast<std::size_t>(rk)] ==
          collapsed.exec.busy_per_rank[static_cast<std::size_t>(rk)]);
  CHECK(full.events > collapsed.events);  // more GPUs ran their kernels
}

TEST_CASE("cluster execution: a collective waits for its slowest member") {
  // One rank (pp=1), 8 GPUs of one node in one EP group, one micro-batch:
  // F = 10 us of compute then a dispatch; BW = 10 us of compute. GPU 3 is
  // 1.5x slower, so the dispatch starts for everyone at 15 us and lasts
  //   D = NVLink latency + (7/8 x 8 MB) / NVLink rate
  // (each GPU sends 1 MB to each of the 7 others: 7 MB on its NVLink up and
  // down links, all links equally loaded), after which GPU 3's backward ends
  // last at 15 + D + 15 us.
  const hw::ClusterSpec c = mpft(1);
  ParallelPlan plan;
  plan.dp = 8;
  plan.ep = 8;
  const ChunkProgram f = program(ChunkPass::Forward, {compute(10), comm(CommKind::EpDispatch, 8e6, 8)});
  const ChunkProgram bw = program(ChunkPass::BackwardFull, {compute(10)});
  Setup s(c, plan, make_schedule(ScheduleKind::OneFOneB, 1, 1), f, bw);
  s.in.fidelity = Fidelity::Full;
  s.in.slowdown.assign(8, 1.0);
  s.in.slowdown[3] = 1.5;
  const ClusterExecResult r = execute_cluster(s.in);
  const Time d = c.gpu.nvlink_latency + sim::transfer_duration(7e6, c.gpu.nvlink_unidir.value());
  CHECK(std::llabs((r.step_time - (Time::us(30) + d)).count_ps()) <= 2);  // rounding of the bundle's rate
  CHECK(r.critical_gpu == 3);
  CHECK(r.critical_group.kind == CommKind::EpDispatch);
  CHECK(r.critical_group.slowest_member == 3);
  CHECK(r.critical_group.waiting == Time::us(5));
  // Everybody else waited 5 us for GPU 3 on its compute stream: exposed.
  CHECK(r.gpus[0].exposed.ep_dispatch == Time::zero());  // nothing of its own comes after the dispatch in F
}

TEST_CASE("cluster execution: ZeRO-3 gathers each layer before it and scatters its gradients after it") {
  // pp=1, dp=2 (GPUs 0 and 1 of one node), one micro-batch. Forward: two
  // layers of 1 us; backward: two layers of 100 us. Each layer gathers
  // P = 2 MB of parameters and scatters G = 4 MB of gradients over the pair,
  // one collective at a time on the data-parallel stream. A ring of two
  // sends half of each to the peer over NVLink:
  //   a = L + 1 MB / R (gather), s = L + 2 MB / R (scatter), L, R: NVLink.
  // Forward: gathers of layers 0 and 1 issued at 0 run [0, a], [a, 2a];
  //   layer 0 computes [a, a + 1], layer 1 waits for its gather (a > 1 us):
  //   [2a, 2a + 1]. T_F = 2a + 1.
  // Backward (layers 1 then 0): gathers [T_F, T_F + a], [T_F + a, T_F + 2a];
  //   layer 1 computes [T_F + a, T_F + a + 100]; layer 0 (its gather done,
  //   a < 100 us) follows at once and layer 1's scatter starts with it; the
  //   program's end at T_F + a + 200 queues layer 0's scatter (s < 100 us:
  //   the stream is free): it ends at T_F + a + 200 + s.
  // Step = T_F + a + 200 + s = 3a + s + 201 us (no optimizer work).
  // Exposed waits for gathers: a (forward layer 0) + (a - 1) (layer 1) + a
  // (backward layer 1) = 3a - 1 us.
  LayeredPair lp(1);
  Setup& s = lp.s;
  const Time a = lp.ring(2e6);
  const Time sc = lp.ring(4e6);
  REQUIRE(a > Time::us(1));
  REQUIRE(sc < Time::us(100));
  for (Fidelity fid : {Fidelity::Full, Fidelity::Collapsed}) {
    CAPTURE(to_string(fid));
    s.in.fidelity = fid;
    const ClusterExecResult r = execute_cluster(s.in);
    const Time expected = a * 3 + sc + Time::us(201);
    CHECK(std::llabs((r.step_time - expected).count_ps()) <= 8);  // rounding of the bundles' rates
    CHECK(std::llabs((r.gpus[0].exposed_dp - (a * 3 - Time::us(1))).count_ps()) <= 8);
    CHECK(std::llabs((r.gpus[0].sync_end - r.gpus[0].pipeline_end - sc).count_ps()) <= 8);
  }
}

TEST_CASE("cluster execution: overlapped gradient reduction runs in each stage's last backward only") {
  // pp=1, dp=2 (GPUs 0 and 1 of one node), ZeRO-1, two micro-batches (1F1B:
  // F0 F1 B0 B1 on one rank). Each layer reduce-scatters G = 4 MB of
  // gradients, s = L + 2 MB / R alone; the tail then all-gathers
  // the stage's 4 MB of parameters (a = L + 2 MB / R). Only B1, the last
  // backward, reduces. 1F1B on one rank runs F0 [0, 2], B0 [2, 202],
  // F1 [202, 204], B1 [204, 404] (layers 1 then 0, 100 us each); layer 1's
  // reduction starts with layer 0's kernel at 304 and ends at 304 + s
  // (s < 100 us); layer 0's starts at 404 and ends at 404 + s; the tail's
  // all-gather follows: step = 404 + s + a.
  LayeredPair lp(2);
  Setup& s = lp.s;
  s.in.layer_sync = LayerSync::GradientsOverlapped;
  s.in.tail[0].dense_param_bytes = 4e6;  // the whole stage's parameters, gathered after the pipeline
  const Time a = lp.ring(4e6);
  const Time sc = lp.ring(4e6);
  REQUIRE(sc < Time::us(100));
  for (Fidelity fid : {Fidelity::Full, Fidelity::Collapsed}) {
    CAPTURE(to_string(fid));
    s.in.fidelity = fid;
    const ClusterExecResult r = execute_cluster(s.in);
    CHECK(r.exec.makespan == Time::us(404));
    CHECK(std::llabs((r.step_time - (Time::us(404) + sc + a)).count_ps()) <= 8);  // rounding of the bundles' rates
    CHECK(r.gpus[0].exposed_dp == Time::zero());  // no gathers
  }
}

TEST_CASE("cluster execution: overlapped gradient reduction under DualPipe (mirror ranks share a stage)") {
  // pp=2 DualPipe, dp=2: both ranks hold both stages, so each stage's
  // gradient group is 4 GPUs on two ranks that finish the stage at
  // different ops and in opposite orders. With a stream per stage and keys
  // by stage the reductions must meet (no deadlock), full and collapsed
  // fidelity must agree, and overlapping cannot be slower than reducing the
  // same bytes after the pipeline.
  ParallelPlan plan;
  plan.pp = 2;
  plan.dp = 2;
  const ChunkProgram f = program(ChunkPass::Forward, {at(compute(5), 0), at(compute(5), 1)});
  const ChunkProgram bw = program(ChunkPass::BackwardFull, {at(compute(10), 1), at(compute(10), 0)});
  Setup s(mpft(1), plan, make_schedule(ScheduleKind::DualPipe, 2, 8), f, bw);
  for (int st = 0; st < 2; ++st) {
    s.b[static_cast<std::size_t>(st)] = program(ChunkPass::BackwardInput, {at(compute(5), 1), at(compute(5), 0)});
    s.w[static_cast<std::size_t>(st)] = program(ChunkPass::BackwardWeight, {at(compute(5), 1), at(compute(5), 0)});
  }
  for (const auto& ops : s.schedule.per_rank)
    for (const ScheduleOp& op : ops)
      if (op.type == ChunkOpType::FB) s.in.fb_comm_order[{op.fwd.stage, op.bwd.stage}] = {};
  // After the pipeline: both stages' 2 x 8 MB of gradients per GPU.
  for (auto& t : s.in.tail) t.dense_grad_bytes = 32e6;
  const ClusterExecResult after = execute_cluster(s.in);
  for (auto& t : s.in.tail) t.dense_grad_bytes = 0;
  s.in.layer_shards.assign(2, {LayerShard{0, 0, 8e6, 0}, LayerShard{0, 0, 8e6, 0}});
  s.in.layer_sync = LayerSync::GradientsOverlapped;
  s.in.fidelity = Fidelity::Full;
  const ClusterExecResult full = execute_cluster(s.in);
  s.in.fidelity = Fidelity::Collapsed;
  const ClusterExecResult collapsed = execute_cluster(s.in);
  CHECK(full.step_time == collapsed.step_time);
  CHECK(collapsed.step_time <= after.step_time);
  CHECK(collapsed.exec.makespan == after.exec.makespan);  // the pipeline itself is not slowed here
  CHECK(collapsed.collectives > after.collectives);       // per layer and stage, not one per GPU
}

TEST_CASE("cluster execution: ZeRO-3 input checks") {
  ParallelPlan plan;
  plan.pp = 2;
  plan.dp = 2;
  const ChunkProgram f = program(ChunkPass::Forward, {compute(1)});
  const ChunkProgram bw = program(ChunkPass::BackwardFull, {compute(2)});
  SUBCASE("a shard list per stage") {
    Setup s(mpft(1), plan, make_schedule(ScheduleKind::OneFOneB, 2, 2), f, bw);
    s.in.layer_shards = {{LayerShard{1e6, 0, 2e6, 0}}};
    CHECK_THROWS_AS(execute_cluster(s.in), std::invalid_argument);
  }
  SUBCASE("every layer of a gradient-making program (else its gradients would never be reduced)") {
    Setup s(mpft(1), plan, make_schedule(ScheduleKind::OneFOneB, 2, 2), f, bw);
    s.in.layer_shards.assign(2, {LayerShard{1e6, 0, 2e6, 0}, LayerShard{1e6, 0, 2e6, 0}});  // bw runs layer 0 only
    s.in.layer_sync = LayerSync::GradientsOverlapped;
    CHECK_THROWS_AS(execute_cluster(s.in), std::invalid_argument);
  }
  SUBCASE("no overlapped F&B pairs (DualPipeV)") {
    Setup s(mpft(1), plan, make_schedule(ScheduleKind::DualPipeV, 2, 4), f, bw);
    s.in.layer_shards.assign(4, {LayerShard{1e6, 0, 2e6, 0}});
    CHECK_THROWS_AS(execute_cluster(s.in), std::invalid_argument);
  }
}

TEST_CASE("ring bundle on an idle fabric equals the ring schedule's closed form") {
  // 8 GPUs of one node, 64 MB per GPU, ring reduce-scatter. Closed form
  // (sim::collective_time_idle, step by step): 7 x (latency + 8 MB / rate).
  // The bundle: every NVLink up and down link carries 7/8 x 64 MB = 56 MB,
  // so 7 x latency + 56 MB / rate. Equal up to the rounding of 7 steps.
  const hw::ClusterSpec c = mpft(1);
  const hw::Topology topo = hw::Topology::build(c);
  std::vector<int> m{0, 1, 2, 3, 4, 5, 6, 7};
  const Bundle b = make_bundle(topo, ring_transfers(m, 64e6, 1), 7);
  const Time bundle_time = b.latency + sim::transfer_duration(b.bytes, c.gpu.nvlink_unidir.value() / b.route[0].weight);
  const Time closed = sim::collective_time_idle(topo.links(), sim::ring_reduce_scatter(8, ByteCount(64e6)),
                                                [&](int a, int z) { return topo.route(m[a], m[z]); });
  CHECK(std::llabs((bundle_time - closed).count_ps()) <= 8);
  CHECK(b.share == 1);  // one transfer on every link of a ring
  CHECK(b.idle_time == sim::transfer_duration(56e6, c.gpu.nvlink_unidir.value()));
}

TEST_CASE("cluster layout: groups") {
  // DeepSeek-V3: pp=16, dp=128, ep=64, DualPipe. Rank r holds stages r and
  // 15-r, so the dense gradient group of a GPU of rank 2 is the 128 GPUs of
  // rank 2 and the 128 of rank 13; its expert group is the 2 GPUs per rank
  // with the same EP rank (dp/ep = 2 EP groups per rank) on both ranks.
  ParallelPlan plan;
  plan.pp = 16;
  plan.dp = 128;
  plan.ep = 64;
  const Schedule sched = make_schedule(ScheduleKind::DualPipe, 16, 32);
  const ClusterLayout l(plan, sched);
  CHECK(l.gpus() == 2048);
  const int g = l.gpu(2, 70);  // EP group 1 of rank 2, EP rank 6
  CHECK(l.ep_group_of(g) == 2 * 2 + 1);
  const std::vector<int> ep = l.ep_members(l.ep_group_of(g));
  CHECK(ep.size() == 64);
  CHECK(ep.front() == l.gpu(2, 64));
  const std::vector<int> dense = l.dp_members(l.dp_group_of(g, false), false);
  CHECK(dense.size() == 256);
  CHECK(dense[128] == l.gpu(13, 0));
  const std::vector<int> expert = l.dp_members(l.dp_group_of(g, true), true);
  CHECK(expert == std::vector<int>{l.gpu(2, 6), l.gpu(2, 70), l.gpu(13, 6), l.gpu(13, 70)});
  CHECK(l.dp_group_of(l.gpu(13, 6), true) == l.dp_group_of(g, true));
}
}
