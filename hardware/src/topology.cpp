// Wiring: the Boost graph of a cluster, its faults, and the flattened
// adjacency that routing (topology_route.cpp) reads.
#include "trainsim/hardware/topology.hpp"

#include <fmt/format.h>

#include <boost/graph/adjacency_list.hpp>

#include <algorithm>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>

namespace trainsim::hw {

const char* to_string(VertexKind k) {
  switch (k) {
    case VertexKind::Gpu: return "gpu";
    case VertexKind::NvSwitch: return "nvswitch";
    case VertexKind::Leaf: return "leaf";
    case VertexKind::Spine: return "spine";
    case VertexKind::Aggregation: return "aggregation";
    case VertexKind::Core: return "core";
  }
  return "?";
}

FabricFaultError::FabricFaultError(int fault_index, std::string key, std::string value, std::string expected)
    : std::invalid_argument(fmt::format("Topology::build: fault {}: {} (expected {})", fault_index, value, expected)),
      index_(fault_index),
      key_(std::move(key)),
      value_(std::move(value)),
      expected_(std::move(expected)) {}

namespace {

// The wiring graph. It lives only while a Topology is being built: edges are
// added in link order, checked, faults remove edges from it, and what
// survives is flattened into plain vectors, so no Boost type reaches a
// public header.
struct VertexProps {
  VertexKind kind = VertexKind::Gpu;
};
struct EdgeProps {
  int index = 0;
  double capacity = 0.0;  // bytes/s, one direction
  std::int64_t latency_ps = 0;
};
using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS, VertexProps, EdgeProps>;

[[noreturn]] void bad(const std::string& what) { throw std::invalid_argument("Topology::build: " + what); }

void validate_shape(const ClusterSpec& c) {
  const NetworkSpec& n = c.network;
  if (c.nodes < 1) bad(fmt::format("nodes = {}, expected >= 1", c.nodes));
  if (c.gpus_per_node < 1) bad(fmt::format("gpus_per_node = {}, expected >= 1", c.gpus_per_node));
  if (static_cast<long long>(c.nodes) * c.gpus_per_node > (1LL << 24))
    bad(fmt::format("{} x {} GPUs, expected at most 2^24 in all", c.nodes, c.gpus_per_node));
  if (c.nics_per_node != c.gpus_per_node)
    bad(fmt::format("nics_per_node = {}, expected gpus_per_node ({}): one NIC per GPU", c.nics_per_node,
                    c.gpus_per_node));
  if (n.topology == TopologyKind::MultiPlaneFatTree && (n.planes < 1 || c.gpus_per_node % n.planes != 0))
    bad(fmt::format("planes = {}, expected a divisor of gpus_per_node ({}) for a multi-plane fat-tree", n.planes,
                    c.gpus_per_node));
  if (n.topology != TopologyKind::MultiPlaneFatTree && n.planes != 1)
    bad(fmt::format("planes = {}, expected 1 for a {}", n.planes, to_string(n.topology)));
  if (n.tiers != 2 && n.tiers != 3) bad(fmt::format("tiers = {}, expected 2 or 3", n.tiers));
  if (n.switch_radix < 4 || n.switch_radix % 2 != 0)
    bad(fmt::format("switch_radix = {}, expected an even number >= 4", n.switch_radix));
  if (!(n.oversubscription >= 1.0) || leaf_down_ports(n) >= n.switch_radix)
    bad(fmt::format("oversubscription = {}, expected >= 1 with at least one leaf up port", n.oversubscription));
}

void validate(const ClusterSpec& c) {
  validate_shape(c);
  const NetworkSpec& n = c.network;
  if (c.nodes > max_nodes(c))
    bad(fmt::format("{} nodes, expected at most {} for a {}-tier {} of radix {}", c.nodes, max_nodes(c), n.tiers,
                    to_string(n.topology), n.switch_radix));
  if (!(n.nic_bandwidth.value() > 0.0)) bad("nic_bandwidth must be > 0");
  if (!(c.gpu.nvlink_unidir.value() > 0.0)) bad("gpu.nvlink_unidir must be > 0");
  if (n.switch_latency < Time::zero()) bad("switch_latency must be >= 0");
  if (n.nic_latency < Time::zero()) bad("nic_latency must be >= 0");
  if (c.gpu.nvlink_latency < Time::zero()) bad("gpu.nvlink_latency must be >= 0");
}

int ceil_div(long long a, long long b) { return static_cast<int>((a + b - 1) / b); }

}  // namespace

// Builds one Topology; the Boost graph lives as long as the builder.
class TopologyBuilder {
 public:
  explicit TopologyBuilder(const ClusterSpec& c) : c_(c), n_(c.network) {}
  Topology build();

