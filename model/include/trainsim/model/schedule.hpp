#pragma once
// Pipeline schedules: for every pipeline rank (device along the pipeline),
// the ordered list of chunk operations it runs in one training step.
//
// What a schedule captures
// ------------------------
// * The ORDER of work on each rank, and nothing else. A schedule has no times
//   in it; `pipeline_exec.hpp` turns it into times by executing it against a
//   cost function, so one schedule serves every model, plan and GPU.
// * Which model chunk each op works on: (stage along the model, micro-batch,
//   direction). DualPipe feeds micro-batches from both ends of the pipeline,
//   so a chunk also names its direction; every other kind uses direction 0.
// * How the backward is split. `BW` is a full backward (input and weight
//   gradients together); zero-bubble phases split it into `B` (input gradient,
//   which is on the critical path to the previous stage) and a later `W`
//   (weight gradient, which nobody waits for) to fill bubbles.
// * Overlap of a forward and a backward chunk of two different micro-batches
//   on one rank (DualPipe's "F&B"), as a single `FB` op whose duration the
//   cost model chooses (the point of DualPipe is that it is less than F + BW,
//   because one chunk's all-to-all hides behind the other's compute).
// * The named phases of the published algorithms, so a timeline can be read
//   against the paper: GPipe's forward / backward; 1F1B's and interleaved
//   1F1B's warm-up / steady / cool-down; ZB-H1's warm-up, deferred-W steady
//   state, cool-down and W flush; and the eight steps of DualPipe's and
//   DualPipeV's reference implementations (deepseek-ai/DualPipe,
//   dualpipe/dualpipe.py and dualpipe/dualpipev.py), each step's length a
//   formula of rank and size.
//
// What a schedule ignores
// -----------------------
// * Communication as work. Point-to-point sends are not ops: the executor
//   models them as a delay on the dependency edge between ranks. The
//   reference code batches sends and receives and waits on the whole batch
//   (a send may therefore wait on an unrelated receive, and in its step 2 a
//   non-middle rank sends a forward output only after its next forward); this
//   coupling is not modelled, only data dependencies are.
// * Data-parallel gradient reduction, optimizer step, embedding/head cost
//   asymmetry, recomputation: those belong to the cost model or to the step
//   driver around the pipeline.
// * ZB-H2, ZB-V and the automatic zero-bubble search: not generated.
// * Memory: activation counts are observed by the executor from the order of
//   ops, never stored here.
//
// Stage-to-rank mapping (`rank_of`, `stages_of_rank`), with R = ranks:
//   GPipe, 1F1B, ZB1P: R stages; stage s runs on rank s.
//   Interleaved:       R*v stages (v = virtual_stages model chunks per rank);
//                      stage s runs on rank s % R, so rank r holds stages
//                      r, r+R, ..., r+(v-1)R (Megatron-LM's layout).
//   DualPipe:          R stages, two copies of the model ("params 2x"): rank r
//                      holds stage r of direction 0 and stage R-1-r of
//                      direction 1; direction-0 micro-batches flow rank
//                      0 -> R-1 and direction-1 micro-batches flow R-1 -> 0,
//                      both through stages 0..R-1.
//   DualPipeV:         2R stages, one copy of the model: device d holds stage
//                      d (the down leg of the V) and stage 2R-1-d (the up
//                      leg); the hand-off from stage R-1 to stage R stays on
//                      device R-1, and the loss is on device 0.
//
// Micro-batch ids are per direction: DualPipe with M micro-batches in total
// runs ids 0..M/2-1 in each direction; every other kind runs ids 0..M-1 in
// direction 0.
#include <string>
#include <vector>

#include "trainsim/model/parallel.hpp"

namespace trainsim::model {

enum class ChunkOpType {
  F,   // forward of one chunk
  B,   // backward for the inputs only (weight gradient deferred to a later W)
  BW,  // full backward: input and weight gradients
  W,   // deferred weight-gradient backward of an earlier B
  FB   // a forward and a full backward of two different micro-batches, overlapped
};

const char* to_string(ChunkOpType t);

struct ChunkRef {
  int stage = 0;       // model chunk index 0..stages-1 along the model
  int microbatch = 0;  // id within its direction
  int direction = 0;   // 0 or 1 (DualPipe's two directions; always 0 for 1F1B)
  friend bool operator==(const ChunkRef&, const ChunkRef&) = default;
};

struct ScheduleOp {
  ChunkOpType type = ChunkOpType::F;
  ChunkRef fwd;       // valid for F and FB
  ChunkRef bwd;       // valid for B, BW, W and FB
  std::string phase;  // named phase that emitted it ("warmup", "main_fb", ...)
};

// "F 3/d0/s1", "FB F 2/d1/s0 + BW 0/d0/s3" and so on: for messages and logs.
std::string describe(const ScheduleOp& op);

struct Schedule {
  ScheduleKind kind = ScheduleKind::OneFOneB;
  int ranks = 0;           // devices along the pipeline
  int stages = 0;          // model chunks along the model (see the mapping above)
  int microbatches = 0;    // total over both directions
  int virtual_stages = 1;  // model chunks per rank of the interleaved schedule; 1 otherwise
  std::vector<std::vector<ScheduleOp>> per_rank;

  int directions() const { return kind == ScheduleKind::DualPipe ? 2 : 1; }
  int microbatches_per_direction() const { return microbatches / directions(); }
  // The rank that runs chunk `c` (see the mapping above).
  int rank_of(const ChunkRef& c) const;
  // The distinct stages rank `rank` holds, ascending: {r} for GPipe, 1F1B and
  // ZB1P; {r, r+R, ...} for interleaved; {r, R-1-r} for DualPipe; {d, 2R-1-d}
  // for DualPipeV. Empty for a rank out of range.
  std::vector<int> stages_of_rank(int rank) const;
};

// Builds the schedule for `ranks` devices along the pipeline. Throws
// std::invalid_argument, with a message naming the schedule and the broken
// condition, when the preconditions of the algorithm do not hold:
//   all kinds:   ranks >= 1, microbatches >= 1, virtual_stages == 1 except
//                for Interleaved;
//   GPipe, OneFOneB, ZB1P: nothing more (fewer micro-batches than ranks is
//                allowed; the warm-up then shortens);
//   Interleaved: virtual_stages >= 2 and microbatches % ranks == 0
//                (Megatron-LM's requirement);
//   DualPipe:    ranks even, microbatches even and >= 2*ranks (the reference
//                implementation asserts the same); half go in each direction;
//   DualPipeV:   microbatches >= 2*ranks (the reference asserts the same;
//                no evenness needed).
Schedule make_schedule(ScheduleKind kind, int ranks, int microbatches, int virtual_stages = 1);

}  // namespace trainsim::model
