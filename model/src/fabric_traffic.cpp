#include "trainsim/model/fabric_traffic.hpp"

#include <algorithm>
#include <map>

namespace trainsim::model {

Bundle make_bundle(const hw::Topology& topo, const std::vector<GpuTransfer>& transfers, int sequential_steps,
                   const std::vector<double>* capacity_Bps) {
  Bundle b;
  std::map<sim::LinkIndex, std::pair<double, int>> load;  // bytes, transfers; ordered by link
  Time longest = Time::zero();
  for (const GpuTransfer& t : transfers) {
    if (t.src == t.dst || t.bytes <= 0) continue;
    const sim::Route r = topo.route(t.src, t.dst);
    for (sim::LinkIndex l : r) {
      load[l].first += t.bytes;
      ++load[l].second;
    }
    b.bytes += t.bytes;
    longest = max(longest, topo.path_latency(t.src, t.dst));
  }
  // Fairness weight: the most transfers the bundle puts on one link, i.e.
  // what per-transfer max-min would give it there against one other flow
  // (the whole transfer count would starve a lone pipeline transfer sharing
  // one NIC with an all-to-all that spans 64 NICs).
  int most = 1;
  for (const auto& [l, v] : load) most = std::max(most, v.second);
  b.share = most;
  b.latency = longest * std::max(1, sequential_steps);
  double worst = 0;
  for (const auto& [l, v] : load) {
    const double bytes = v.first;
    b.route.push_back(sim::WeightedHop{l, bytes / b.bytes});
    const auto li = static_cast<std::size_t>(l);
    worst = std::max(worst, bytes / (capacity_Bps ? (*capacity_Bps)[li] : topo.links()[li].capacity.value()));
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