 private:
  void size_fabric();
  void add_vertices();
  int add_link(int u, int v, BytesPerSecond cap, Time lat);
  void add_cable(int lower, int upper, int plane, int layer);
  void wire_nvlink();
  void wire_nics();
  void wire_two_tier(int plane);
  void wire_three_tier(int plane);
  void check_ports() const;
  void apply_faults();
  using NameMap = std::map<std::string, int>;
  void apply_fault(int i, const FabricFault& f, const NameMap& cables, const NameMap& switches);
  void kill_link(int link);
  void kill_vertex(int v);
  void flatten();

  int vertex(int tier, int plane, int i) const { return tier_begin_[tier] + plane * t_.per_plane_[tier] + i; }
  int leaf_index(int gpu) const;

  const ClusterSpec& c_;
  const NetworkSpec& n_;
  Topology t_;
  Graph g_;
  int down_ = 0, up_ = 0, half_ = 0;  // leaf down/up ports; k/2
  int pods_ = 1, core_group_ = 0;     // 3-tier: pods per plane, cores per aggregation group
  int tier_begin_[3] = {0, 0, 0};
};

Topology Topology::build(const ClusterSpec& spec) {
  validate(spec);
  return TopologyBuilder(spec).build();
}

Topology TopologyBuilder::build() {
  size_fabric();
  add_vertices();
  wire_nvlink();
  wire_nics();
  for (int p = 0; p < t_.planes_; ++p) {
    if (n_.tiers == 2) wire_two_tier(p);
    else wire_three_tier(p);
  }
  check_ports();
  apply_faults();
  flatten();
  if (t_.faulty_) t_.check_reachability();
  return std::move(t_);
}

// Switch counts per plane (see the header: 2-tier spines from the leaves' up
// ports, 3-tier pods of k/2 leaves with k-d aggregation switches each and
// ceil(pods/2) cores per aggregation group).
void TopologyBuilder::size_fabric() {
  t_.gpus_ = c_.total_gpus();
  t_.nodes_ = c_.nodes;
  t_.gpus_per_node_ = c_.gpus_per_node;
  t_.planes_ = n_.planes;
  t_.tiers_ = n_.tiers;
  t_.kind_ = n_.topology;
  t_.lanes_ = n_.topology == TopologyKind::MultiPlaneFatTree ? n_.planes
              : n_.topology == TopologyKind::RailOptimized  ? c_.gpus_per_node
                                                            : 1;
  const int k = n_.switch_radix;
  down_ = leaf_down_ports(n_);
  up_ = k - down_;
  t_.up_ports_ = up_;
  half_ = k / 2;
  const int leaves = n_.topology == TopologyKind::RailOptimized
                         ? ceil_div(c_.nodes, down_) * c_.gpus_per_node
                         : ceil_div(t_.gpus_ / t_.planes_, down_);
  int* pp = t_.per_plane_;
  pp[0] = leaves;
  if (leaves == 1) {
    t_.top_tier_ = 0;
  } else if (n_.tiers == 2) {
    pp[1] = ceil_div(static_cast<long long>(leaves) * up_, k);
    t_.top_tier_ = 1;
  } else {
    pods_ = ceil_div(leaves, half_);
    pp[1] = pods_ * up_;
    core_group_ = pods_ > 1 ? ceil_div(pods_, 2) : 0;
    pp[2] = up_ * core_group_;
    t_.top_tier_ = pods_ > 1 ? 2 : 1;
  }
}

void TopologyBuilder::add_vertices() {
  const int gpus = t_.gpus_, nodes = t_.nodes_, planes = t_.planes_;
  tier_begin_[0] = gpus + nodes;
  tier_begin_[1] = tier_begin_[0] + planes * t_.per_plane_[0];
  tier_begin_[2] = tier_begin_[1] + planes * t_.per_plane_[1];
  const int vertices = tier_begin_[2] + planes * t_.per_plane_[2];
  g_ = Graph(static_cast<std::size_t>(vertices));
  t_.kinds_.assign(static_cast<std::size_t>(vertices), VertexKind::Gpu);
  t_.names_.resize(static_cast<std::size_t>(vertices));
  t_.tier_.assign(static_cast<std::size_t>(vertices), -1);
  t_.plane_.assign(static_cast<std::size_t>(vertices), -1);
  t_.group_.assign(static_cast<std::size_t>(vertices), -1);
  t_.vertex_failed_.assign(static_cast<std::size_t>(vertices), 0);
  for (int v = 0; v < gpus; ++v) t_.names_[static_cast<std::size_t>(v)] = fmt::format("gpu{}", v);
  for (int v = gpus; v < tier_begin_[0]; ++v) {
    t_.kinds_[static_cast<std::size_t>(v)] = VertexKind::NvSwitch;
    t_.names_[static_cast<std::size_t>(v)] = fmt::format("nvsw{}", v - gpus);
  }
  const VertexKind upper = n_.tiers == 2 ? VertexKind::Spine : VertexKind::Aggregation;
  const VertexKind kinds[3] = {VertexKind::Leaf, upper, VertexKind::Core};
  const char* labels[3] = {"leaf", n_.tiers == 2 ? "spine" : "agg", "core"};
  for (int tier = 0; tier < 3; ++tier)
    for (int p = 0; p < planes; ++p)
      for (int i = 0; i < t_.per_plane_[tier]; ++i) {
        const auto v = static_cast<std::size_t>(vertex(tier, p, i));
        t_.kinds_[v] = kinds[tier];
        t_.names_[v] = fmt::format("p{}.{}{}", p, labels[tier], i);
        t_.tier_[v] = static_cast<signed char>(tier);
        t_.plane_[v] = p;
        if (tier == 0) t_.group_[v] = n_.tiers == 3 ? i / half_ : 0;
        if (tier == 1) t_.group_[v] = n_.tiers == 3 ? i / up_ : 0;
      }
  for (std::size_t v = 0; v < t_.kinds_.size(); ++v) g_[v].kind = t_.kinds_[v];
}

int TopologyBuilder::add_link(int u, int v, BytesPerSecond cap, Time lat) {
  const int idx = static_cast<int>(t_.links_.size());
  boost::add_edge(static_cast<std::size_t>(u), static_cast<std::size_t>(v), EdgeProps{idx, cap.value(), lat.count_ps()},
                  g_);
  t_.links_.push_back(
      sim::Link{fmt::format("{}>{}", t_.names_[static_cast<std::size_t>(u)], t_.names_[static_cast<std::size_t>(v)]),
                cap, lat});
  t_.tail_.push_back(u);
  t_.head_.push_back(v);
  t_.link_alive_.push_back(1);
  return idx;
}

// A switch cable: the switch entered pays the switch latency either way.
void TopologyBuilder::add_cable(int lower, int upper, int plane, int layer) {
  Cable cb{lower, upper, 0, 0, plane, layer};
  cb.up = add_link(lower, upper, n_.nic_bandwidth, n_.switch_latency);
  cb.down = add_link(upper, lower, n_.nic_bandwidth, n_.switch_latency);
  t_.cables_.push_back(cb);
}

// NVLink: GPU <-> its node's NVSwitch; half the measured GPU-to-GPU latency
// on each side (the odd picosecond goes to the down edge).
void TopologyBuilder::wire_nvlink() {
  const Time up_lat = Time::ps(c_.gpu.nvlink_latency.count_ps() / 2);
  const Time down_lat = c_.gpu.nvlink_latency - up_lat;
  t_.nvlink_up_.resize(static_cast<std::size_t>(t_.gpus_));
  t_.nvlink_down_.resize(static_cast<std::size_t>(t_.gpus_));
  for (int gpu = 0; gpu < t_.gpus_; ++gpu) {
    const int sw = t_.gpus_ + gpu / c_.gpus_per_node;
    t_.nvlink_up_[static_cast<std::size_t>(gpu)] = add_link(gpu, sw, c_.gpu.nvlink_unidir, up_lat);
    t_.nvlink_down_[static_cast<std::size_t>(gpu)] = add_link(sw, gpu, c_.gpu.nvlink_unidir, down_lat);
  }
}

// Leaf (within its plane) of a GPU's NIC: NICs fill leaves in endpoint order,
// or (rail-optimized) leaf (node group, rail) with d nodes per group.
int TopologyBuilder::leaf_index(int gpu) const {
  const int node = gpu / c_.gpus_per_node, local = gpu % c_.gpus_per_node;
  if (n_.topology == TopologyKind::RailOptimized) return (node / down_) * c_.gpus_per_node + local;
  return static_cast<int>(t_.plane_index(gpu) / down_);
}

// NICs: GPU <-> leaf of its plane; cable g is GPU g's NIC. The NIC's latency
// is paid on both ends; the leaf's switching on the way in.
void TopologyBuilder::wire_nics() {
  t_.nic_up_.resize(static_cast<std::size_t>(t_.gpus_));
  t_.nic_down_.resize(static_cast<std::size_t>(t_.gpus_));
  for (int gpu = 0; gpu < t_.gpus_; ++gpu) {
    const int plane = (gpu % c_.gpus_per_node) % t_.planes_;
    const int leaf = vertex(0, plane, leaf_index(gpu));
    Cable cb{gpu, leaf, 0, 0, plane, 0};
    cb.up = add_link(gpu, leaf, n_.nic_bandwidth, n_.nic_latency + n_.switch_latency);
    cb.down = add_link(leaf, gpu, n_.nic_bandwidth, n_.nic_latency);
    t_.nic_up_[static_cast<std::size_t>(gpu)] = cb.up;
    t_.nic_down_[static_cast<std::size_t>(gpu)] = cb.down;
    t_.cables_.push_back(cb);
  }
}

// Leaf <-> spine: the up ports of the plane's leaves, taken leaf by leaf, are
// dealt round-robin over its spines. Each spine then gets at most
// ceil(L*u / S) <= radix cables, and each leaf (u >= S) reaches every spine.
void TopologyBuilder::wire_two_tier(int p) {
  const int spines = t_.per_plane_[1];
  if (spines == 0) return;
  for (int c = 0; c < t_.per_plane_[0] * up_; ++c) add_cable(vertex(0, p, c / up_), vertex(1, p, c % spines), p, 1);
}

// Leaf <-> aggregation: one cable from each leaf to each of its pod's u
// aggregation switches. Aggregation j of every pod <-> cores of group j: the
// group's pods x k/2 up ports dealt round-robin over its ceil(pods/2) cores,
// so each core gets at most k cables and one per pod when pods is even.
void TopologyBuilder::wire_three_tier(int p) {
  if (t_.per_plane_[1] == 0) return;
  for (int l = 0; l < t_.per_plane_[0]; ++l)
    for (int j = 0; j < up_; ++j) add_cable(vertex(0, p, l), vertex(1, p, (l / half_) * up_ + j), p, 1);
  if (core_group_ == 0) return;
  for (int j = 0; j < up_; ++j)
    for (int c = 0; c < pods_ * half_; ++c)
      add_cable(vertex(1, p, (c / half_) * up_ + j), vertex(2, p, j * core_group_ + c % core_group_), p, 2);
}

// Invariants on the wired graph (cheap; kept on in release builds): no
// switch uses more ports than it has, every NVSwitch serves its node, and
// every GPU has exactly its NVLink and its NIC.
void TopologyBuilder::check_ports() const {
  if (boost::num_edges(g_) != t_.links_.size()) throw std::logic_error("Topology::build: edge count mismatch");
  for (std::size_t v = 0; v < t_.kinds_.size(); ++v) {
    const auto out = boost::out_degree(v, g_), in = boost::in_degree(v, g_);
    bool ok = out == in;
    switch (t_.kinds_[v]) {
      case VertexKind::Gpu: ok = ok && out == 2; break;
      case VertexKind::NvSwitch: ok = ok && out == static_cast<std::size_t>(c_.gpus_per_node); break;
      default: ok = ok && out <= static_cast<std::size_t>(n_.switch_radix); break;
    }
    if (!ok)
      throw std::logic_error(
          fmt::format("Topology::build: port count of {} is wrong ({} out, {} in)", t_.names_[v], out, in));
  }
}

void TopologyBuilder::kill_link(int link) {
  if (!t_.link_alive_[static_cast<std::size_t>(link)]) return;
  const auto u = static_cast<std::size_t>(t_.tail_[static_cast<std::size_t>(link)]);
  auto [e, end] = boost::out_edges(u, g_);
  for (; e != end; ++e)
    if (g_[*e].index == link) break;
  boost::remove_edge(*e, g_);
  t_.link_alive_[static_cast<std::size_t>(link)] = 0;
}

void TopologyBuilder::kill_vertex(int v) {
  const auto sv = static_cast<std::size_t>(v);
  t_.vertex_failed_[sv] = 1;
  const auto dead = [&](int link) { t_.link_alive_[static_cast<std::size_t>(link)] = 0; };
  for (auto [e, end] = boost::out_edges(sv, g_); e != end; ++e) dead(g_[*e].index);
  for (auto [e, end] = boost::in_edges(sv, g_); e != end; ++e) dead(g_[*e].index);
  boost::clear_vertex(sv, g_);
}

void TopologyBuilder::apply_faults() {
  const auto& faults = n_.faults;
  t_.faulty_ = !faults.empty();
  NameMap cables, switches;  // name -> cable / vertex, only when a fault names one
  const bool named = std::any_of(faults.begin(), faults.end(), [](const FabricFault& f) {
    return f.target == FaultTarget::Link || f.target == FaultTarget::Switch;
  });
  if (named) {
    const std::vector<std::string> names = t_.cable_names();
    for (std::size_t i = 0; i < names.size(); ++i) cables.emplace(names[i], static_cast<int>(i));
    for (int v = tier_begin_[0]; v < t_.vertex_count(); ++v) switches.emplace(t_.names_[static_cast<std::size_t>(v)], v);
  }
  for (std::size_t i = 0; i < faults.size(); ++i) apply_fault(static_cast<int>(i), faults[i], cables, switches);
}

void TopologyBuilder::apply_fault(int i, const FabricFault& f, const NameMap& cables, const NameMap& switches) {
  const char* key = to_string(f.target);
  if (f.bandwidth_factor < 0.0 || f.bandwidth_factor > 1.0)
    throw FabricFaultError(i, "bandwidth_factor", fmt::format("{}", f.bandwidth_factor), "a factor in (0, 1]");
  const bool is_switch_name = f.target == FaultTarget::Switch;
  int cable = -1;
  if (f.target == FaultTarget::Link || is_switch_name) {
    const NameMap& names = is_switch_name ? switches : cables;
    const auto it = names.find(f.name);
    if (it == names.end())
      throw FabricFaultError(i, key, fmt::format("\"{}\"", f.name),
                             is_switch_name ? "a switch name as `trainsim fabric --list` prints it, e.g. \"p0.leaf0\""
                                            : "a cable name as `trainsim fabric --list` prints it, e.g. "
                                              "\"gpu0-p0.leaf0\" or \"p0.leaf0-p0.spine0#1\" (#i: i-th parallel cable)");
    if (is_switch_name) {
      kill_vertex(it->second);
      return;
    }
    cable = it->second;
  } else if (f.target == FaultTarget::Nic) {
    if (f.index < 0 || f.index >= t_.gpus_)
      throw FabricFaultError(i, key, std::to_string(f.index), fmt::format("a GPU id in [0, {})", t_.gpus_));
    cable = f.index;
  } else {
    if (f.index < 0 || f.index >= t_.planes_)
      throw FabricFaultError(i, key, std::to_string(f.index), fmt::format("a plane in [0, {})", t_.planes_));
    for (int tier = 0; tier < 3; ++tier)
      for (int s = 0; s < t_.per_plane_[tier]; ++s) kill_vertex(vertex(tier, f.index, s));
    return;
  }
  const Cable& cb = t_.cables_[static_cast<std::size_t>(cable)];
  if (f.bandwidth_factor > 0.0) {
    for (int l : {cb.up, cb.down}) {
      BytesPerSecond& cap = t_.links_[static_cast<std::size_t>(l)].capacity;
      cap = BytesPerSecond(cap.value() * f.bandwidth_factor);
    }
  } else {
    kill_link(cb.up);
    kill_link(cb.down);
  }
}

// The surviving graph's out-edges, per vertex, sorted by (head, link).
void TopologyBuilder::flatten() {
  const std::size_t vertices = t_.kinds_.size();
  t_.adj_begin_.assign(vertices + 1, 0);
  t_.adj_.reserve(boost::num_edges(g_));
  std::vector<std::pair<int, int>> out;
  for (std::size_t v = 0; v < vertices; ++v) {
    out.clear();
    for (auto [e, end] = boost::out_edges(v, g_); e != end; ++e)
      out.emplace_back(static_cast<int>(boost::target(*e, g_)), g_[*e].index);
    std::sort(out.begin(), out.end());
    for (const auto& [head, link] : out) t_.adj_.push_back(link);
    t_.adj_begin_[v + 1] = static_cast<int>(t_.adj_.size());
  }
}

// ---- accessors ----

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

bool Topology::link_alive(sim::LinkIndex link) const {
  if (link < 0 || link >= static_cast<int>(link_alive_.size())) throw std::out_of_range("Topology::link_alive");
  return link_alive_[static_cast<std::size_t>(link)] != 0;
}

VertexKind Topology::vertex_kind(int vertex) const {
  if (vertex < 0 || vertex >= vertex_count()) throw std::out_of_range("Topology::vertex_kind");
  return kinds_[static_cast<std::size_t>(vertex)];
}

const std::string& Topology::vertex_name(int vertex) const {
  if (vertex < 0 || vertex >= vertex_count()) throw std::out_of_range("Topology::vertex_name");
  return names_[static_cast<std::size_t>(vertex)];
}

int Topology::vertex_tier(int vertex) const {
  if (vertex < 0 || vertex >= vertex_count()) throw std::out_of_range("Topology::vertex_tier");
  return tier_[static_cast<std::size_t>(vertex)];
}

// GPUs and NVSwitches never fail; a switch fails by a switch or plane fault.
bool Topology::vertex_alive(int vertex) const {
  if (vertex < 0 || vertex >= vertex_count()) throw std::out_of_range("Topology::vertex_alive");
  return vertex_failed_[static_cast<std::size_t>(vertex)] == 0;
}

int Topology::switches_per_plane(int tier) const {
  if (tier < 0 || tier > 2) throw std::out_of_range("Topology::switches_per_plane");
  return per_plane_[tier];
}

std::vector<std::string> Topology::cable_names() const {
  std::map<std::pair<int, int>, int> parallel, seen;
  for (const Cable& c : cables_) ++parallel[{c.lower, c.upper}];
  std::vector<std::string> names;
  names.reserve(cables_.size());
  for (const Cable& c : cables_) {
    const std::pair<int, int> key{c.lower, c.upper};
    std::string name = names_[static_cast<std::size_t>(c.lower)] + "-" + names_[static_cast<std::size_t>(c.upper)];
    const int i = seen[key]++;
    if (parallel[key] > 1) name += fmt::format("#{}", i);
    names.push_back(std::move(name));
  }
  return names;
}

bool Topology::cable_alive(int cable) const {
  if (cable < 0 || cable >= cable_count()) throw std::out_of_range("Topology::cable_alive");
  return link_alive_[static_cast<std::size_t>(cables_[static_cast<std::size_t>(cable)].up)] != 0;
}

BytesPerSecond Topology::cable_capacity(int cable) const {
  if (!cable_alive(cable)) return BytesPerSecond(0.0);
  return links_[static_cast<std::size_t>(cables_[static_cast<std::size_t>(cable)].up)].capacity;
}

BytesPerSecond Topology::bisection_bandwidth() const {
  std::vector<double> sum(static_cast<std::size_t>(planes_) * 3, 0.0);
  std::vector<char> has(sum.size(), 0);
  for (int c = 0; c < cable_count(); ++c) {
    const Cable& cb = cables_[static_cast<std::size_t>(c)];
    const auto i = static_cast<std::size_t>(cb.plane * 3 + cb.layer);
    has[i] = 1;
    sum[i] += cable_capacity(c).value();
  }
  double total = 0.0;
  for (int p = 0; p < planes_; ++p) {
    double best = -1.0;
    for (int layer = 0; layer < 3; ++layer) {
      const auto i = static_cast<std::size_t>(p * 3 + layer);
      if (has[i] && (best < 0.0 || sum[i] / 2.0 < best)) best = sum[i] / 2.0;
    }
    total += std::max(best, 0.0);
  }
  return BytesPerSecond(total);
}

Time Topology::path_latency(int src, int dst) const {
  Time t = Time::zero();
  for (sim::LinkIndex l : route(src, dst)) t += links_[static_cast<std::size_t>(l)].latency;
  return t;
}

}  // namespace trainsim::hw
