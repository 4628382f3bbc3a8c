#include "trainsim/hardware/cluster.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <cmath>

#include "trainsim/common/json_reader.hpp"
#include "trainsim/hardware/topology.hpp"

namespace trainsim::hw {

const char* to_string(TopologyKind k) {
  switch (k) {
    case TopologyKind::MultiPlaneFatTree: return "multi-plane-fat-tree";
    case TopologyKind::FatTree: return "fat-tree";
    case TopologyKind::RailOptimized: return "rail-optimized";
  }
  return "?";
}

const char* to_string(FaultTarget t) {
  switch (t) {
    case FaultTarget::Link: return "link";
    case FaultTarget::Switch: return "switch";
    case FaultTarget::Nic: return "nic";
    case FaultTarget::Plane: return "plane";
  }
  return "?";
}

long long max_endpoints_two_tier(int switch_radix) {
  const long long k = switch_radix;
  return k * k / 2;
}

int leaf_down_ports(const NetworkSpec& n) {
  // ceil(k * o / (o + 1)); the 1e-9 keeps exact ratios (o = 1: k/2) exact.
  const double down = static_cast<double>(n.switch_radix) * n.oversubscription / (n.oversubscription + 1.0);
  return static_cast<int>(std::ceil(down - 1e-9));
}

long long max_leaves_per_plane(const NetworkSpec& n) {
  const long long k = n.switch_radix;
  return n.tiers == 3 ? k * (k / 2) : k;
}

long long max_nodes(const ClusterSpec& c) {
  const long long down = leaf_down_ports(c.network), leaves = max_leaves_per_plane(c.network);
  if (c.network.topology == TopologyKind::RailOptimized) return leaves / c.gpus_per_node * down;
  return leaves * down / (c.gpus_per_node / c.network.planes);
}

namespace {

TopologyKind parse_topology_kind(JsonObject& net) {
  const std::string topo = net.choice("topology", {"multi-plane-fat-tree", "fat-tree", "rail-optimized"});
  if (topo == "fat-tree") return TopologyKind::FatTree;
  if (topo == "rail-optimized") return TopologyKind::RailOptimized;
  return TopologyKind::MultiPlaneFatTree;
}

int parse_planes(JsonObject& net, TopologyKind kind, int gpus_per_node) {
  if (kind == TopologyKind::MultiPlaneFatTree) {
    const int planes = static_cast<int>(net.integer_or("planes", gpus_per_node, 1, 1024));
    if (gpus_per_node % planes != 0)
      net.fail("planes", fmt::format("a divisor of gpus_per_node ({}): local rank r sits on plane r % planes",
                                     gpus_per_node));
    return planes;
  }
  const int planes = static_cast<int>(net.integer_or("planes", 1, 1, 1024));
  if (planes != 1)
    net.fail("planes", fmt::format("1 for a {} (use \"multi-plane-fat-tree\" for several planes)", to_string(kind)));
  return planes;
}

// One element of "faults": exactly one of link / switch / nic / plane, and
// bandwidth_factor only with link or nic.
FabricFault parse_fault(const Json& j, const std::string& file, const std::string& path, const ClusterSpec& c) {
  JsonObject f(j, file, path);
  FabricFault fault;
  int targets = 0;
  for (const char* key : {"link", "switch", "nic", "plane"}) targets += f.has(key) ? 1 : 0;
  if (targets == 0) f.finish();  // a misspelled key gets its "did you mean"
  if (targets != 1)
    throw InputError(file, path, describe_json(j),
                     "an object with exactly one of \"link\", \"switch\", \"nic\", \"plane\"");
  if (f.has("link")) {
    fault.target = FaultTarget::Link;
    fault.name = f.string("link");
  } else if (f.has("switch")) {
    fault.target = FaultTarget::Switch;
    fault.name = f.string("switch");
  } else if (f.has("nic")) {
    fault.target = FaultTarget::Nic;
    fault.index = static_cast<int>(f.integer("nic", 0, c.total_gpus() - 1));
  } else {
    fault.target = FaultTarget::Plane;
    fault.index = static_cast<int>(f.integer("plane", 0, c.network.planes - 1));
  }
  if (f.has("bandwidth_factor")) {
    if (fault.target != FaultTarget::Link && fault.target != FaultTarget::Nic)
      f.fail("bandwidth_factor", "no bandwidth_factor: only a link or a NIC can be degraded");
    fault.bandwidth_factor = f.number("bandwidth_factor", 0.0, 1.0);
    if (!(fault.bandwidth_factor > 0.0))
      f.fail("bandwidth_factor", "a factor in (0, 1] (leave it out to take the element down)");
  }
  f.finish();
  return fault;
}

std::vector<FabricFault> parse_faults(JsonObject& net, const ClusterSpec& c) {
  std::vector<FabricFault> faults;
  const Json* arr = net.raw_optional("faults");
  if (arr == nullptr) return faults;
  if (!arr->is_array())
    throw InputError(net.file(), net.child_path("faults"), describe_json(*arr), "an array of fault objects");
  for (std::size_t i = 0; i < arr->size(); ++i)
    faults.push_back(parse_fault((*arr)[i], net.file(), fmt::format("{}/{}", net.child_path("faults"), i), c));
  return faults;
}

// Everything but the faults, which need the node shape (parsed by the caller).
NetworkSpec parse_network(JsonObject& net, int gpus_per_node) {
  NetworkSpec n;
  n.topology = parse_topology_kind(net);
  n.planes = parse_planes(net, n.topology, gpus_per_node);
  n.tiers = static_cast<int>(net.integer("tiers", 1, 16));
  if (n.tiers != 2 && n.tiers != 3)
    net.fail("tiers", "2 (leaf/spine) or 3 (leaf/aggregation/core)");

  n.switch_radix = static_cast<int>(net.integer("switch_radix", 4, 4096));
  if (n.switch_radix % 2 != 0)
    net.fail("switch_radix", "an even integer >= 4 (half the ports go down, half up)");
  n.oversubscription = net.number_or("oversubscription", 1.0, 1.0, 1e3);
  if (leaf_down_ports(n) >= n.switch_radix)
    net.fail("oversubscription", fmt::format("a ratio that leaves a radix-{} leaf at least one up port (< {})",
                                             n.switch_radix, n.switch_radix - 1));

  n.nic_bandwidth = gbits_per_s(net.number("nic_Gbps", 1.0, 1e6));
  n.switch_latency = Time::us(net.number_or("switch_latency_us", kDefaultSwitchLatencyUs, 0.0, 1e4));
  n.nic_latency = Time::us(net.number_or("nic_latency_us", kDefaultNicLatencyUs, 0.0, 1e4));
  return n;
}

void check_size(JsonObject& cluster, const ClusterSpec& c) {
  const NetworkSpec& n = c.network;
  const long long limit = max_nodes(c);
  if (c.nodes <= limit) return;
  const std::string shape =
      n.topology == TopologyKind::RailOptimized
          ? fmt::format("each of the {} rails of a rail-optimized fabric needs its own leaves", c.gpus_per_node)
          : fmt::format("each node puts {} NIC(s) on each of the {} plane(s)", c.gpus_per_node / n.planes, n.planes);
  cluster.fail("nodes", fmt::format("at most {} nodes: a {}-tier fat-tree of radix {} holds at most {} leaves of {} "
                                    "down ports per plane ({} endpoints; 1:1 2-tier: radix^2/2) and {}",
                                    limit, n.tiers, n.switch_radix, max_leaves_per_plane(n), leaf_down_ports(n),
                                    max_leaves_per_plane(n) * leaf_down_ports(n), shape));
}

// Builds the fabric once so that fault names, and whether the faults leave
// every GPU reachable, are reported against the scenario file.
void check_faults(const JsonObject& net, const ClusterSpec& c) {
  if (c.network.faults.empty()) return;
  try {
    (void)Topology::build(c);
  } catch (const FabricFaultError& e) {
    const std::string base = net.child_path("faults");
    const std::string path = e.fault_index() < 0 ? base : fmt::format("{}/{}/{}", base, e.fault_index(), e.key());
    throw InputError(net.file(), path, e.value(), e.expected());
  }
}

}  // namespace

ClusterSpec parse_cluster(JsonObject& cluster) {
  ClusterSpec c;
  const Json& gpu = cluster.raw("gpu");
  if (gpu.is_string()) {
    c.gpu = gpu_preset(gpu.get<std::string>(), cluster.file(), cluster.child_path("gpu"));
  } else if (gpu.is_object()) {
    JsonObject g = cluster.object("gpu");
    c.gpu = parse_gpu(g);
  } else {
    cluster.fail("gpu", "a GPU preset name (string) or an inline GPU object");
  }

  c.nodes = static_cast<int>(cluster.integer("nodes", 1, 10'000'000));
  c.gpus_per_node = static_cast<int>(cluster.integer("gpus_per_node", 1, 1024));
  // total_gpus() is an int and GPU ids index vectors: bound the product
  // before anything multiplies it further (2^24 GPUs is 64x the largest
  // cluster built so far).
  constexpr long long kMaxGpus = 1LL << 24;
  if (static_cast<long long>(c.nodes) * c.gpus_per_node > kMaxGpus)
    cluster.fail("nodes", fmt::format("at most {} nodes of {} GPUs ({} GPUs in all)", kMaxGpus / c.gpus_per_node,
                                      c.gpus_per_node, kMaxGpus));
  c.nics_per_node = static_cast<int>(cluster.integer_or("nics_per_node", c.gpus_per_node, 1, 1024));
  if (c.nics_per_node != c.gpus_per_node)
    cluster.fail("nics_per_node",
                 fmt::format("{} (= gpus_per_node): one NIC per GPU is the only layout modelled", c.gpus_per_node));

  JsonObject net = cluster.object("network");
  c.network = parse_network(net, c.gpus_per_node);
  check_size(cluster, c);
  c.network.faults = parse_faults(net, c);
  net.finish();
  check_faults(net, c);
  cluster.finish();
  return c;
}

nlohmann::json to_json(const ClusterSpec& c) {
  Json j = Json::object();
  j["gpu"] = to_json(c.gpu);
  j["nodes"] = c.nodes;
  j["gpus_per_node"] = c.gpus_per_node;
  j["nics_per_node"] = c.nics_per_node;
  Json n = Json::object();
  n["topology"] = to_string(c.network.topology);
  n["planes"] = c.network.planes;
  n["tiers"] = c.network.tiers;
  n["switch_radix"] = c.network.switch_radix;
  n["nic_Gbps"] = c.network.nic_bandwidth.value() * 8.0 / 1e9;
  n["switch_latency_us"] = c.network.switch_latency.to_us();
  n["nic_latency_us"] = c.network.nic_latency.to_us();
  n["oversubscription"] = c.network.oversubscription;
  Json faults = Json::array();
  for (const FabricFault& f : c.network.faults) {
    Json o = Json::object();
    if (f.target == FaultTarget::Link || f.target == FaultTarget::Switch) o[to_string(f.target)] = f.name;
    else o[to_string(f.target)] = f.index;
    if (f.bandwidth_factor > 0.0) o["bandwidth_factor"] = f.bandwidth_factor;
    faults.push_back(o);
  }
  n["faults"] = faults;
  j["network"] = n;
  return j;
}

}  // namespace trainsim::hw
