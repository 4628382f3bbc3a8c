#pragma once
// Executes a pipeline Schedule on the discrete-event engine and measures it.
//
// Model: each rank is one in-order stream that runs its op list strictly in
// order, one op at a time, and an op starts as soon as its rank is free and
// its inputs are there:
//   F  of (s, mb, d): the forward of (s-1, mb, d) has finished on its rank and
//                     its activation has crossed the link (p2p(from, to, true));
//                     nothing for stage 0;
//   B / BW / FB's backward of (s, mb, d): the forward of (s, mb, d) has run on
//                     this rank, and the backward of (s+1, mb, d) has finished
//                     and its gradient has crossed (p2p(from, to, false));
//                     only the former for the last stage;
//   W  of (s, mb, d): the B of (s, mb, d) has finished;
//   FB: both its forward's and its backward's conditions.
// Neighbouring stages s and s+1 run on the ranks `Schedule::rank_of` names,
// for every kind (interleaved: stage s on rank s % R; DualPipeV: the V's
// bottom hand-off from stage R-1 to stage R stays on device R-1). A hand-off
// between two stages on the same rank is immediate and p2p is not asked.
// A transfer is a pure delay on a dependency edge: links have no capacity and
// transfers do not contend (a flow-level network is for the caller to supply
// through `p2p`, e.g. a figure it measured on `sim/`).
//
// Determinism: the order of events is the engine's (time, priority, sequence)
// order only; no unordered container is iterated.
//
// Cost: O(n log n) for n ops: an op start is tried only when its rank frees
// up or one of its inputs arrives, and each op and transfer is one engine
// event. 16 ranks with 120 micro-batches (4,000 to 6,000 ops) run in under a
// millisecond for every kind; interleaved with 128 micro-batches takes about
// 1 ms with v=2 and 2 ms with v=4 (8,000 and 16,000 ops; Release build).
#include <functional>
#include <string>
#include <vector>

#include "trainsim/common/units.hpp"
#include "trainsim/model/schedule.hpp"
#include "trainsim/sim/engine.hpp"

namespace trainsim::model {

struct ExecCosts {
  // Time rank `rank` spends on `op`. Required.
  std::function<Time(const ScheduleOp&, int rank)> duration;
  // Transfer time of an activation (forward == true) or a gradient between
  // ranks; zero when empty. Never called for from_rank == to_rank.
  std::function<Time(int from_rank, int to_rank, bool forward)> p2p;
};

struct OpTiming {
  int rank = 0;
  int index = 0;  // position in Schedule::per_rank[rank]
  Time start;
  Time end;
};

struct ExecResult {
  Time makespan;                    // last op end - start of the execution
  std::vector<Time> busy_per_rank;  // sum of op durations
  std::vector<Time> bubble_per_rank;  // makespan - busy
  // Max number of chunks on the rank whose forward is done and whose input
  // backward (B, BW, or FB's backward) is not. Counted at op ends; an FB's
  // forward is counted as done before its backward frees its chunk, because
  // while the two run overlapped both chunks' activations are resident.
  // Units: micro-batch-chunks (one stage's activations of one micro-batch;
  // for interleaved and DualPipeV a stage is 1/(R*v) resp. 1/(2R) of the
  // model, for the others 1/R).
  // Rule for split backwards: a chunk's activations are released by its B,
  // as the zero-bubble paper and the DualPipe table count them (a W needs
  // only the layer inputs and output gradients, a smaller stash); those
  // chunks are counted in the next field instead.
  std::vector<int> peak_activations_per_rank;
  // Max number of chunks on the rank whose B is done and whose W is not (the
  // weight-gradient stash a deferred W keeps alive). Zero for kinds without
  // split backwards.
  std::vector<int> peak_deferred_weight_per_rank;
  // timeline[r][i] is op i of rank r; times are engine times.
  std::vector<std::vector<OpTiming>> timeline;
};

// Runs `schedule` on `engine` starting at engine.now(), runs the engine until
// it is empty (the caller's other events run too), and returns the measures.
// Throws std::invalid_argument for a malformed schedule (a chunk out of
// range, an op whose type does not fit its fields) or a missing duration, and
// std::logic_error naming the stuck rank and op when the schedule deadlocks.
ExecResult execute(sim::Engine& engine, const Schedule& schedule, const ExecCosts& costs);
// Same on a private engine starting at time zero.
ExecResult execute(const Schedule& schedule, const ExecCosts& costs);

// Problems found (empty when none): every chunk has exactly one forward, one
// input backward and one weight backward (BW and FB's backward count as both;
// a B must be followed later by its W on the same rank); every op is on the
// rank that holds its chunk; on every stage F ends before B starts and B ends
// before W starts; cross-stage dependencies hold in the timeline; every op
// was executed.
std::vector<std::string> check_invariants(const Schedule& schedule, const ExecResult& result);

}  // namespace trainsim::model
