#include "trainsim/model/fabric_traffic.hpp"

#include <algorithm>

namespace trainsim::model {

Bundle make_bundle(const hw::Topology& topo, const std::vector<GpuTransfer>& transfers, int sequential_steps,
                   const std::vector<double>* capacity_Bps) {
  Bundle b;
  // Every (link, bytes) a transfer puts on its route, then grouped by link:
  // a stable sort keeps each link's transfers in order, so the sums are the
  // same doubles an ordered map would give, without a node per link.
  std::vector<std::pair<sim::LinkIndex, double>> hops;
  hops.reserve(transfers.size() * 4);
  Time longest = Time::zero();
  for (const GpuTransfer& t : transfers) {
    if (t.src == t.dst || t.bytes <= 0) continue;
    for (sim::LinkIndex l : topo.route(t.src, t.dst)) hops.emplace_back(l, t.bytes);
    b.bytes += t.bytes;
    longest = max(longest, topo.path_latency(t.src, t.dst));
  }
  std::stable_sort(hops.begin(), hops.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  // Fairness weight: the most transfers the bundle puts on one link, i.e.
  // what per-transfer max-min would give it there against one other flow
  // (the whole transfer count would starve a lone pipeline transfer sharing
  // one NIC with an all-to-all that spans 64 NICs).
  int most = 1;
  double worst = 0;
  for (std::size_t i = 0; i < hops.size();) {
    const sim::LinkIndex l = hops[i].first;
    double bytes = 0;
    int count = 0;
    for (; i < hops.size() && hops[i].first == l; ++i, ++count) bytes += hops[i].second;
    most = std::max(most, count);
    b.route.push_back(sim::WeightedHop{l, bytes / b.bytes});
    const auto li = static_cast<std::size_t>(l);
    worst = std::max(worst, bytes / (capacity_Bps ? (*capacity_Bps)[li] : topo.links()[li].capacity.value()));
  }
  b.share = most;
  b.latency = longest * std::max(1, sequential_steps);
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
