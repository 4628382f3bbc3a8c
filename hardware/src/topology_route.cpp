// Routing on the surviving graph (topology.hpp explains the policy) and the
// build-time check that faults leave every GPU reachable.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>
#include <utility>
#include <vector>

#include "trainsim/hardware/topology.hpp"

namespace trainsim::hw {

namespace {
template <class T>
const T& at(const std::vector<T>& v, int i) {
  return v[static_cast<std::size_t>(i)];
}
}  // namespace

// Index of a GPU's NIC within its plane (node-major); the ECMP hash input.
long long Topology::plane_index(int gpu) const {
  const int node = gpu / gpus_per_node_, local = gpu % gpus_per_node_;
  return static_cast<long long>(node) * (gpus_per_node_ / planes_) + local / planes_;
}

// PXN lane: the plane (multi-plane), the rail = local rank (rail-optimized),
// or 0 (plain fat-tree: every NIC serves every destination).
int Topology::lane_of(int gpu) const { return (gpu % gpus_per_node_) % lanes_; }

// The GPU of src's node, in src's group of `lanes_` local ranks, on `lane`.
int Topology::lane_proxy(int src, int lane) const {
  const int local = src % gpus_per_node_;
  return (src - local) + (local - local % lanes_) + lane;
}

// First GPU of `node`, cyclic in local rank from prefer_gpu, whose NIC is on
// `plane` and alive; -1 if none.
int Topology::pick_nic(int node, int prefer_gpu, int plane) const {
  const int base = node * gpus_per_node_, start = prefer_gpu % gpus_per_node_;
  for (int i = 0; i < gpus_per_node_; ++i) {
    const int g = base + (start + i) % gpus_per_node_;
    if ((g % gpus_per_node_) % planes_ == plane && at(link_alive_, at(nic_up_, g))) return g;
  }
  return -1;
}

// Does switch `sw` sit above `leaf` (so the path can turn down there)?
bool Topology::covers(int sw, int leaf) const {
  if (at(plane_, sw) != at(plane_, leaf)) return false;
  const int tier = at(tier_, sw);
  if (tier == top_tier_) return true;
  if (tier == 0) return sw == leaf;
  return at(group_, sw) == at(group_, leaf);
}

// Number of distinct neighbours of v on `tier` (over surviving links) that
// satisfy ok, and the adjacency position of the first link to the n-th one.
template <class Ok>
int Topology::count_groups(int v, int tier, Ok ok) const {
  int n = 0;
  for (int i = at(adj_begin_, v); i < at(adj_begin_, v + 1);) {
    const int head = at(head_, at(adj_, i));
    if (at(tier_, head) == tier && ok(head)) ++n;
    while (i < at(adj_begin_, v + 1) && at(head_, at(adj_, i)) == head) ++i;
  }
  return n;
}

template <class Ok>
bool Topology::has_group(int v, int tier, Ok ok) const {
  for (int i = at(adj_begin_, v); i < at(adj_begin_, v + 1);) {
    const int head = at(head_, at(adj_, i));
    if (at(tier_, head) == tier && ok(head)) return true;
    while (i < at(adj_begin_, v + 1) && at(head_, at(adj_, i)) == head) ++i;
  }
  return false;
}

template <class Ok>
int Topology::nth_group(int v, int tier, Ok ok, int n) const {
  for (int i = at(adj_begin_, v); i < at(adj_begin_, v + 1);) {
    const int head = at(head_, at(adj_, i));
    if (at(tier_, head) == tier && ok(head) && n-- == 0) return i;
    while (i < at(adj_begin_, v + 1) && at(head_, at(adj_, i)) == head) ++i;
  }
  throw std::logic_error("Topology: no such neighbour");
}

// One of the parallel cables starting at adjacency position `first`.
sim::LinkIndex Topology::pick_parallel(int v, int first, unsigned long long h) const {
  const int head = at(head_, at(adj_, first));
  int m = 0;
  while (first + m < at(adj_begin_, v + 1) && at(head_, at(adj_, first + m)) == head) ++m;
  return at(adj_, first + static_cast<int>(h % static_cast<unsigned long long>(m)));
}

bool Topology::can_descend(int sw, int leaf) const {
  if (!faulty_ || sw == leaf) return true;
  const auto ok = [&](int u) { return covers(u, leaf) && can_descend(u, leaf); };
  return has_group(sw, at(tier_, sw) - 1, ok);
}

bool Topology::can_climb(int sw, int leaf) const {
  if (!faulty_) return true;
  if (covers(sw, leaf)) return can_descend(sw, leaf);
  const auto ok = [&](int u) { return can_climb(u, leaf); };
  return has_group(sw, at(tier_, sw) + 1, ok);
}

template <class Ok>
sim::LinkIndex Topology::hop(int sw, int tier, Ok ok, unsigned long long& h, const char* way) const {
  const int n = count_groups(sw, tier, ok);
  if (n == 0) throw std::logic_error(fmt::format("Topology: no way {} from {}", way, at(names_, sw)));
  const int first = nth_group(sw, tier, ok, static_cast<int>(h % static_cast<unsigned long long>(n)));
  h /= static_cast<unsigned long long>(n);
  return pick_parallel(sw, first, h);
}

// Up: the upper switch h % n among the n that still reach the leaf, then a
// parallel cable (h / n) % cables; the rest of the hash goes on.
void Topology::climb(int sw, int leaf, unsigned long long h, sim::Route& r) const {
  if (covers(sw, leaf)) {
    descend(sw, leaf, h, r);
    return;
  }
  const sim::LinkIndex l = hop(sw, at(tier_, sw) + 1, [&](int u) { return can_climb(u, leaf); }, h, "up");
  r.push_back(l);
  climb(at(head_, l), leaf, h, r);
}

// Down: the one lower switch above the leaf (a fat-tree has one per tier
// under a given switch), a parallel cable by the same hash.
void Topology::descend(int sw, int leaf, unsigned long long h, sim::Route& r) const {
  if (sw == leaf) return;
  const auto ok = [&](int u) { return covers(u, leaf) && can_descend(u, leaf); };
  const sim::LinkIndex l = hop(sw, at(tier_, sw) - 1, ok, h, "down");
  r.push_back(l);
  descend(at(head_, l), leaf, h, r);
}

sim::Route Topology::route(int src, int dst) const {
  check_gpu(src, "route");
  check_gpu(dst, "route");
  sim::Route r;
  if (src == dst) return r;
  const int src_node = src / gpus_per_node_, dst_node = dst / gpus_per_node_;
  if (src_node == dst_node) return {at(nvlink_up_, src), at(nvlink_down_, dst)};
  // Plane, ingress NIC (dst's own if it can), egress NIC (PXN proxy). The
  // destination's plane first; when it cannot serve, the other planes in an
  // order that starts at a hash of the endpoints, so the traffic of a failed
  // NIC or plane spreads over the surviving ones instead of doubling the
  // load of one neighbour.
  int egress = -1, ingress = -1;
  const int others = planes_ - 1;
  const int start = others > 0 ? static_cast<int>((plane_index(src) + static_cast<long long>(dst)) % others) : 0;
  for (int i = 0; i < planes_ && egress < 0; ++i) {
    const int plane = i == 0 ? plane_of(dst) : (plane_of(dst) + 1 + (start + i - 1) % others) % planes_;
    ingress = pick_nic(dst_node, dst, plane);
    if (ingress >= 0) egress = pick_nic(src_node, lane_proxy(src, lane_of(ingress)), plane);
  }
  if (egress < 0) throw std::logic_error(fmt::format("Topology: GPU {} cannot reach GPU {}", src, dst));
  if (egress != src) r.insert(r.end(), {at(nvlink_up_, src), at(nvlink_down_, egress)});
  r.push_back(at(nic_up_, egress));
  const auto h = static_cast<unsigned long long>(plane_index(egress) + plane_index(ingress));
  climb(leaf_of(egress), leaf_of(ingress), h, r);
  r.push_back(at(nic_down_, ingress));
  if (ingress != dst) r.insert(r.end(), {at(nvlink_up_, ingress), at(nvlink_down_, dst)});
  return r;
}

// ---- reachability under faults ----

namespace {

bool intersect(const std::vector<int>& a, const std::vector<int>& b) {
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i] == b[j]) return true;
    if (a[i] < b[j]) ++i;
    else ++j;
  }
  return false;
}

