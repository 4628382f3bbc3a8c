#pragma once
// A network link as the flow model sees it: a capacity shared by the flows
// that cross it, and a propagation/switching latency paid once per flow. A
// route is the ordered list of link indices a flow crosses. Topologies (in
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

}  // namespace trainsim::sim
