#include "trainsim/hardware/topology.hpp"

#include <fmt/format.h>

#include <boost/graph/adjacency_list.hpp>

#include <cstdint>
#include <stdexcept>
#include <string>

namespace trainsim::hw {

const char* to_string(VertexKind k) {
  switch (k) {
    case VertexKind::Gpu: return "gpu";
    case VertexKind::NvSwitch: return "nvswitch";
    case VertexKind::Leaf: return "leaf";
    case VertexKind::Spine: return "spine";
  }
  return "?";
}

namespace {

// The wiring graph. It lives only while a Topology is being built: edges are
// added in link order, checked, then flattened into plain vectors, so no
// Boost type reaches a public header.
struct VertexProps {
  VertexKind kind = VertexKind::Gpu;
  std::string name;
};
struct EdgeProps {
  int index = 0;
  double capacity = 0.0;      // bytes/s, one direction
  std::int64_t latency_ps = 0;
};
using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS, VertexProps, EdgeProps>;

[[noreturn]] void bad(const std::string& what) { throw std::invalid_argument("Topology::build: " + what); }

void validate(const ClusterSpec& c) {
  const NetworkSpec& n = c.network;
  if (c.nodes < 1) bad(fmt::format("nodes = {}, expected >= 1", c.nodes));
  if (c.gpus_per_node < 1) bad(fmt::format("gpus_per_node = {}, expected >= 1", c.gpus_per_node));
  if (static_cast<long long>(c.nodes) * c.gpus_per_node > (1LL << 24))
    bad(fmt::format("{} x {} GPUs, expected at most 2^24 in all", c.nodes, c.gpus_per_node));
  if (c.nics_per_node != c.gpus_per_node)
    bad(fmt::format("nics_per_node = {}, expected gpus_per_node ({}): one NIC per GPU", c.nics_per_node,
                    c.gpus_per_node));
  if (n.topology == TopologyKind::MultiPlaneFatTree && n.planes != c.gpus_per_node)
    bad(fmt::format("planes = {}, expected gpus_per_node ({}) for a multi-plane fat-tree", n.planes,
                    c.gpus_per_node));
  if (n.topology == TopologyKind::FatTree && n.planes != 1)
    bad(fmt::format("planes = {}, expected 1 for a plain fat-tree", n.planes));
  if (n.tiers != 2) bad(fmt::format("tiers = {}, expected 2 (3-tier fat-trees are not yet supported)", n.tiers));
  if (n.switch_radix < 4 || n.switch_radix % 2 != 0)
    bad(fmt::format("switch_radix = {}, expected an even number >= 4", n.switch_radix));
  const long long per_plane = static_cast<long long>(c.nodes) * (c.gpus_per_node / n.planes);
  if (per_plane > max_endpoints_two_tier(n.switch_radix))
    bad(fmt::format("{} endpoints per plane, expected at most radix^2/2 = {} for a 2-tier fat-tree of radix {}",
                    per_plane, max_endpoints_two_tier(n.switch_radix), n.switch_radix));
  if (!(n.nic_bandwidth.value() > 0.0)) bad("nic_bandwidth must be > 0");
  if (!(c.gpu.nvlink_unidir.value() > 0.0)) bad("gpu.nvlink_unidir must be > 0");
  if (n.switch_latency < Time::zero()) bad("switch_latency must be >= 0");
  if (n.nic_latency < Time::zero()) bad("nic_latency must be >= 0");
  if (c.gpu.nvlink_latency < Time::zero()) bad("gpu.nvlink_latency must be >= 0");
}

}  // namespace

Topology Topology::build(const ClusterSpec& c) {
  validate(c);
  const NetworkSpec& n = c.network;
  Topology t;
  t.gpus_ = c.total_gpus();
  t.nodes_ = c.nodes;
  t.gpus_per_node_ = c.gpus_per_node;
  t.planes_ = n.planes;

  const int half = n.switch_radix / 2;                  // down ports = up ports per leaf
  const int per_plane = t.gpus_ / t.planes_;            // NICs (endpoints) per plane
  const int per_node_per_plane = c.gpus_per_node / t.planes_;
  t.leaves_per_plane_ = (per_plane + half - 1) / half;
  // ceil(leaves * k/2 / k): enough spine ports for every leaf up port; none
  // when the whole plane fits on one leaf.
  t.spines_per_plane_ = t.leaves_per_plane_ > 1 ? (t.leaves_per_plane_ * half + n.switch_radix - 1) / n.switch_radix : 0;
  const int L = t.leaves_per_plane_, S = t.spines_per_plane_;
  t.inter_switch_cables_ = S > 0 ? t.planes_ * L * half : 0;

  // Vertices: GPUs [0, G), NVSwitches [G, G+nodes), then per plane L leaves,
  // then per plane S spines.
  const int nvsw0 = t.gpus_;
  const int leaf0 = nvsw0 + t.nodes_;
  const int spine0 = leaf0 + t.planes_ * L;
  const int vertices = spine0 + t.planes_ * S;
  t.first_leaf_vertex_ = leaf0;

  Graph g(static_cast<std::size_t>(vertices));
  t.kinds_.resize(static_cast<std::size_t>(vertices));
  for (int v = 0; v < vertices; ++v) {
    VertexKind k = v < nvsw0 ? VertexKind::Gpu
                   : v < leaf0 ? VertexKind::NvSwitch
                   : v < spine0 ? VertexKind::Leaf
                                : VertexKind::Spine;
    std::string name;
    switch (k) {
      case VertexKind::Gpu: name = fmt::format("gpu{}", v); break;
      case VertexKind::NvSwitch: name = fmt::format("nvsw{}", v - nvsw0); break;
      case VertexKind::Leaf: name = fmt::format("p{}.leaf{}", (v - leaf0) / L, (v - leaf0) % L); break;
      case VertexKind::Spine: name = fmt::format("p{}.spine{}", (v - spine0) / S, (v - spine0) % S); break;
    }
    g[static_cast<std::size_t>(v)] = VertexProps{k, std::move(name)};
    t.kinds_[static_cast<std::size_t>(v)] = k;
  }

  const std::size_t expected_edges = 4u * static_cast<std::size_t>(t.gpus_) + 2u * t.inter_switch_cables_;
  t.links_.reserve(expected_edges);
  t.tail_.reserve(expected_edges);
  t.head_.reserve(expected_edges);
  int next_edge = 0;
  auto add = [&](int u, int v, BytesPerSecond cap, Time lat) {
    const int idx = next_edge++;
    boost::add_edge(static_cast<std::size_t>(u), static_cast<std::size_t>(v), EdgeProps{idx, cap.value(), lat.count_ps()},
                    g);
    t.links_.push_back(sim::Link{fmt::format("{}>{}", g[static_cast<std::size_t>(u)].name,
                                             g[static_cast<std::size_t>(v)].name),
                                 cap, lat});
    t.tail_.push_back(u);
    t.head_.push_back(v);
    return idx;
  };

  // NVLink: GPU <-> its node's NVSwitch; half the measured GPU-to-GPU latency
  // on each side (the odd picosecond goes to the down edge).
  const Time nv_up_lat = Time::ps(c.gpu.nvlink_latency.count_ps() / 2);
  const Time nv_down_lat = c.gpu.nvlink_latency - nv_up_lat;
  t.nvlink_up_.resize(static_cast<std::size_t>(t.gpus_));
  t.nvlink_down_.resize(static_cast<std::size_t>(t.gpus_));
  for (int gpu = 0; gpu < t.gpus_; ++gpu) {
    const int sw = nvsw0 + gpu / c.gpus_per_node;
    t.nvlink_up_[static_cast<std::size_t>(gpu)] = add(gpu, sw, c.gpu.nvlink_unidir, nv_up_lat);
    t.nvlink_down_[static_cast<std::size_t>(gpu)] = add(sw, gpu, c.gpu.nvlink_unidir, nv_down_lat);
  }

  // NICs: GPU <-> leaf of its plane. The NIC's latency is paid on both ends;
  // the leaf's switching on the way in.
  t.nic_up_.resize(static_cast<std::size_t>(t.gpus_));
  t.nic_down_.resize(static_cast<std::size_t>(t.gpus_));
  for (int gpu = 0; gpu < t.gpus_; ++gpu) {
    const int node = gpu / c.gpus_per_node, local = gpu % c.gpus_per_node;
    const int plane = local % t.planes_;
    const int endpoint = node * per_node_per_plane + local / t.planes_;  // index within the plane
    const int leaf = leaf0 + plane * L + endpoint / half;
    t.nic_up_[static_cast<std::size_t>(gpu)] = add(gpu, leaf, n.nic_bandwidth, n.nic_latency + n.switch_latency);
    t.nic_down_[static_cast<std::size_t>(gpu)] = add(leaf, gpu, n.nic_bandwidth, n.nic_latency);
  }

  // Leaf <-> spine: the up ports of a plane's leaves, taken leaf by leaf, are
  // dealt round-robin over its spines. Each spine then gets at most
  // ceil(L*half / S) <= radix cables, and each leaf (half >= S) reaches every
  // spine. Grouped by (global leaf, spine) for routing.
  const int groups = t.planes_ * L * S;
  t.cable_begin_.assign(static_cast<std::size_t>(groups) + 1, 0);
  if (S > 0) {
    for (int p = 0; p < t.planes_; ++p)
      for (int c_ = 0; c_ < L * half; ++c_) {
        const int grp = (p * L + c_ / half) * S + c_ % S;
        ++t.cable_begin_[static_cast<std::size_t>(grp) + 1];
      }
    for (int i = 0; i < groups; ++i) t.cable_begin_[static_cast<std::size_t>(i) + 1] += t.cable_begin_[static_cast<std::size_t>(i)];
    t.cable_up_.resize(static_cast<std::size_t>(t.inter_switch_cables_));
    t.cable_down_.resize(static_cast<std::size_t>(t.inter_switch_cables_));
    std::vector<int> fill(t.cable_begin_.begin(), t.cable_begin_.end() - 1);
    for (int p = 0; p < t.planes_; ++p)
      for (int c_ = 0; c_ < L * half; ++c_) {
        const int l = c_ / half, s = c_ % S;
        const int leaf = leaf0 + p * L + l, spine = spine0 + p * S + s;
        const int slot = fill[static_cast<std::size_t>((p * L + l) * S + s)]++;
        t.cable_up_[static_cast<std::size_t>(slot)] = add(leaf, spine, n.nic_bandwidth, n.switch_latency);
        t.cable_down_[static_cast<std::size_t>(slot)] = add(spine, leaf, n.nic_bandwidth, n.switch_latency);
      }
  }

  // Invariants on the wired graph (cheap; kept on in release builds): no
  // switch uses more ports than it has, every NVSwitch serves its node, and
  // every GPU has exactly its NVLink and its NIC.
  if (boost::num_edges(g) != expected_edges || t.links_.size() != expected_edges)
    throw std::logic_error("Topology::build: edge count mismatch");
  for (int v = 0; v < vertices; ++v) {
    const auto sv = static_cast<std::size_t>(v);
    const auto out = boost::out_degree(sv, g), in = boost::in_degree(sv, g);
    bool ok = out == in;
    switch (t.kinds_[sv]) {
      case VertexKind::Gpu: ok = ok && out == 2; break;
      case VertexKind::NvSwitch: ok = ok && out == static_cast<std::size_t>(c.gpus_per_node); break;
      case VertexKind::Leaf:
      case VertexKind::Spine: ok = ok && out <= static_cast<std::size_t>(n.switch_radix); break;
    }
    if (!ok)
      throw std::logic_error(fmt::format("Topology::build: port count of {} is wrong ({} out, {} in)", g[sv].name,
                                         out, in));
  }
  return t;
}

void Topology::check_gpu(int gpu, const char* what) const {
  if (gpu < 0 || gpu >= gpus_)
    throw std::out_of_range(fmt::format("Topology::{}: GPU {} outside [0, {})", what, gpu, gpus_));
}

int Topology::node_of(int gpu) const {
  check_gpu(gpu, "node_of");
  return gpu / gpus_per_node_;
}

int Topology::local_rank(int gpu) const {
  check_gpu(gpu, "local_rank");
  return gpu % gpus_per_node_;
}

int Topology::plane_of(int gpu) const { return local_rank(gpu) % planes_; }

int Topology::leaf_of(int gpu) const {
  check_gpu(gpu, "leaf_of");
  return head_[static_cast<std::size_t>(nic_up_[static_cast<std::size_t>(gpu)])];
}

int Topology::link_tail(sim::LinkIndex link) const {
  if (link < 0 || link >= static_cast<int>(tail_.size())) throw std::out_of_range("Topology::link_tail");
  return tail_[static_cast<std::size_t>(link)];
}

int Topology::link_head(sim::LinkIndex link) const {
  if (link < 0 || link >= static_cast<int>(head_.size())) throw std::out_of_range("Topology::link_head");
  return head_[static_cast<std::size_t>(link)];
}

VertexKind Topology::vertex_kind(int vertex) const {
  if (vertex < 0 || vertex >= vertex_count()) throw std::out_of_range("Topology::vertex_kind");
  return kinds_[static_cast<std::size_t>(vertex)];
}

// The GPU on src's node whose NIC is on dst's plane (NCCL PXN proxy).
int Topology::proxy_for(int src, int dst) const {
  const int want_plane = plane_of(dst);
  const int local = local_rank(src);
  return node_of(src) * gpus_per_node_ + (local - local % planes_) + want_plane;
}

sim::Route Topology::route(int src, int dst) const {
  check_gpu(src, "route");
  check_gpu(dst, "route");
  sim::Route r;
  if (src == dst) return r;
  const auto at = [](const std::vector<int>& v, int i) { return v[static_cast<std::size_t>(i)]; };
  if (node_of(src) == node_of(dst)) {
    r = {at(nvlink_up_, src), at(nvlink_down_, dst)};
    return r;
  }
  int from = src;
  if (plane_of(src) != plane_of(dst)) {
    from = proxy_for(src, dst);
    r.push_back(at(nvlink_up_, src));
    r.push_back(at(nvlink_down_, from));
  }
  r.push_back(at(nic_up_, from));
  const int leaf_a = leaf_of(from) - first_leaf_vertex_;  // global leaf index
  const int leaf_b = leaf_of(dst) - first_leaf_vertex_;
  if (leaf_a != leaf_b) {
    // Static ECMP: the spine from the flow's endpoints, the parallel cable
    // from the rest of the same hash. The hash uses the endpoints' indices
    // within their plane (the node, in a multi-plane fabric), not GPU ids: all
    // GPUs of one plane have ids congruent mod planes, so (src + dst) mod
    // spines would pin a whole plane's traffic to one spine.
    const int per_node_per_plane = gpus_per_node_ / planes_;
    const auto endpoint = [&](int gpu) {
      return static_cast<long long>(node_of(gpu)) * per_node_per_plane + local_rank(gpu) / planes_;
    };
    const long long h = endpoint(from) + endpoint(dst);
    const int s = static_cast<int>(h % spines_per_plane_);
    const long long k = h / spines_per_plane_;
    const int ga = leaf_a * spines_per_plane_ + s, gb = leaf_b * spines_per_plane_ + s;
    const int na = at(cable_begin_, ga + 1) - at(cable_begin_, ga);
    const int nb = at(cable_begin_, gb + 1) - at(cable_begin_, gb);
    r.push_back(at(cable_up_, at(cable_begin_, ga) + static_cast<int>(k % na)));
    r.push_back(at(cable_down_, at(cable_begin_, gb) + static_cast<int>(k % nb)));
  }
  r.push_back(at(nic_down_, dst));
  return r;
}

Time Topology::path_latency(int src, int dst) const {
  Time t = Time::zero();
  for (sim::LinkIndex l : route(src, dst)) t += links_[static_cast<std::size_t>(l)].latency;
  return t;
}

}  // namespace trainsim::hw
