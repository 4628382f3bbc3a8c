#include "trainsim/hardware/cluster.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "trainsim/common/json_reader.hpp"

namespace trainsim::hw {

const char* to_string(TopologyKind k) {
  switch (k) {
    case TopologyKind::MultiPlaneFatTree: return "multi-plane-fat-tree";
    case TopologyKind::FatTree: return "fat-tree";
  }
  return "?";
}

long long max_endpoints_two_tier(int switch_radix) {
  const long long k = switch_radix;
  return k * k / 2;
}

namespace {

NetworkSpec parse_network(JsonObject& net, int gpus_per_node) {
  NetworkSpec n;
  const std::string topo = net.choice("topology", {"multi-plane-fat-tree", "fat-tree"});
  n.topology = topo == "fat-tree" ? TopologyKind::FatTree : TopologyKind::MultiPlaneFatTree;

  if (n.topology == TopologyKind::MultiPlaneFatTree) {
    n.planes = static_cast<int>(net.integer_or("planes", gpus_per_node, 1, 1024));
    if (n.planes != gpus_per_node)
      net.fail("planes", fmt::format("{} (= gpus_per_node): in a multi-plane fat-tree each GPU-NIC pair "
                                     "sits on its own plane",
                                     gpus_per_node));
  } else {
    n.planes = static_cast<int>(net.integer_or("planes", 1, 1, 1024));
    if (n.planes != 1)
      net.fail("planes", "1 for a plain fat-tree (use \"multi-plane-fat-tree\" for several planes)");
  }

  n.tiers = static_cast<int>(net.integer("tiers", 1, 16));
  if (n.tiers == 3)
    net.fail("tiers", "2; 3-tier fat-trees are not yet supported");
  if (n.tiers != 2) net.fail("tiers", "2 (only 2-tier leaf/spine fat-trees are supported)");

  n.switch_radix = static_cast<int>(net.integer("switch_radix", 4, 4096));
  if (n.switch_radix % 2 != 0)
    net.fail("switch_radix", "an even integer >= 4 (half the ports go down, half up)");

  n.nic_bandwidth = gbits_per_s(net.number("nic_Gbps", 1.0, 1e6));
  n.switch_latency = Time::us(net.number_or("switch_latency_us", kDefaultSwitchLatencyUs, 0.0, 1e4));
  n.nic_latency = Time::us(net.number_or("nic_latency_us", kDefaultNicLatencyUs, 0.0, 1e4));
  net.finish();
  return n;
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
  c.nics_per_node = static_cast<int>(cluster.integer_or("nics_per_node", c.gpus_per_node, 1, 1024));
  if (c.nics_per_node != c.gpus_per_node)
    cluster.fail("nics_per_node",
                 fmt::format("{} (= gpus_per_node): one NIC per GPU is the only layout modelled", c.gpus_per_node));

  JsonObject net = cluster.object("network");
  c.network = parse_network(net, c.gpus_per_node);

  const long long per_node_per_plane = c.gpus_per_node / c.network.planes;
  const long long max_ep = max_endpoints_two_tier(c.network.switch_radix);
  const long long endpoints = static_cast<long long>(c.nodes) * per_node_per_plane;
  if (endpoints > max_ep)
    cluster.fail("nodes", fmt::format("at most {} nodes: a 2-tier fat-tree of radix {} connects {}^2/2 = {} "
                                      "endpoints per plane and each node puts {} NIC(s) on each of the {} "
                                      "plane(s)",
                                      max_ep / per_node_per_plane, c.network.switch_radix, c.network.switch_radix,
                                      max_ep, per_node_per_plane, c.network.planes));
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
  j["network"] = n;
  return j;
}

}  // namespace trainsim::hw
