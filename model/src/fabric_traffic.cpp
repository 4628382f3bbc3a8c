#include "trainsim/model/fabric_traffic.hpp"

#include <algorithm>
#include <map>

namespace trainsim::model {

Bundle make_bundle(const hw::Topology& topo, const std::vector<GpuTransfer>& transfers, int sequential_steps) {
  Bundle b;
  std::map<sim::LinkIndex, double> load;  // ordered: the route is built in link order
  Time longest = Time::zero();
  int moving = 0;
  for (const GpuTransfer& t : transfers) {
    if (t.src == t.dst || t.bytes <= 0) continue;
    const sim::Route r = topo.route(t.src, t.dst);
    for (sim::LinkIndex l : r) load[l] += t.bytes;
    b.bytes += t.bytes;
    ++moving;
    longest = max(longest, topo.path_latency(t.src, t.dst));
  }
  b.share = std::max(1, moving);
  b.latency = longest * std::max(1, sequential_steps);
  double worst = 0;
  for (const auto& [l, bytes] : load) {
    b.route.push_back(sim::WeightedHop{l, bytes / b.bytes});
    worst = std::max(worst, bytes / topo.links()[static_cast<std::size_t>(l)].capacity.value());
  }
  b.idle_time = Time::seconds(worst);
  return b;
}

std::vector<GpuTransfer> ring_transfers(const std::vector<int>& members, double bytes_per_member, int phases) {
  std::vector<GpuTransfer> out;
  const std::size_t n = members.size();
  if (n < 2) return out;
  const double each = bytes_per_member * static_cast<double>(n - 1) / static_cast<double>(n) * phases;
  out.reserve(n);
  for (std::size_t i = 0; i < n; ++i) out.push_back(GpuTransfer{members[i], members[(i + 1) % n], each});
  return out;
}

}  // namespace trainsim::model
