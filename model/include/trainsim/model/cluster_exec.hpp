#pragma once
// One discrete-event execution of a training step over the whole cluster.
//
// What it captures
// ----------------
// * Every simulated GPU runs its pipeline rank's schedule (model/schedule)
//   op by op, in order. An op expands into the kernels of its chunk programs
//   (model/workload: F, B, W, BW; an overlapped FB runs a forward and a
//   backward program together) on the GPU's two streams: compute (the SMs
//   left after the communication reservation) and communication. When both
//   programs of an FB have a kernel ready for the same stream, the one that
//   became ready first runs first (ties: the backward), as in the chunk
//   simulator this replaces.
// * Compute kernels take the calibration profile's time, multiplied by the
//   GPU's slowdown factor (stragglers).
// * Communication kernels are collectives over their group (MoE dispatch and
//   combine over the expert-parallel group, TP collectives over the tensor-
//   parallel group). A collective starts when every member has reached it
//   (so it waits for the slowest peer) and runs on the flow network as one
//   bundled flow carrying the whole group's traffic over the topology's
//   routes (model/fabric_traffic), sharing links with every other flow in
//   flight; it ends for all members together.
// * Activations and gradients between pipeline ranks are flows from the
//   sending GPU to the same replica's GPU on the next rank, started when the
//   chunk ends; the receiving op starts when they have arrived.
// * After its last op a GPU synchronises gradients with its data-parallel
//   group (reduce-scatter + all-gather under ZeRO 1-2, all-reduce under
//   ZeRO 0; dense parameters over the dense group, routed experts over the
//   expert group), on the communication stream, as ring bundles; then runs
//   the optimizer on the compute stream. The step ends when the last GPU has.
// * ZeRO-3 (`layer_shards`), as FSDP and DeepSpeed run it with one layer per
//   shard unit: every chunk that needs weights (forward, input or full
//   backward) all-gathers each layer's parameters (BF16) over the data-
//   parallel group before the layer's first kernel, and every chunk that
//   makes weight gradients reduce-scatters each layer's gradients (FP32)
//   once the layer's kernels are done. These collectives run on a third,
//   data-parallel stream of the GPU, one at a time in the order issued, so
//   they overlap the chunk's kernels: a program asks for its first two
//   layers when it starts and for layer i+1 when layer i's first kernel
//   starts (FSDP's one-layer prefetch: at most the computing layer and the
//   next are gathered). A kernel whose layer is not gathered yet waits, and
//   that wait is exposed data-parallel communication. The tail then has only
//   the optimizer, after the GPU's last reduce-scatter.
// * Overlapped gradient reduction (ZeRO 0-2 with overlap_grad_reduce,
//   LayerSync::GradientsOverlapped): in the last op of each stage that makes
//   its weight gradients on a GPU, each layer's gradients are all-reduced
//   (ZeRO 0) or reduce-scattered (ZeRO 1-2) once the layer's kernels are
//   done, on one data-parallel stream per stage (so mirror ranks, which
//   finish their two stages in opposite orders, agree on each stream's
//   order); the tail keeps the parameter all-gathers and the optimizer.
//
// Symmetry (fidelity)
// -------------------
// Full: every GPU and every transfer of the cluster. Collapsed: one replica
// per pipeline rank (replica 0) is simulated; a collective's bundle still
// carries its whole group's traffic, and it starts when its simulated members
// have arrived, because the others are their exact copies. This is exact
// when every replica of a rank has the same work, speed and routes and the
// traffic of the replicas that are not simulated shares no link with the
// simulated flows (tests check full == collapsed on such scenarios and
// measure the gap on DeepSeek-V3). The caller decides the fidelity; the step
// driver refuses to collapse a scenario that breaks the symmetry (skew,
// stragglers, faults) and says so in the report.
//
// What it ignores
// ---------------
// Launch overheads beyond the profile's per-kernel constant; interference
// between concurrent kernels beyond the SM split; SMs used by pipeline
// transfers (they need no stream here); the reference DualPipe's batching
// of sends and receives; overlap of gradient synchronisation with the
// backward under ZeRO 0-2 (it starts after the GPU's last op); the SMs the
// ZeRO-3 stream's collectives use, and prefetching across ops (the first
// layer of every chunk is gathered when its op starts).
//
// Cost: O(E log E) for E events: one per kernel, one per flow start and end;
// collectives are one flow each. Memory: O(simulated GPUs + groups + flows in
// flight), plus the timeline of one replica per rank.
#include <cstdint>
#include <functional>
#include <map>
#include <utility>
#include <vector>

