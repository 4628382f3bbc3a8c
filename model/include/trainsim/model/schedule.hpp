#pragma once
// Pipeline schedules: for every pipeline rank, the ordered list of chunk
// operations it runs in one training step.
//
// What a schedule captures
// ------------------------
// * The ORDER of work on each rank, and nothing else. A schedule has no times
//   in it; `pipeline_exec.hpp` turns it into times by executing it against a
//   cost function, so one schedule serves every model, plan and GPU.
// * Which model chunk each op works on: (stage along the model, micro-batch,
//   direction). DualPipe feeds micro-batches from both ends of the pipeline,
//   so a chunk also names its direction; 1F1B always uses direction 0.
// * How the backward is split. `BW` is a full backward (input and weight
//   gradients together); zero-bubble phases split it into `B` (input gradient,
//   which is on the critical path to the previous stage) and a later `W`
//   (weight gradient, which nobody waits for) to fill bubbles.
// * Overlap of a forward and a backward chunk of two different micro-batches
//   on one rank (DualPipe's "F&B"), as a single `FB` op whose duration the
//   cost model chooses (the point of DualPipe is that it is less than F + BW,
//   because one chunk's all-to-all hides behind the other's compute).
// * The named phases of the published algorithms, so a timeline can be read
//   against the paper: 1F1B's warm-up / steady / cool-down, and the eight
//   steps of DualPipe's reference implementation (deepseek-ai/DualPipe,
//   dualpipe/dualpipe.py), each step's length a formula of rank and size.
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
// * Interleaved (virtual-stage) 1F1B, ZB-H1/H2 and DualPipeV: not generated.
// * Memory: activation counts are observed by the executor from the order of
//   ops, never stored here.
//
// Stage-to-rank mapping. 1F1B: stage s runs on rank s. DualPipe: rank r holds
// stage r of direction 0 and stage PP-1-r of direction 1 (two copies of the
// model, as in the paper, "params 2x"): direction-0 micro-batches flow
// rank 0 -> PP-1 and direction-1 micro-batches flow rank PP-1 -> 0, both
// through stages 0..PP-1.
//
// Micro-batch ids are per direction: DualPipe with M micro-batches in total
// runs ids 0..M/2-1 in each direction; 1F1B runs ids 0..M-1 in direction 0.
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
  int ranks = 0;
  int stages = 0;
  int microbatches = 0;  // total over both directions
  std::vector<std::vector<ScheduleOp>> per_rank;

  int directions() const { return kind == ScheduleKind::DualPipe ? 2 : 1; }
  int microbatches_per_direction() const { return microbatches / directions(); }
  // The rank that runs chunk `c` (see the mapping above).
  int rank_of(const ChunkRef& c) const;
};

// Builds the schedule. Throws std::invalid_argument when the preconditions of
// the algorithm do not hold:
//   OneFOneB: pp >= 1 and microbatches >= 1 (fewer micro-batches than stages
//             is allowed; the warm-up then shortens);
//   DualPipe: pp even and >= 2, microbatches even and >= 2*pp (the reference
//             implementation asserts the same); half go in each direction.
Schedule make_schedule(ScheduleKind kind, int pp, int microbatches);

}  // namespace trainsim::model
