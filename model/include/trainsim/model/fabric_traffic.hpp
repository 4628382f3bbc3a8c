#pragma once
// A collective's traffic laid on the fabric as one bundled flow.
//
// What it captures. A collective (a ring reduce-scatter, an MoE dispatch)
// is a set of point-to-point transfers between GPUs. Each transfer follows
// its route on the topology (hw::Topology::route: NVLink inside a node, NIC,
// leaf, spine across nodes, PXN across planes), and the bytes it puts on
// every link are summed over the transfers. The collective then runs on the
// flow network as ONE bundled flow (sim::WeightedRoute): each byte of the
// bundle puts load_l / total bytes on link l, and the bundle has a fairness
// share equal to the largest number of its transfers on one link, so on that
// link it takes against other traffic what its transfers would take under
// per-transfer max-min (elsewhere it may take more or less).
// Alone on a fabric it finishes when its most-loaded link has carried its
// load: time = max over links of load_l / capacity_l (plus latency), the
// bottleneck time of a perfectly pipelined collective, which is how NCCL's
// rings and DeepEP's chunked, channel-parallel kernels behave on large
// messages.
//
// What it ignores. The order of transfers inside a collective (a bundle's
// transfers progress together; a ring's n-1 steps are pipelined, which is
// what NCCL does with chunks); per-transfer unfairness inside the bundle; the
// latency of each step beyond `sequential_steps` x the longest route latency.
// Small messages are therefore latency + bytes / bottleneck, no protocol
// modes (LL, LL128).
//
// Validation. On an idle symmetric fabric a ring bundle equals the closed
// form (n-1) x latency + (n-1)/n x bytes / link rate (tests); the MoE bundle
// is checked against DeepEP's published bandwidths (docs/VALIDATION.md).
#include <vector>

#include "trainsim/common/units.hpp"
#include "trainsim/hardware/topology.hpp"
#include "trainsim/sim/flow_network.hpp"

namespace trainsim::model {

struct GpuTransfer {
  int src = 0;  // global GPU ids
  int dst = 0;
  double bytes = 0;
};

struct Bundle {
  sim::WeightedRoute route;  // per link: bytes on it per byte of the bundle
  double bytes = 0;          // sum of the transfers' bytes
  double share = 1;          // most of its transfers on one link (fairness weight)
  Time latency{};
  // Bytes on the most loaded link divided by its capacity: the time the
  // bundle takes alone on an idle fabric, latency excluded.
  Time idle_time{};
};

// Sums the transfers' bytes over their routes. Local transfers (src == dst)
// cost nothing. latency = sequential_steps x the longest route latency.
// idle_time uses `capacity_Bps` per link when given, else nominal capacities.
Bundle make_bundle(const hw::Topology& topo, const std::vector<GpuTransfer>& transfers, int sequential_steps,
                   const std::vector<double>* capacity_Bps = nullptr);

// Transfers of a ring over `members`: each sends `bytes_per_member` x
// (n-1)/n x phases to its right neighbour (phases 2 for an all-reduce).
std::vector<GpuTransfer> ring_transfers(const std::vector<int>& members, double bytes_per_member, int phases);

}  // namespace trainsim::model
