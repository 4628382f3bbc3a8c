#include "trainsim/model/cluster_exec.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <stdexcept>
#include <tuple>
#include <unordered_map>

#include "trainsim/sim/engine.hpp"
#include "trainsim/sim/flow_network.hpp"

namespace trainsim::model {

const char* to_string(Fidelity f) { return f == Fidelity::Full ? "full" : "collapsed"; }

namespace {

bool is_ep(CommKind k) { return k == CommKind::EpDispatch || k == CommKind::EpCombine; }
// The member slot of a ZeRO-3 stream collective (programs: >= 0; tail: -1).
// Stream k's collectives join as member slot kShardSlot - k.
constexpr int kShardSlot = -2;
bool is_dp(CommKind k) {
  return k == CommKind::DpReduceScatter || k == CommKind::DpAllGather || k == CommKind::DpAllReduce;
}

// Dense index of a chunk (direction, stage, micro-batch) within one replica.
struct ChunkIx {
  int stages = 0, per_direction = 0, directions = 0;
  explicit ChunkIx(const Schedule& s)
      : stages(s.stages), per_direction(s.microbatches_per_direction()), directions(s.directions()) {}
  std::size_t size() const {
    return static_cast<std::size_t>(stages) * static_cast<std::size_t>(per_direction) *
           static_cast<std::size_t>(directions);
  }
  std::size_t operator()(const ChunkRef& c) const {
    return (static_cast<std::size_t>(c.direction) * static_cast<std::size_t>(stages) +
            static_cast<std::size_t>(c.stage)) * static_cast<std::size_t>(per_direction) +
           static_cast<std::size_t>(c.microbatch);
  }
};

// A collective instance: members arrive, then one bundle runs.
struct InstanceKey {
  int kind = 0, group = 0, op = 0, where = 0;
  bool operator==(const InstanceKey&) const = default;
};

// Layers of a chunk program in the order it runs them (ZeRO-3 gathers and
// scatters follow this order): pos[i] is kernel i's position in `layer`.
struct ProgramLayers {
  std::vector<int> pos;
  std::vector<int> layer;
};

ProgramLayers program_layers(const ChunkProgram& p) {
  ProgramLayers out;
  for (const TimedOp& op : p.ops) {
    if (out.layer.empty() || out.layer.back() != op.layer) out.layer.push_back(op.layer);
    out.pos.push_back(static_cast<int>(out.layer.size()) - 1);
  }
  return out;
}

// A chunk program in flight on a GPU. Kernels run in program order, one at
// a time, except that a kernel marked concurrent_with_next lets the next one
// start with it (tensor-parallel communication overlapped with its GEMM).
struct Running {
  const ChunkProgram* program = nullptr;
  std::size_t pc = 0;          // next kernel to start
  Time ready_at{};             // when that kernel became ready
  Time comm_started{};         // when its last communication kernel started
  bool waiting = false;        // kernel pc is ready and waits for its stream
  bool backward = false;
  int role = 0;                // 0: the op's forward program, 1: its backward
  int running = 0;             // its kernels in flight
  bool allow = false;          // the last started kernel lets the next start with it
  int comm_index = 0;          // kernel index of its collective in flight
  CommKind blocked_by = CommKind::None;  // a collective was the last thing it waited for
  bool next_ready() const { return running == 0 || (running == 1 && allow); }
};

// A running program's per-layer data-parallel collectives (ZeRO-3,
// overlapped gradient reduction), kept beside Running so the executor's
// hot state does not grow when they are off.
struct LayerSyncState {
  int stage = 0;
  const ProgramLayers* layers = nullptr;
  bool gathers = false;        // its kernels need their layer's parameters gathered
  bool scatters = false;       // it makes weight gradients, reduced per layer
  int requested = 0;           // layer positions whose gather was issued
  int gathered = 0;            // positions whose parameters are here
  int scattered = 0;           // positions whose reduction was issued
  int started_pos = -1;        // position of the last kernel started
  int stream = 0;              // its data-parallel stream
  bool param_wait = false;     // kernel pc waits for its layer's parameters
  Time param_wait_since{};
  bool params_ready(std::size_t pc) const { return !gathers || layers->pos[pc] < gathered; }
};

// One collective of a data-parallel stream: a layer's parameter all-gather
// or gradient reduction (kind None: a layer with nothing to move).
struct ShardStep {
  CommKind kind = CommKind::None;
  bool expert = false;
  double bytes = 0;
  int prog = 0;            // the program slot a gather serves
  bool completes = false;  // the last gather of its layer
  InstanceKey key{};
};

// One tail step: a gradient collective or (kind None) the optimizer.
struct TailStep {
  CommKind kind = CommKind::None;
  bool expert = false;
  double bytes = 0;
};

struct Gpu {
  int id = 0, rank = 0, slot = 0;  // slot: replica index among the simulated ones
  bool keep = false;               // keep its timeline (replica 0)
  double slowdown = 1.0;
  std::size_t next = 0;            // next schedule op
  bool running = false;
  std::array<Running, 2> prog{};
  int nprog = 0, unfinished = 0;
  const std::vector<std::pair<int, int>>* comm_order = nullptr;  // FB ops
  std::size_t comm_next = 0;
  bool compute_busy = false, comm_busy = false;
  Time compute_idle_since{}, op_start{}, idle_since{};
  Time last_send{};                // send time of the input that arrived last
  int live = 0, deferred = 0;
  int tail = -1;                   // next tail step; -1 before the tail
  std::vector<TailStep> tail_steps;
  // Data-parallel streams (ZeRO-3: one; overlapped gradient reduction: one
  // per stage the GPU holds): collectives one at a time, in the order issued.
  struct DpStream {
    std::vector<ShardStep> queue;
    std::size_t head = 0;
    bool busy = false;
    ShardStep now;
  };
  std::vector<DpStream> streams;
  bool tail_waits = false;         // pipeline done, a stream still busy
  bool streams_idle() const {
    for (const DpStream& d : streams)
      if (d.busy || d.head < d.queue.size()) return false;
    return true;
  }
  GpuStats stats;
};

struct InstanceKeyHash {
  std::size_t operator()(const InstanceKey& k) const {
    std::uint64_t h = 1469598103934665603ull;
    for (int v : {k.kind, k.group, k.op, k.where}) h = (h ^ static_cast<std::uint32_t>(v)) * 1099511628211ull;
    return static_cast<std::size_t>(h);
  }
};
struct Instance {
  int arrived = 0;
  Time first{}, last{};
  int last_gpu = -1;
  std::vector<std::pair<int, int>> members;  // (gpu index, program slot)
};

class ClusterExecutor {
 public:
  explicit ClusterExecutor(const ClusterExecInputs& in);
  ClusterExecResult run();