#include "trainsim/common/units.hpp"
#include "trainsim/hardware/topology.hpp"
#include "trainsim/model/cluster_layout.hpp"
#include "trainsim/model/fabric_traffic.hpp"
#include "trainsim/model/ops.hpp"
#include "trainsim/model/pipeline_exec.hpp"
#include "trainsim/model/schedule.hpp"
#include "trainsim/model/workload.hpp"

namespace trainsim::model {

enum class Fidelity { Collapsed, Full };
const char* to_string(Fidelity f);

// The transfers of one collective of `kind` over `members` (global GPU ids,
// group-rank order) where each GPU contributes `bytes_per_gpu` (the op's
// CommSpec bytes), and how many sequential latency steps it pays.
struct CollectiveTraffic {
  std::vector<GpuTransfer> transfers;
  int sequential_steps = 1;
};
// `state` is the routing state of the collective (RoutingStateFn; 0 when
// routing is the same everywhere).
using TrafficFn =
    std::function<CollectiveTraffic(CommKind kind, const std::vector<int>& members, double bytes_per_gpu, int state)>;
// The routing state an expert-parallel group is in at (global layer,
// micro-batch id): which draw of the routing model its collectives and expert
// kernels see. States are small integers; equal states give equal traffic.
using RoutingStateFn = std::function<int(int ep_group, int layer, int microbatch)>;
// Duration of compute kernel `op` on GPU `gpu` in routing state `state`
// (before the GPU's slowdown): the expert GEMMs of a GPU hosting hot experts
// take longer.
using RetimeFn = std::function<Time(int gpu, const TimedOp& op, int state)>;

// Gradient synchronisation and optimizer work of one GPU (indexed by pipeline
// rank: every replica of a rank holds the same parameters).
struct TailWork {
  double dense_grad_bytes = 0;   // FP32 gradients of non-expert parameters
  double dense_param_bytes = 0;  // BF16 parameters gathered back (ZeRO >= 1)
  double expert_grad_bytes = 0;
  double expert_param_bytes = 0;
  bool all_reduce = false;       // ZeRO 0: all-reduce instead of RS + AG
  Time optimizer{};
};

// One gradient collective of a GPU's tail, in the order the GPU runs them:
// all-reduce of dense then expert gradients (ZeRO 0), else reduce-scatter
// and all-gather of the dense, then of the expert parameters; collectives of
// zero bytes (no data-parallel peers) are left out.
// ZeRO-3: the bytes one GPU contributes to one layer's parameter all-gather
// (BF16) and gradient reduce-scatter (FP32), dense over the dense group and
// routed experts over the expert group.
struct LayerShard {
  double dense_param_bytes = 0;
  double expert_param_bytes = 0;
  double dense_grad_bytes = 0;
  double expert_grad_bytes = 0;
};

// How the collectives of `layer_shards` run.
enum class LayerSync {
  Zero3,                // gather before each layer, scatter after it, every chunk
  GradientsOverlapped,  // reduce each layer's gradients in its stage's last backward
};

struct TailCollective {
  CommKind kind = CommKind::None;
  bool expert = false;
  double bytes = 0;  // this GPU's contribution
};
std::vector<TailCollective> tail_collectives(const TailWork& t);

struct ClusterExecInputs {
  const Schedule* schedule = nullptr;
  const ClusterLayout* layout = nullptr;
  const hw::Topology* topology = nullptr;
  // Per stage.
  const std::vector<ChunkProgram>* program_f = nullptr;
  const std::vector<ChunkProgram>* program_b = nullptr;
  const std::vector<ChunkProgram>* program_w = nullptr;
  const std::vector<ChunkProgram>* program_bw = nullptr;
  // Overlapped F&B pairs: the order in which the communication stream runs
  // the two chunks' collectives, per (forward stage, backward stage), as
  // (0 forward / 1 backward, kernel index) pairs. DualPipe arranges the
  // overlapped pair statically, and every member of a group must issue its
  // collectives in the same order or the group deadlocks when members run at
  // different speeds. Required for every FB op of the schedule.
  std::map<std::pair<int, int>, std::vector<std::pair<int, int>>> fb_comm_order;
  double activation_bytes = 0;     // one pipeline transfer
  std::vector<TailWork> tail;      // per pipeline rank
  // ZeRO-3 per stage, per layer of the stage (TimedOp::layer). Empty: the
  // parameters are whole on every GPU (ZeRO 0-2). Needs every stage held by
  // one rank (not DualPipe's two copies).
  std::vector<std::vector<LayerShard>> layer_shards;
  LayerSync layer_sync = LayerSync::Zero3;  // GradientsOverlapped: only the gradient fields are used
  std::vector<double> slowdown;    // per GPU compute-time factor; empty: all 1
  TrafficFn traffic;               // required
  // Skewed routing: both or neither. Empty: one routing state everywhere.
  RoutingStateFn routing_state;
  RetimeFn retime;
  std::vector<int> stage_first_layer;  // global index of each stage's first layer (with routing_state)
  // Achievable capacity of each topology link (bytes/s); empty: nominal.
  std::vector<double> link_capacity_Bps;
  Fidelity fidelity = Fidelity::Collapsed;
  // Keep every kernel and transfer of replica 0 of each rank (for traces).
  bool record = false;
  // Progress: called with the simulated time reached, about every
  // progress_horizon / 100 of simulated time (progress_horizon: the expected
  // step). Empty: the engine runs in one go. The events run are the same
  // either way.
  std::function<void(Time)> progress;
  Time progress_horizon{};
};

// A kernel as it ran on replica 0 of a pipeline rank (recorded runs only).
struct KernelRecord {
  int rank = 0;
  int op = 0;        // schedule op index on the rank; -1: the tail
  int role = 0;      // 0: the op's forward program, 1: its backward
  int kernel = 0;    // index in the program
  Stream stream = Stream::Compute;
  Time start{}, end{};
};

// A flow as the network ran it: a collective's bundle (kind set, one record
// per recorded member) or a pipeline transfer sent by replica 0 (kind None).
struct TransferRecord {
  int rank = 0;
  CommKind kind = CommKind::None;
  int peer_rank = -1;       // pipeline transfers: the receiving rank
  Time start{}, end{};      // the flow's start (after arrival of all members) and end
  double bytes = 0;
  sim::LinkIndex bottleneck = -1;  // the link that bounded it most (-1: none)
};

struct GpuStats {
  int gpu = 0;
  Time pipeline_end{};   // end of its last schedule op
  Time busy{};           // sum of its schedule ops' durations
  Time compute{};        // compute-stream busy time inside those ops
  ExposedComm exposed{}; // compute stream idle waiting on a collective, by kind
  Time exposed_pp{};     // idle with its next op waiting for a transfer in flight
  Time exposed_dp{};     // compute stream idle waiting for a ZeRO-3 parameter gather
  Time sync_end{};       // gradient synchronisation done
  Time end{};            // optimizer done
};

// Where a group's collectives spent their time.
struct GroupStats {
  CommKind kind = CommKind::None;
  int group = 0;          // id within its kind (ClusterLayout)
  int instances = 0;
  Time total{};           // sum over instances of first arrival -> end
  Time waiting{};         // of which: waiting for the last member to arrive
  int slowest_member = -1;  // the GPU that arrived last for the longest total
};

struct ClusterExecResult {
  // Per pipeline rank, the timeline of replica 0 (for memory and the report).
  ExecResult exec;
  std::vector<GpuStats> gpus;  // every simulated GPU, by increasing id
  int critical_gpu = 0;        // the GPU whose optimizer ends the step
  Time step_time{};
  GroupStats critical_group;   // the EP/TP group whose collectives took longest in all
  // The link that bounded flows for the longest: for each link, the lives
  // (latency included) of the flows whose bottleneck it was (the saturated
  // link over which a flow moved the most bytes) summed; the largest.
  sim::LinkIndex critical_link = -1;
  Time critical_link_time{};
  std::vector<KernelRecord> kernels;      // recorded runs only
  std::vector<TransferRecord> transfers;  // recorded runs only
  int simulated_gpus = 0;
  std::uint64_t events = 0;
  std::uint64_t flows = 0;
  std::uint64_t collectives = 0;
};

ClusterExecResult execute_cluster(const ClusterExecInputs& in);

}  // namespace trainsim::model