[[noreturn]] void unreachable(const std::string& what, const std::string& expected) {
  throw FabricFaultError(-1, "", what, expected);
}

}  // namespace

// Every pair of nodes must share a plane on which both have a live NIC.
// Nodes are grouped by their set of live planes, so only distinct sets are
// compared (few, with few faults).
void Topology::check_node_planes() const {
  if (nodes_ < 2) return;
  std::map<std::vector<int>, int> sets;  // live planes -> first node with them
  for (int node = 0; node < nodes_; ++node) {
    std::vector<int> live;
    for (int p = 0; p < planes_; ++p)
      if (pick_nic(node, node * gpus_per_node_, p) >= 0) live.push_back(p);
    if (live.empty())
      unreachable(fmt::format("faults that leave node {} without a working NIC", node),
                  "faults that leave every node at least one NIC");
    sets.emplace(std::move(live), node);
  }
  for (auto a = sets.begin(); a != sets.end(); ++a)
    for (auto b = std::next(a); b != sets.end(); ++b)
      if (!intersect(a->first, b->first))
        unreachable(fmt::format("faults after which nodes {} and {} have no plane with a working NIC on both",
                                a->second, b->second),
                    "faults that leave every pair of nodes a common plane");
}

// Within plane p, every leaf with a live NIC must reach every other one
// up*/down*. Leaves are grouped by what they reach upwards: tier-1 switches
// (by index within the pod, so leaves of different pods compare) and cores;
// two leaves of one pod need a common tier-1 index, of different pods a
// common core. Only distinct groups are compared.
void Topology::check_plane_leaves(int p) const {
  if (top_tier_ == 0) return;
  struct Reach {
    std::vector<int> mid, top;
    std::set<int> pods;
    int leaf = -1;
  };
  std::map<std::pair<std::vector<int>, std::vector<int>>, Reach> groups;
  std::set<int> leaves, pods;
  for (int g = 0; g < gpus_; ++g)
    if (plane_of(g) == p && at(link_alive_, at(nic_up_, g))) leaves.insert(leaf_of(g));
  const int mid0 = gpus_ + nodes_ + planes_ * per_plane_[0] + p * per_plane_[1];
  for (int leaf : leaves) {
    std::set<int> mid, top;
    for (int i = at(adj_begin_, leaf); i < at(adj_begin_, leaf + 1); ++i) {
      const int u = at(head_, at(adj_, i));
      if (at(tier_, u) != 1) continue;
      mid.insert(tiers_ == 3 ? (u - mid0) % up_ports_ : u);
      for (int k = at(adj_begin_, u); k < at(adj_begin_, u + 1); ++k)
        if (at(tier_, at(head_, at(adj_, k))) == 2) top.insert(at(head_, at(adj_, k)));
    }
    std::vector<int> m(mid.begin(), mid.end()), t(top.begin(), top.end());
    Reach& r = groups[{m, t}];
    if (r.leaf < 0) r = Reach{m, t, {}, leaf};
    r.pods.insert(at(group_, leaf));
    pods.insert(at(group_, leaf));
  }
  const auto cut = [&](int a, int b) {
    unreachable(fmt::format("faults that cut {} off from {} (no surviving up*/down* path)", at(names_, a),
                            at(names_, b)),
                "faults that leave the leaves of a plane that have live NICs connected (to take a leaf out, fail "
                "the switch)");
  };
  std::vector<const Reach*> list;
  for (const auto& [key, r] : groups) list.push_back(&r);
  for (const Reach* a : list) {
    if (leaves.size() > 1 && a->mid.empty())
      unreachable(fmt::format("faults that leave {} no surviving up-link", at(names_, a->leaf)),
                  "faults that leave every leaf with live NICs a way up (to take a leaf out, fail the switch)");
    if (top_tier_ == 2 && pods.size() > 1 && a->top.empty())
      unreachable(fmt::format("faults that leave {} no surviving path to a core", at(names_, a->leaf)),
                  "faults that leave every leaf with live NICs a way to the cores");
  }
  for (std::size_t i = 0; i < list.size(); ++i)
    for (std::size_t j = i + 1; j < list.size(); ++j) {
      const Reach& a = *list[i];
      const Reach& b = *list[j];
      const bool one_pod = a.pods.size() == 1 && b.pods == a.pods;
      const bool same_pod = std::any_of(a.pods.begin(), a.pods.end(), [&](int x) { return b.pods.count(x) > 0; });
      if (same_pod && !intersect(a.mid, b.mid)) cut(a.leaf, b.leaf);
      if (top_tier_ == 2 && !one_pod && !intersect(a.top, b.top)) cut(a.leaf, b.leaf);
    }
}

void Topology::check_reachability() const {
  check_node_planes();
  for (int p = 0; p < planes_; ++p) check_plane_leaves(p);
}

}  // namespace trainsim::hw
