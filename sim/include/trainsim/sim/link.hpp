#pragma once
// A network link as the flow model sees it: a capacity shared by the flows
// that cross it, and a propagation/switching latency paid once per flow. A
// route is the ordered list of link indices a flow crosses; a weighted route
// says how many bytes each flow-byte puts on each link. Topologies (in
// hardware/) produce links and routes; sim/ never sees switches or GPUs.
#include <string>
#include <vector>

#include "trainsim/common/units.hpp"

namespace trainsim::sim {

struct Link {
  std::string name;
  BytesPerSecond capacity{};  // one direction
  Time latency{};
};

using LinkIndex = int;
using Route = std::vector<LinkIndex>;

// One link of a bundled flow's route: each byte of the flow puts `weight`
// bytes on `link` (weight > 0; a bundle of transfers that puts 3 GB on link A
// and 1 GB on link B out of 4 GB has weights 0.75 and 0.25; a weight above 1
// means a flow-byte crosses the link more than once).
struct WeightedHop {
  LinkIndex link = 0;
  double weight = 1.0;
  friend bool operator==(const WeightedHop&, const WeightedHop&) = default;
};
using WeightedRoute = std::vector<WeightedHop>;

}  // namespace trainsim::sim
