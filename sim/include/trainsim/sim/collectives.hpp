#pragma once
// Collectives are schedules, not classes.
//
// A collective algorithm is a function (group size, bytes) -> list of steps;
// a step is a set of point-to-point transfers between ranks 0..n-1 of the
// group that run concurrently. Steps run bulk-synchronously: step k+1 starts
// when every transfer of step k has finished (NCCL's ring and the pairwise
// all-to-all are close to this; pipelining of chunks across steps is not
// modelled). Mapping ranks to links is the caller's RouteFn, so sim/ never
// sees GPUs, NICs or switches.
//
// Two consumers read the same schedule:
//  * run_collective() plays it on a FlowNetwork (contention with anything else
//    on the network included);
//  * collective_time_idle() prices it in closed form on an idle network.
// On an idle network with the same links the two agree to within a few
// picoseconds of rounding when, inside each step, the flows share the same
// route latency and either have the same finish time or disjoint bottlenecks
// (true of rings on rings and of symmetric all-to-all). When one flow of a
// step finishes early and frees bandwidth for the others, or latencies differ,
// the closed form (which assumes the step's flows share for their whole life)
// is an estimate, not a bound.
//
// Algorithms (n = group size, ranks on a logical ring i -> (i+1) % n):
//  * ring_reduce_scatter: n-1 steps; every rank sends total/n to its right
//    neighbour in each step. ring_all_gather: same shape.
//  * ring_all_reduce: reduce-scatter then all-gather, 2(n-1) steps.
//  * all_to_all_pairwise: n-1 steps; in step s (1..n-1) rank i sends
//    bytes_per_pair to (i+s) % n.
//  * point_to_point: one step, rank 0 -> rank 1.
// n == 1 gives an empty schedule (nothing to move). n < 1 or negative/
// non-finite bytes -> std::invalid_argument.
#include <functional>
#include <string_view>
#include <vector>

#include "trainsim/common/units.hpp"
#include "trainsim/sim/flow_network.hpp"
#include "trainsim/sim/link.hpp"

namespace trainsim::sim {

struct Transfer {
  int src = 0;  // rank within the group
  int dst = 0;
  ByteCount bytes{};
};

struct Step {
  std::vector<Transfer> transfers;  // concurrent
};

using CollectiveSchedule = std::vector<Step>;  // sequential

CollectiveSchedule ring_reduce_scatter(int n, ByteCount total_bytes);
CollectiveSchedule ring_all_gather(int n, ByteCount total_bytes);
CollectiveSchedule ring_all_reduce(int n, ByteCount total_bytes);
CollectiveSchedule all_to_all_pairwise(int n, ByteCount bytes_per_pair);
CollectiveSchedule point_to_point(ByteCount bytes);

// Total bytes moved by a schedule (sum over all transfers).
ByteCount schedule_bytes(const CollectiveSchedule& s);

// Route taken by a transfer from group rank src to group rank dst.
using RouteFn = std::function<Route(int src, int dst)>;

// Plays `s` on `net` starting now: each step's transfers are concurrent flows,
// a step starts when the previous one has fully finished, and on_done (may be
// empty) runs from an engine event when the last step has finished (at now
// for an empty schedule). `net` must outlive the run.
void run_collective(FlowNetwork& net, const CollectiveSchedule& s, RouteFn routes,
                    std::function<void()> on_done);

// Closed-form time of `s` on an idle network of `links`:
//   sum over steps of max over transfers of
//     (route latency + bytes / max-min rate of that step's flows),
// rounded exactly as FlowNetwork rounds (transfer_duration). Transfers with
// an empty route or fewer than kDoneBytes bytes take only their latency and
// do not enter the solve, as in FlowNetwork.
Time collective_time_idle(const std::vector<Link>& links, const CollectiveSchedule& s,
                          const RouteFn& routes, std::string_view solver = "maxmin");

}  // namespace trainsim::sim