 private:
  // ---- set-up ----
  void make_gpus();
  std::vector<TailStep> tail_of(int rank) const;
  bool simulated(int global_gpu) const;

  // ---- schedule ops ----
  bool ready(const Gpu& g, const ScheduleOp& op) const;
  void try_start(int gi);
  void begin_op(int gi, const ScheduleOp& op);
  void op_done(int gi);
  void forward_done(Gpu& g, const ChunkRef& c);
  void backward_done(Gpu& g, const ChunkRef& c);
  void deliver(const Gpu& from, const ChunkRef& to, bool forward);
  void arrive(int gi, std::size_t k, bool forward, Time sent);

  // ---- kernels on two streams ----
  void dispatch(int gi);
  void start_kernel(int gi, int p, Stream s);
  void kernel_done(int gi, int p, Stream s, Time begin, int index);
  void advance(int gi, int p, CommKind finished);
  void make_ready(int gi, int p);
  void expose(int gi, int p, Time now);

  // ---- ZeRO-3: parameter gathers and gradient scatters per layer ----
  void shard_begin(int gi, int p, int stage);
  void shard_program_end(int gi, int p);
  void shard_kernel(int gi, int p, int pos);
  void shard_request(int gi, int p, int pos, bool scatter);
  void shard_pump(int gi, int stream);
  void shard_done(int gi, int stream);
  int last_weight_grad_op(int rank, int stage) const;
  void find_last_weight_grad_ops();

  // ---- collectives ----
  void join(int gi, int p, CommKind kind, bool expert, double bytes, InstanceKey key, int state = 0);
  std::pair<int, const std::vector<int>*> group_of(const Gpu& g, CommKind kind, bool expert);
  const Bundle& bundle(CommKind kind, int cls, int group, const std::vector<int>& members, double bytes, int state);
  int state_of(const Gpu& g, const Running& r, const TimedOp& op) const;
  void collective_done(InstanceKey key, Time first, const sim::FlowRecord* f);
  void record_collective(const Gpu& g, int p, const sim::FlowRecord* f, CommKind kind);
  int simulated_members(int cls, int group, const std::vector<int>& members);

  // ---- tail ----
  void start_tail(int gi);
  void tail_step(int gi);

  void finish(ClusterExecResult& r);

  const ClusterExecInputs& in_;
  const Schedule& s_;
  const ClusterLayout& layout_;
  ChunkIx ix_;
  int slots_ = 1;  // simulated replicas per rank
  sim::Engine engine_;
  sim::FlowNetwork net_;
  std::vector<Gpu> gpus_;
  // Per simulated replica slot and chunk.
  std::vector<unsigned char> fwd_input_, fwd_done_, grad_input_, bwd_done_;
  std::unordered_map<InstanceKey, Instance, InstanceKeyHash> instances_;
  std::map<std::tuple<int, int, double, int>, Bundle> bundles_;
  std::map<std::pair<int, int>, std::vector<int>> members_;
  std::map<std::pair<int, int>, int> sim_members_;
  std::map<const ChunkProgram*, ProgramLayers> program_layers_;  // layer syncs
  bool sync_on_ = false;                                // layer_shards given
  std::vector<std::array<LayerSyncState, 2>> sync_;     // per GPU and program slot, when sync_on_
  // Overlapped gradient reduction: per rank, (stage, index of the last op
  // making the stage's weight gradients).
  std::vector<std::vector<std::pair<int, int>>> last_wgrad_;
  std::map<std::pair<int, int>, GroupStats> group_stats_;
  std::map<std::pair<int, int>, std::map<int, Time>> late_;  // per group: member -> time others waited for it
  ExecResult exec_;
  std::uint64_t flows_ = 0, collectives_ = 0;
  std::vector<Time> bounded_;  // per link: life of the flows it bounded
  std::vector<KernelRecord> kernels_;
  std::vector<TransferRecord> transfers_;
  void bounded_by(const sim::FlowRecord& f) {
    if (f.bottleneck >= 0) bounded_[static_cast<std::size_t>(f.bottleneck)] += f.end - f.start;
  }
};

// Layer syncs need one shard list per stage covering its programs' layers.
// ZeRO-3 also needs each stage on one rank and no overlapped F&B ops:
// members of a data-parallel group must issue the stream's collectives in
// one order, which two programs sharing the stream at different speeds would
// not keep. (Overlapped gradient reduction has one program making gradients
// per op and a stream per stage.)
void check_shards(const ClusterExecInputs& in) {
  const Schedule& s = *in.schedule;
  if (static_cast<int>(in.layer_shards.size()) != s.stages)
    throw std::invalid_argument("execute_cluster: layer shards must be given per stage");
  for (const auto* progs : {in.program_f, in.program_b, in.program_w, in.program_bw})
    for (std::size_t st = 0; st < progs->size(); ++st)
      for (const TimedOp& op : (*progs)[st].ops)
        if (op.layer < 0 || op.layer >= static_cast<int>(in.layer_shards[st].size()))
          throw std::invalid_argument("execute_cluster: a layer shard is missing");
  // A layer missing from a gradient-making program would never be reduced.
  for (const auto* progs : {in.program_w, in.program_bw})
    for (std::size_t st = 0; st < progs->size(); ++st) {
      const ChunkProgram& pr = (*progs)[st];
      if (!pr.ops.empty() && program_layers(pr).layer.size() != in.layer_shards[st].size())
        throw std::invalid_argument("execute_cluster: a gradient-making program must run every layer of its stage");
    }
  if (in.layer_sync != LayerSync::Zero3) return;
  std::vector<int> holders(static_cast<std::size_t>(s.stages), 0);
  for (int rk = 0; rk < s.ranks; ++rk) {
    for (int st : s.stages_of_rank(rk)) ++holders[static_cast<std::size_t>(st)];
    for (const ScheduleOp& op : s.per_rank[static_cast<std::size_t>(rk)])
      if (op.type == ChunkOpType::FB)
        throw std::invalid_argument("execute_cluster: ZeRO-3 with overlapped F&B ops is not modelled");
  }
  for (int h : holders)
    if (h != 1) throw std::invalid_argument("execute_cluster: ZeRO-3 needs every stage on one pipeline rank");
}

const ClusterExecInputs& checked(const ClusterExecInputs& in) {
  if (!in.schedule || !in.layout || !in.topology || !in.program_f || !in.program_b || !in.program_w ||
      !in.program_bw || !in.traffic)
    throw std::invalid_argument("execute_cluster: missing input");
  if (!in.layer_shards.empty()) check_shards(in);
  return in;
}

ClusterExecutor::ClusterExecutor(const ClusterExecInputs& in)
    : in_(checked(in)), s_(*in.schedule), layout_(*in.layout), ix_(*in.schedule), net_(engine_) {
  if (in.topology->gpu_count() < layout_.gpus())
    throw std::invalid_argument(fmt::format("execute_cluster: the layout needs {} GPUs, the topology has {}",
                                            layout_.gpus(), in.topology->gpu_count()));
  if (in.routing_state && (!in.retime || static_cast<int>(in.stage_first_layer.size()) != s_.stages))
    throw std::invalid_argument("execute_cluster: routing states need retime and every stage's first layer");
  if (static_cast<int>(in.tail.size()) != s_.ranks)
    throw std::invalid_argument("execute_cluster: tail work must be given per pipeline rank");
  slots_ = in.fidelity == Fidelity::Full ? layout_.per_rank() : 1;
  const auto& links = in.topology->links();
  if (!in.link_capacity_Bps.empty() && in.link_capacity_Bps.size() != links.size())
    throw std::invalid_argument("execute_cluster: one capacity per topology link expected");
  for (std::size_t i = 0; i < links.size(); ++i) {
    sim::Link l = links[i];
    if (!in.link_capacity_Bps.empty()) l.capacity = BytesPerSecond(in.link_capacity_Bps[i]);
    net_.add_link(std::move(l));
  }
  bounded_.assign(links.size(), Time::zero());
  sync_on_ = !in.layer_shards.empty();
  const std::size_t n = ix_.size() * static_cast<std::size_t>(slots_);
  fwd_input_.assign(n, 0);
  fwd_done_.assign(n, 0);
  grad_input_.assign(n, 0);
  bwd_done_.assign(n, 0);
  make_gpus();
}

void ClusterExecutor::make_gpus() {
  gpus_.resize(static_cast<std::size_t>(s_.ranks) * static_cast<std::size_t>(slots_));
  if (sync_on_) sync_.resize(gpus_.size());
  for (int r = 0; r < s_.ranks; ++r) {
    const std::vector<TailStep> tail = tail_of(r);
    for (int k = 0; k < slots_; ++k) {
      Gpu& g = gpus_[static_cast<std::size_t>(r * slots_ + k)];
      g.rank = r;
      g.slot = k;
      g.id = layout_.gpu(r, k);
      g.keep = k == 0;
      if (!in_.slowdown.empty()) g.slowdown = in_.slowdown[static_cast<std::size_t>(g.id)];
      g.tail_steps = tail;
      g.stats.gpu = g.id;
      if (!in_.layer_shards.empty())
        g.streams.resize(in_.layer_sync == LayerSync::Zero3 ? 1 : s_.stages_of_rank(r).size());
    }
  }
  if (sync_on_ && in_.layer_sync == LayerSync::GradientsOverlapped) find_last_weight_grad_ops();
  const auto ranks = static_cast<std::size_t>(s_.ranks);
  exec_.busy_per_rank.assign(ranks, Time::zero());
  exec_.peak_activations_per_rank.assign(ranks, 0);
  exec_.peak_deferred_weight_per_rank.assign(ranks, 0);
  exec_.timeline.resize(ranks);
}

std::vector<TailStep> ClusterExecutor::tail_of(int rank) const {
  std::vector<TailStep> steps;
  for (const TailCollective& c : tail_collectives(in_.tail[static_cast<std::size_t>(rank)]))
    steps.push_back(TailStep{c.kind, c.expert, c.bytes});
  steps.push_back(TailStep{CommKind::None, false, 0});  // the optimizer
  return steps;
}

bool ClusterExecutor::simulated(int global_gpu) const {
  return slots_ == layout_.per_rank() || layout_.replica_of(global_gpu) < slots_;
}


// ---------------------------------------------------------------------------
// Schedule ops: the pipeline dependencies of model/pipeline_exec, per replica.

bool ClusterExecutor::ready(const Gpu& g, const ScheduleOp& op) const {
  const std::size_t base = static_cast<std::size_t>(g.slot) * ix_.size();
  auto fwd_ready = [&](const ChunkRef& c) { return c.stage == 0 || fwd_input_[base + ix_(c)] != 0; };
  auto bwd_ready = [&](const ChunkRef& c) {
    return fwd_done_[base + ix_(c)] != 0 && (c.stage == s_.stages - 1 || grad_input_[base + ix_(c)] != 0);
  };
  switch (op.type) {
    case ChunkOpType::F: return fwd_ready(op.fwd);
    case ChunkOpType::B:
    case ChunkOpType::BW: return bwd_ready(op.bwd);
    case ChunkOpType::W: return bwd_done_[base + ix_(op.bwd)] != 0;
    case ChunkOpType::FB: return fwd_ready(op.fwd) && bwd_ready(op.bwd);
  }
  return false;
}

void ClusterExecutor::try_start(int gi) {
  Gpu& g = gpus_[static_cast<std::size_t>(gi)];
  if (g.running || g.tail >= 0) return;
  const auto& ops = s_.per_rank[static_cast<std::size_t>(g.rank)];
  if (g.next >= ops.size()) {
    start_tail(gi);
    return;
  }
  const ScheduleOp& op = ops[g.next];
  if (!ready(g, op)) return;
  const Time now = engine_.now();
  // Started later than the GPU went idle: the arrival that made the op ready
  // ended the wait; the part of the wait while it was in flight is exposed.
  if (now > g.idle_since) g.stats.exposed_pp += now - max(g.idle_since, g.last_send);
  g.running = true;
  g.op_start = now;
  begin_op(gi, op);
  if (g.unfinished == 0) {
    // Nothing to run (empty programs): end from an event, never recursively.
    engine_.schedule(Time::zero(), [this, gi] { op_done(gi); });
    return;
  }
  dispatch(gi);
}

void ClusterExecutor::begin_op(int gi, const ScheduleOp& op) {
  Gpu& g = gpus_[static_cast<std::size_t>(gi)];
  g.nprog = 0;
  g.comm_order = nullptr;
  g.comm_next = 0;
  auto add = [&](const std::vector<ChunkProgram>* v, int stage, bool backward) {
    const ChunkProgram* p = &(*v)[static_cast<std::size_t>(stage)];
    if (p->ops.empty()) return;
    const int role = op.type == ChunkOpType::FB && backward ? 1 : 0;
    Running r;
    r.program = p;
    r.ready_at = engine_.now();
    r.waiting = true;
    r.backward = backward;
    r.role = role;
    g.prog[static_cast<std::size_t>(g.nprog)] = r;
    if (sync_on_) shard_begin(gi, g.nprog, stage);
    ++g.nprog;
  };
  switch (op.type) {
    case ChunkOpType::F: add(in_.program_f, op.fwd.stage, false); break;
    case ChunkOpType::B: add(in_.program_b, op.bwd.stage, true); break;
    case ChunkOpType::W: add(in_.program_w, op.bwd.stage, true); break;
    case ChunkOpType::BW: add(in_.program_bw, op.bwd.stage, true); break;
    case ChunkOpType::FB: {
      add(in_.program_f, op.fwd.stage, false);
      add(in_.program_bw, op.bwd.stage, true);
      const auto it = in_.fb_comm_order.find({op.fwd.stage, op.bwd.stage});
      if (it == in_.fb_comm_order.end())
        throw std::invalid_argument(fmt::format("execute_cluster: no communication order for the pair ({})", describe(op)));
      g.comm_order = &it->second;
      break;
    }
  }
  g.unfinished = g.nprog;
}

void ClusterExecutor::op_done(int gi) {
  Gpu& g = gpus_[static_cast<std::size_t>(gi)];
  const ScheduleOp& op = s_.per_rank[static_cast<std::size_t>(g.rank)][g.next];
  const Time now = engine_.now();
  const auto r = static_cast<std::size_t>(g.rank);
  if (g.keep) {
    exec_.timeline[r].push_back(OpTiming{g.rank, static_cast<int>(g.next), g.op_start, now});
    exec_.busy_per_rank[r] += now - g.op_start;
  }
  g.stats.busy += now - g.op_start;
  switch (op.type) {
    case ChunkOpType::F: forward_done(g, op.fwd); break;
    case ChunkOpType::B:
      backward_done(g, op.bwd);
      ++g.deferred;
      break;
    case ChunkOpType::BW: backward_done(g, op.bwd); break;
    case ChunkOpType::W: --g.deferred; break;
    case ChunkOpType::FB:
      forward_done(g, op.fwd);  // counted first: both chunks are resident
      backward_done(g, op.bwd);
      break;
  }
  if (g.keep) {
    exec_.peak_deferred_weight_per_rank[r] = std::max(exec_.peak_deferred_weight_per_rank[r], g.deferred);
  }
  g.running = false;
  ++g.next;
  g.idle_since = now;
  g.stats.pipeline_end = now;
  try_start(gi);
}

void ClusterExecutor::forward_done(Gpu& g, const ChunkRef& c) {
  fwd_done_[static_cast<std::size_t>(g.slot) * ix_.size() + ix_(c)] = 1;
  ++g.live;
  if (g.keep) {
    int& peak = exec_.peak_activations_per_rank[static_cast<std::size_t>(g.rank)];
    peak = std::max(peak, g.live);
  }
  if (c.stage + 1 < s_.stages) deliver(g, ChunkRef{c.stage + 1, c.microbatch, c.direction}, true);
}

void ClusterExecutor::backward_done(Gpu& g, const ChunkRef& c) {
  bwd_done_[static_cast<std::size_t>(g.slot) * ix_.size() + ix_(c)] = 1;
  --g.live;
  if (c.stage > 0) deliver(g, ChunkRef{c.stage - 1, c.microbatch, c.direction}, false);
}

// The chunk's output goes to the same replica's GPU on the rank holding `to`.
void ClusterExecutor::deliver(const Gpu& from, const ChunkRef& to, bool forward) {
  const int dst_rank = s_.rank_of(to);
  const int dst = dst_rank * slots_ + from.slot;
  const std::size_t k = ix_(to);
  const Time sent = engine_.now();
  if (dst_rank == from.rank) {
    arrive(dst, k, forward, sent);
    return;
  }
  const int dst_id = layout_.gpu(dst_rank, layout_.replica_of(from.id));
  ++flows_;
  const bool rec = in_.record && from.keep;
  const int src_rank = from.rank;
  net_.start_flow(in_.topology->route(from.id, dst_id), ByteCount(in_.activation_bytes),
                  [this, dst, k, forward, sent, rec, src_rank, dst_rank](const sim::FlowRecord& f) {
                    bounded_by(f);
                    if (rec)
                      transfers_.push_back(TransferRecord{src_rank, CommKind::None, dst_rank, f.start, f.end,
                                                          f.bytes.value(), f.bottleneck});
                    arrive(dst, k, forward, sent);
                  });
}

void ClusterExecutor::arrive(int gi, std::size_t k, bool forward, Time sent) {
  Gpu& g = gpus_[static_cast<std::size_t>(gi)];
  const std::size_t at = static_cast<std::size_t>(g.slot) * ix_.size() + k;
  (forward ? fwd_input_ : grad_input_)[at] = 1;
  g.last_send = sent;
  try_start(gi);
}

// ---------------------------------------------------------------------------
// Kernels on the GPU's two streams.

void ClusterExecutor::dispatch(int gi) {
  Gpu& g = gpus_[static_cast<std::size_t>(gi)];
  for (Stream s : {Stream::Compute, Stream::Comm}) {
    if (s == Stream::Compute ? g.compute_busy : g.comm_busy) continue;
    if (s == Stream::Comm && g.comm_order) {
      // The pair's fixed order: only the next collective in it may start.
      if (g.comm_next >= g.comm_order->size()) continue;
      const auto [role, index] = (*g.comm_order)[g.comm_next];
      for (int p = 0; p < g.nprog; ++p) {
        const Running& r = g.prog[static_cast<std::size_t>(p)];
        if (r.role == role && r.waiting && static_cast<int>(r.pc) == index) {
          ++g.comm_next;
          start_kernel(gi, p, s);
          break;
        }
      }
      continue;
    }
    int best = -1;
    for (int p = 0; p < g.nprog; ++p) {
      const Running& r = g.prog[static_cast<std::size_t>(p)];
      if (!r.waiting || r.program->ops[r.pc].stream != s) continue;
      if (best < 0) {
        best = p;
        continue;
      }
      const Running& b = g.prog[static_cast<std::size_t>(best)];
      if (r.ready_at < b.ready_at || (r.ready_at == b.ready_at && r.backward && !b.backward)) best = p;
    }
    if (best >= 0) start_kernel(gi, best, s);
  }
}

void ClusterExecutor::start_kernel(int gi, int p, Stream s) {
  Gpu& g = gpus_[static_cast<std::size_t>(gi)];
  Running& r = g.prog[static_cast<std::size_t>(p)];
  r.waiting = false;
  const int index = static_cast<int>(r.pc);
  const TimedOp& op = r.program->ops[r.pc];
  const Time now = engine_.now();
  if (sync_on_) shard_kernel(gi, p, sync_[static_cast<std::size_t>(gi)][static_cast<std::size_t>(p)].layers->pos[r.pc]);
  ++r.pc;
  ++r.running;
  r.allow = op.concurrent_with_next;
  if (s == Stream::Compute) {
    expose(gi, p, now);
    g.compute_busy = true;
    const Time base = in_.retime ? in_.retime(g.id, op, state_of(g, r, op)) : op.duration;
    const Time d = g.slowdown == 1.0 ? base : Time::seconds(base.to_seconds() * g.slowdown);
    engine_.schedule(d, [this, gi, p, now, index] { kernel_done(gi, p, Stream::Compute, now, index); });
  } else {
    g.comm_busy = true;
    r.comm_started = now;
    r.comm_index = index;
    const InstanceKey key{static_cast<int>(op.op.comm.kind), 0, static_cast<int>(g.next), index * 2 + p};
    const int state = is_ep(op.op.comm.kind) && in_.routing_state ? state_of(g, r, op) : 0;
    join(gi, p, op.op.comm.kind, false, op.op.comm.bytes.value(), key, state);
  }
  if (r.allow && r.pc < r.program->ops.size() && !r.waiting) {
    // The next kernel starts with this one (on the other stream).
    make_ready(gi, p);
    dispatch(gi);
  }
}

// The compute stream sat idle before this program's kernel; if a collective
// of the program was the last thing it waited for, the wait since that
// collective started is exposed communication.
void ClusterExecutor::expose(int gi, int p, Time now) {
  Gpu& g = gpus_[static_cast<std::size_t>(gi)];
  Running& r = g.prog[static_cast<std::size_t>(p)];
  if (r.blocked_by != CommKind::None && now > g.compute_idle_since) {
    const Time since = r.blocked_by == CommKind::DpAllGather
                           ? sync_[static_cast<std::size_t>(gi)][static_cast<std::size_t>(p)].param_wait_since
                           : r.comm_started;
    const Time gap = now - max(g.compute_idle_since, since);
    switch (r.blocked_by) {
      case CommKind::EpDispatch: g.stats.exposed.ep_dispatch += gap; break;
      case CommKind::EpCombine: g.stats.exposed.ep_combine += gap; break;
      case CommKind::DpAllGather: g.stats.exposed_dp += gap; break;
      default: g.stats.exposed.tp += gap; break;
    }
  }
  r.blocked_by = CommKind::None;
}

// The routing state of the chunk a kernel belongs to: its EP group at the
// kernel's global layer and the chunk's micro-batch.
int ClusterExecutor::state_of(const Gpu& g, const Running& r, const TimedOp& op) const {
  if (!in_.routing_state) return 0;
  const ScheduleOp& sop = s_.per_rank[static_cast<std::size_t>(g.rank)][g.next];
  const ChunkRef& c = r.backward ? sop.bwd : sop.fwd;
  const int layer = in_.stage_first_layer[static_cast<std::size_t>(c.stage)] + op.layer;
  const int mb = c.direction * ix_.per_direction + c.microbatch;
  return in_.routing_state(layout_.ep_group_of(g.id), layer, mb);
}

void ClusterExecutor::kernel_done(int gi, int p, Stream s, Time begin, int index) {
  Gpu& g = gpus_[static_cast<std::size_t>(gi)];
  const Time now = engine_.now();
  if (s == Stream::Compute) {
    g.compute_busy = false;
    g.compute_idle_since = now;
    g.stats.compute += now - begin;
    if (in_.record && g.keep) {
      const Running& r = g.prog[static_cast<std::size_t>(p)];
      kernels_.push_back(KernelRecord{g.rank, static_cast<int>(g.next), r.role, index, s, begin, now});
    }
  } else {
    g.comm_busy = false;
  }
  advance(gi, p, CommKind::None);
  dispatch(gi);
}

// One of the program's kernels finished (`finished`: its collective kind,
// None for a compute kernel).
void ClusterExecutor::advance(int gi, int p, CommKind finished) {
  Gpu& g = gpus_[static_cast<std::size_t>(gi)];
  Running& r = g.prog[static_cast<std::size_t>(p)];
  --r.running;
  if (r.running == 0) r.blocked_by = finished;
  if (r.pc >= r.program->ops.size()) {
    if (r.running != 0) return;
    if (sync_on_) shard_program_end(gi, p);
    if (--g.unfinished == 0) op_done(gi);
    return;
  }
  if (!r.waiting && r.next_ready()) make_ready(gi, p);
}

// Kernel pc is next in its program: it waits for its stream, or first for
// its layer's parameters (ZeRO-3). Called once per kernel.
void ClusterExecutor::make_ready(int gi, int p) {
  Running& r = gpus_[static_cast<std::size_t>(gi)].prog[static_cast<std::size_t>(p)];
  if (sync_on_) {
    LayerSyncState& ls = sync_[static_cast<std::size_t>(gi)][static_cast<std::size_t>(p)];
    if (ls.param_wait) return;
    if (!ls.params_ready(r.pc)) {
      ls.param_wait = true;
      ls.param_wait_since = engine_.now();
      return;
    }
  }
  r.waiting = true;
  r.ready_at = engine_.now();
}

// ---------------------------------------------------------------------------
// Collectives: members arrive; the last one launches the group's bundle.

namespace {
// Group classes for the member cache: EP, TP, DP dense, DP expert.
int group_class(CommKind kind, bool expert) {
  if (is_ep(kind)) return 0;
  if (is_dp(kind)) return expert ? 3 : 2;
  return 1;
}
}  // namespace

std::pair<int, const std::vector<int>*> ClusterExecutor::group_of(const Gpu& g, CommKind kind, bool expert) {
  const int cls = group_class(kind, expert);
  const int group = cls == 0 ? layout_.ep_group_of(g.id)
                    : cls == 1 ? layout_.tp_group_of(g.id)
                               : layout_.dp_group_of(g.id, cls == 3);
  auto it = members_.find({cls, group});
  if (it == members_.end()) {
    std::vector<int> m = cls == 0 ? layout_.ep_members(group)
                         : cls == 1 ? layout_.tp_members(group)
                                    : layout_.dp_members(group, cls == 3);
    it = members_.emplace(std::make_pair(cls, group), std::move(m)).first;
  }
  return {group, &it->second};
}

int ClusterExecutor::simulated_members(int cls, int group, const std::vector<int>& members) {
  auto it = sim_members_.find({cls, group});
  if (it != sim_members_.end()) return it->second;
  int n = 0;
  for (int m : members) n += simulated(m) ? 1 : 0;
  sim_members_[{cls, group}] = n;
  return n;
}

const Bundle& ClusterExecutor::bundle(CommKind kind, int cls, int group, const std::vector<int>& members,
                                      double bytes, int state) {
  const auto key = std::make_tuple(static_cast<int>(kind) * 4 + cls, group, bytes, state);
  auto it = bundles_.find(key);
  if (it != bundles_.end()) return it->second;
  const CollectiveTraffic t = in_.traffic(kind, members, bytes, state);
  return bundles_.emplace(key, make_bundle(*in_.topology, t.transfers, t.sequential_steps)).first->second;
}

void ClusterExecutor::join(int gi, int p, CommKind kind, bool expert, double bytes, InstanceKey key, int state) {
  const Gpu& g = gpus_[static_cast<std::size_t>(gi)];
  const auto [group, members] = group_of(g, kind, expert);
  const int cls = group_class(kind, expert);
  key.group = group;
  key.kind = static_cast<int>(kind) * 4 + cls;
  Instance& inst = instances_[key];
  const Time now = engine_.now();
  if (inst.arrived++ == 0) inst.first = now;
  inst.last = now;
  inst.last_gpu = g.id;
  inst.members.emplace_back(gi, p);
  if (inst.arrived < simulated_members(cls, group, *members)) return;
  ++collectives_;
  const Bundle& b = bundle(kind, cls, group, *members, bytes, state);
  const Time first = inst.first;
  GroupStats& gs = group_stats_[{key.kind, group}];
  gs.kind = kind;
  gs.group = group;
  gs.waiting += inst.last - inst.first;
  late_[{key.kind, group}][inst.last_gpu] += inst.last - inst.first;
  ++flows_;
  if (b.route.empty()) {
    engine_.schedule(b.latency, [this, key, first] { collective_done(key, first, nullptr); });
    return;
  }
  net_.start_flow(b.route, ByteCount(b.bytes), b.share,
                  [this, key, first](const sim::FlowRecord& f) {
                    bounded_by(f);
                    collective_done(key, first, &f);
                  },
                  b.latency);
}

void ClusterExecutor::collective_done(InstanceKey key, Time first, const sim::FlowRecord* f) {
  auto node = instances_.extract(key);
  GroupStats& gs = group_stats_[{key.kind, key.group}];
  ++gs.instances;
  const Time now = engine_.now();
  gs.total += now - first;
  for (const auto& [gi, p] : node.mapped().members) {
    Gpu& g = gpus_[static_cast<std::size_t>(gi)];
    if (in_.record && g.keep) record_collective(g, p, f, gs.kind);
    if (p <= kShardSlot) {
      shard_done(gi, kShardSlot - p);
      continue;
    }
    g.comm_busy = false;
    if (p < 0) {
      tail_step(gi);
      continue;
    }
    advance(gi, p, gs.kind);
    dispatch(gi);
  }
}

// The member's communication kernel (from its arrival) and the bundle.
void ClusterExecutor::record_collective(const Gpu& g, int p, const sim::FlowRecord* f, CommKind kind) {
  const Time now = engine_.now();
  if (p >= 0) {
    const Running& r = g.prog[static_cast<std::size_t>(p)];
    kernels_.push_back(KernelRecord{g.rank, static_cast<int>(g.next), r.role, r.comm_index, Stream::Comm,
                                    r.comm_started, now});
  }
  transfers_.push_back(TransferRecord{g.rank, kind, -1, f ? f->start : now, now, f ? f->bytes.value() : 0.0,
                                      f ? f->bottleneck : -1});
}

// ---------------------------------------------------------------------------
// ZeRO-3: each layer's parameters gathered before its first kernel and its
// gradients scattered after its last, on the GPU's data-parallel stream.

void ClusterExecutor::shard_begin(int gi, int p, int stage) {
  Gpu& g = gpus_[static_cast<std::size_t>(gi)];
  Running& r = g.prog[static_cast<std::size_t>(p)];
  LayerSyncState& ls = sync_[static_cast<std::size_t>(gi)][static_cast<std::size_t>(p)];
  ls = LayerSyncState{};
  ls.stage = stage;
  auto it = program_layers_.find(r.program);
  if (it == program_layers_.end()) it = program_layers_.emplace(r.program, program_layers(*r.program)).first;
  ls.layers = &it->second;
  const ChunkPass pass = r.program->pass;
  const bool makes_grads = pass == ChunkPass::BackwardWeight || pass == ChunkPass::BackwardFull;
  if (in_.layer_sync == LayerSync::GradientsOverlapped) {
    // Only the stage's last gradient-making op reduces, on its stage's stream.
    ls.scatters = makes_grads && static_cast<int>(g.next) == last_weight_grad_op(g.rank, stage);
    const auto& mine = s_.stages_of_rank(g.rank);
    ls.stream = static_cast<int>(std::find(mine.begin(), mine.end(), stage) - mine.begin());
    return;
  }
  ls.gathers = pass != ChunkPass::BackwardWeight;
  ls.scatters = makes_grads;
  // The first two layers now: the first is needed at once, the second is
  // FSDP's prefetch.
  if (ls.gathers)
    while (ls.requested < std::min(2, static_cast<int>(ls.layers->layer.size()))) shard_request(gi, p, ls.requested++, false);
  if (!ls.params_ready(r.pc)) {
    r.waiting = false;
    ls.param_wait = true;
    ls.param_wait_since = engine_.now();
  }
}

// The program's last kernel is done: reduce the last layers' gradients.
void ClusterExecutor::shard_program_end(int gi, int p) {
  LayerSyncState& ls = sync_[static_cast<std::size_t>(gi)][static_cast<std::size_t>(p)];
  if (ls.scatters)
    while (ls.scattered < static_cast<int>(ls.layers->layer.size())) shard_request(gi, p, ls.scattered++, true);
}

// Overlapped gradient reduction: per rank and stage it holds, the last op
// whose program makes the stage's weight gradients (W, BW, or an F&B pair's
// backward; an empty program runs nothing and cannot reduce).
void ClusterExecutor::find_last_weight_grad_ops() {
  last_wgrad_.resize(static_cast<std::size_t>(s_.ranks));
  for (int r = 0; r < s_.ranks; ++r) {
    auto& last = last_wgrad_[static_cast<std::size_t>(r)];
    for (int st : s_.stages_of_rank(r)) last.emplace_back(st, -1);
    const auto& ops = s_.per_rank[static_cast<std::size_t>(r)];
    for (std::size_t i = 0; i < ops.size(); ++i) {
      const auto* progs = ops[i].type == ChunkOpType::W                                    ? in_.program_w
                          : ops[i].type == ChunkOpType::BW || ops[i].type == ChunkOpType::FB ? in_.program_bw
                                                                                             : nullptr;
      if (!progs || (*progs)[static_cast<std::size_t>(ops[i].bwd.stage)].ops.empty()) continue;
      for (auto& [st, op] : last)
        if (st == ops[i].bwd.stage) op = static_cast<int>(i);
    }
    for (const auto& [st, op] : last)
      if (op < 0)
        throw std::invalid_argument(fmt::format(
            "execute_cluster: rank {} runs no op making stage {}'s weight gradients: nothing to reduce them in", r, st));
  }
}

int ClusterExecutor::last_weight_grad_op(int rank, int stage) const {
  for (const auto& [st, op] : last_wgrad_[static_cast<std::size_t>(rank)])
    if (st == stage) return op;
  return -1;
}

// A kernel of layer position `pos` starts: ask for the next layer's
// parameters (FSDP's one-layer prefetch), and reduce the gradients of the
// layers before it, now complete.
void ClusterExecutor::shard_kernel(int gi, int p, int pos) {
  LayerSyncState& ls = sync_[static_cast<std::size_t>(gi)][static_cast<std::size_t>(p)];
  if (pos <= ls.started_pos) return;
  ls.started_pos = pos;
  const int layers = static_cast<int>(ls.layers->layer.size());
  if (ls.gathers)
    while (ls.requested < std::min(pos + 2, layers)) shard_request(gi, p, ls.requested++, false);
  if (ls.scatters)
    while (ls.scattered < pos) shard_request(gi, p, ls.scattered++, true);
}

// Queue the gather (or gradient reduction) of layer position `pos` of
// program p on its stream: dense then expert; a layer with nothing to move
// queues an empty step, so the stream keeps its order. ZeRO-3 keys carry the
// op index (every member of a group runs the same ops); overlapped
// reductions carry the stage instead (a stage's two DualPipe holders finish
// it at different ops).
void ClusterExecutor::shard_request(int gi, int p, int pos, bool scatter) {
  Gpu& g = gpus_[static_cast<std::size_t>(gi)];
  const Running& r = g.prog[static_cast<std::size_t>(p)];
  const LayerSyncState& st = sync_[static_cast<std::size_t>(gi)][static_cast<std::size_t>(p)];
  const LayerShard& ls = in_.layer_shards[static_cast<std::size_t>(st.stage)]
                                         [static_cast<std::size_t>(st.layers->layer[static_cast<std::size_t>(pos)])];
  const bool zero3 = in_.layer_sync == LayerSync::Zero3;
  const CommKind kind = !scatter ? CommKind::DpAllGather
                        : !zero3 && in_.tail[static_cast<std::size_t>(g.rank)].all_reduce ? CommKind::DpAllReduce
                                                                                           : CommKind::DpReduceScatter;
  Gpu::DpStream& d = g.streams[static_cast<std::size_t>(st.stream)];
  const std::size_t before = d.queue.size();
  for (const bool expert : {false, true}) {
    const double bytes = scatter ? (expert ? ls.expert_grad_bytes : ls.dense_grad_bytes)
                                 : (expert ? ls.expert_param_bytes : ls.dense_param_bytes);
    if (bytes <= 0) continue;
    // Keys below -1: apart from the programs' kernels (>= 0) and the tail.
    const int where = -2 - (((pos * 2 + (zero3 ? r.role : 0)) * 2 + (expert ? 1 : 0)) * 2 + (scatter ? 1 : 0));
    const int op = zero3 ? static_cast<int>(g.next) : -2 - st.stage;
    d.queue.push_back(ShardStep{kind, expert, bytes, p, false, InstanceKey{0, 0, op, where}});
  }
  if (d.queue.size() == before) d.queue.push_back(ShardStep{CommKind::None, false, 0, p, false, {}});
  d.queue.back().completes = !scatter;
  shard_pump(gi, st.stream);
}

void ClusterExecutor::shard_pump(int gi, int stream) {
  Gpu& g = gpus_[static_cast<std::size_t>(gi)];
  Gpu::DpStream& d = g.streams[static_cast<std::size_t>(stream)];
  if (d.busy || d.head == d.queue.size()) return;
  d.now = d.queue[d.head++];
  if (d.head == d.queue.size()) {
    d.queue.clear();
    d.head = 0;
  }
  d.busy = true;
  if (d.now.kind == CommKind::None) {
    engine_.schedule(Time::zero(), [this, gi, stream] { shard_done(gi, stream); });
    return;
  }
  join(gi, kShardSlot - stream, d.now.kind, d.now.expert, d.now.bytes, d.now.key);
}

void ClusterExecutor::shard_done(int gi, int stream) {
  Gpu& g = gpus_[static_cast<std::size_t>(gi)];
  Gpu::DpStream& d = g.streams[static_cast<std::size_t>(stream)];
  const ShardStep st = d.now;
  d.busy = false;
  if (st.completes) {
    Running& r = g.prog[static_cast<std::size_t>(st.prog)];
    LayerSyncState& ls = sync_[static_cast<std::size_t>(gi)][static_cast<std::size_t>(st.prog)];
    ++ls.gathered;
    if (ls.param_wait && ls.params_ready(r.pc)) {
      ls.param_wait = false;
      r.waiting = true;
      r.ready_at = engine_.now();
      if (r.running == 0) r.blocked_by = CommKind::DpAllGather;
    }
  }
  shard_pump(gi, stream);
  if (g.tail_waits && g.streams_idle()) {
    g.tail_waits = false;
    start_tail(gi);
    return;
  }
  dispatch(gi);
}

// ---------------------------------------------------------------------------
// Tail: gradient synchronisation on the communication stream, then the
// optimizer on the compute stream. It first waits for the GPU's
// data-parallel streams (ZeRO-3, overlapped gradient reduction).

void ClusterExecutor::start_tail(int gi) {
  Gpu& g = gpus_[static_cast<std::size_t>(gi)];
  if (!g.streams_idle()) {
    g.tail_waits = true;
    return;
  }
  g.tail = 0;
  tail_step(gi);
}

void ClusterExecutor::tail_step(int gi) {
  Gpu& g = gpus_[static_cast<std::size_t>(gi)];
  const Time now = engine_.now();
  if (g.tail >= static_cast<int>(g.tail_steps.size())) {
    g.stats.end = now;
    return;
  }
  const TailStep step = g.tail_steps[static_cast<std::size_t>(g.tail)];
  const int index = g.tail++;
  if (step.kind == CommKind::None) {
    g.stats.sync_end = now;
    const Time opt = in_.tail[static_cast<std::size_t>(g.rank)].optimizer;
    engine_.schedule(Time::seconds(opt.to_seconds() * g.slowdown), [this, gi] { tail_step(gi); });
    return;
  }
  g.comm_busy = true;
  // Op -1: the tail (the ranks of one data-parallel group, e.g. DualPipe's
  // mirror ranks, run different numbers of ops).
  join(gi, -1, step.kind, step.expert, step.bytes, InstanceKey{0, 0, -1, index});
}

// ---------------------------------------------------------------------------

ClusterExecResult ClusterExecutor::run() {
  for (int gi = 0; gi < static_cast<int>(gpus_.size()); ++gi) try_start(gi);
  const Time slice = Time::ps(in_.progress_horizon.count_ps() / 100);
  if (in_.progress && slice > Time::zero()) {
    while (!engine_.empty()) {
      engine_.run_until(engine_.now() + slice);
      in_.progress(engine_.now());
    }
  } else {
    engine_.run();
  }
  for (const Gpu& g : gpus_) {
    const auto& ops = s_.per_rank[static_cast<std::size_t>(g.rank)];
    if (g.tail < static_cast<int>(g.tail_steps.size()) || g.next < ops.size())
      throw std::logic_error(fmt::format(
          "cluster execution deadlock: GPU {} (pipeline rank {}) stopped at op {} of {}{}", g.id, g.rank, g.next,
          ops.size(), g.next < ops.size() ? fmt::format(" ({})", describe(ops[g.next])) : std::string(" (tail)")));
  }
  ClusterExecResult r;
  finish(r);
  return r;
}

void ClusterExecutor::finish(ClusterExecResult& r) {
  Time makespan = Time::zero();
  for (const Gpu& g : gpus_) {
    makespan = max(makespan, g.stats.pipeline_end);
    r.gpus.push_back(g.stats);
    if (g.stats.end > r.step_time || r.gpus.size() == 1) {
      r.step_time = g.stats.end;
      r.critical_gpu = g.id;
    }
  }
  std::sort(r.gpus.begin(), r.gpus.end(), [](const GpuStats& a, const GpuStats& b) { return a.gpu < b.gpu; });
  exec_.makespan = makespan;
  for (Time b : exec_.busy_per_rank) exec_.bubble_per_rank.push_back(makespan - b);
  r.exec = std::move(exec_);
  // The collective group (EP or TP) whose collectives took longest in total,
  // and the member that kept it waiting most.
  for (const auto& [key, gs] : group_stats_) {
    if (is_dp(gs.kind)) continue;
    if (r.critical_group.instances == 0 || gs.total > r.critical_group.total) {
      r.critical_group = gs;
      Time worst = Time::zero();
      for (const auto& [gpu, t] : late_[key])
        if (t > worst) {
          worst = t;
          r.critical_group.slowest_member = gpu;
        }
    }
  }
  for (std::size_t l = 0; l < bounded_.size(); ++l)
    if (bounded_[l] > r.critical_link_time) {
      r.critical_link_time = bounded_[l];
      r.critical_link = static_cast<sim::LinkIndex>(l);
    }
  r.kernels = std::move(kernels_);
  r.transfers = std::move(transfers_);
  r.simulated_gpus = static_cast<int>(gpus_.size());
  r.events = engine_.executed();
  r.flows = flows_;
  r.collectives = collectives_;
}

}  // namespace

std::vector<TailCollective> tail_collectives(const TailWork& t) {
  std::vector<TailCollective> out;
  auto add = [&](CommKind k, bool expert, double bytes) {
    if (bytes > 0) out.push_back(TailCollective{k, expert, bytes});
  };
  if (t.all_reduce) {
    add(CommKind::DpAllReduce, false, t.dense_grad_bytes);
    add(CommKind::DpAllReduce, true, t.expert_grad_bytes);
  } else {
    add(CommKind::DpReduceScatter, false, t.dense_grad_bytes);
    add(CommKind::DpAllGather, false, t.dense_param_bytes);
    add(CommKind::DpReduceScatter, true, t.expert_grad_bytes);
    add(CommKind::DpAllGather, true, t.expert_param_bytes);
  }
  return out;
}

ClusterExecResult execute_cluster(const ClusterExecInputs& in) {
  // The executor keeps `this` in its events: it must not move while running.
  auto ex = std::make_unique<ClusterExecutor>(in);
  return ex->run();
}

}  // namespace trainsim::model
