// Fabric shapes (tiers, oversubscription, rails, planes), faults, and routes
// checked against a breadth-first search of the surviving Boost graph.
#include <doctest/doctest.h>

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/breadth_first_search.hpp>
#include <boost/graph/visitors.hpp>

#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "trainsim/hardware/cluster.hpp"
#include "trainsim/hardware/gpu.hpp"
#include "trainsim/hardware/topology.hpp"

using namespace trainsim;
using namespace trainsim::hw;

namespace {

ClusterSpec spec(int nodes, int gpn, TopologyKind kind, int planes, int tiers, int radix, double oversub = 1.0) {
  ClusterSpec c{.gpu = gpu_preset("H800"), .nodes = nodes, .gpus_per_node = gpn, .nics_per_node = gpn, .network = {}};
  c.network.topology = kind;
  c.network.planes = planes;
  c.network.tiers = tiers;
  c.network.switch_radix = radix;
  c.network.oversubscription = oversub;
  c.network.nic_bandwidth = gbits_per_s(400);
  return c;
}

using BfsGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::directedS>;

// The surviving graph, optionally switches only (GPUs and NVSwitches cut off).
BfsGraph surviving(const Topology& t, bool switches_only) {
  BfsGraph g(static_cast<std::size_t>(t.vertex_count()));
  for (int l = 0; l < static_cast<int>(t.links().size()); ++l) {
    const int u = t.link_tail(l), v = t.link_head(l);
    if (!t.link_alive(l)) continue;
    if (switches_only && (t.vertex_tier(u) < 0 || t.vertex_tier(v) < 0)) continue;
    boost::add_edge(static_cast<std::size_t>(u), static_cast<std::size_t>(v), g);
  }
  return g;
}

std::vector<int> bfs_distances(const BfsGraph& g, int from) {
  std::vector<int> d(boost::num_vertices(g), std::numeric_limits<int>::max());
  d[static_cast<std::size_t>(from)] = 0;
  boost::breadth_first_search(
      g, static_cast<std::size_t>(from),
      boost::visitor(boost::make_bfs_visitor(boost::record_distances(d.data(), boost::on_tree_edge()))));
  return d;
}

struct RouteChecks {
  int routes = 0, shortest_whole = 0;
};

// Every route: contiguous from src to dst over live links only; at most one
// NVLink hop pair at each end; its switch-to-switch part as long as the BFS
// distance between its two leaves in the surviving fabric; never shorter
// than the BFS distance in the whole surviving graph.
RouteChecks check_all_routes(const Topology& t) {
  const BfsGraph fabric = surviving(t, true), whole = surviving(t, false);
  std::map<int, std::vector<int>> leaf_dist;
  RouteChecks out;
  for (int s = 0; s < t.gpu_count(); ++s) {
    const std::vector<int> whole_dist = bfs_distances(whole, s);
    for (int d = 0; d < t.gpu_count(); ++d) {
      if (s == d) continue;
      const sim::Route r = t.route(s, d);
      CAPTURE(s);
      CAPTURE(d);
      REQUIRE(!r.empty());
      REQUIRE(t.link_tail(r.front()) == s);
      REQUIRE(t.link_head(r.back()) == d);
      int switch_links = 0, first_leaf = -1, last_leaf = -1;
      for (std::size_t i = 0; i < r.size(); ++i) {
        REQUIRE(t.link_alive(r[i]));
        if (i + 1 < r.size()) REQUIRE(t.link_head(r[i]) == t.link_tail(r[i + 1]));
        const int u = t.link_tail(r[i]), v = t.link_head(r[i]);
        REQUIRE(t.vertex_alive(v));
        if (t.vertex_tier(u) >= 0 && t.vertex_tier(v) >= 0) ++switch_links;
        if (t.vertex_kind(u) == VertexKind::Gpu && t.vertex_tier(v) == 0) first_leaf = v;
        if (t.vertex_tier(u) == 0 && t.vertex_kind(v) == VertexKind::Gpu) last_leaf = u;
      }
      CHECK(whole_dist[static_cast<std::size_t>(d)] <= static_cast<int>(r.size()));
      if (whole_dist[static_cast<std::size_t>(d)] == static_cast<int>(r.size())) ++out.shortest_whole;
      ++out.routes;
      if (t.node_of(s) == t.node_of(d)) {
        CHECK(r.size() == 2);
        continue;
      }
      REQUIRE(first_leaf >= 0);
      REQUIRE(last_leaf >= 0);
      auto it = leaf_dist.find(first_leaf);
      if (it == leaf_dist.end()) it = leaf_dist.emplace(first_leaf, bfs_distances(fabric, first_leaf)).first;
      CHECK(switch_links == it->second[static_cast<std::size_t>(last_leaf)]);
      // NIC up + switch links + NIC down, plus at most 2 NVLink hops each end.
      CHECK(r.size() >= static_cast<std::size_t>(switch_links) + 2);
      CHECK(r.size() <= static_cast<std::size_t>(switch_links) + 6);
    }
  }
  return out;
}

int cable_named(const Topology& t, const std::string& name) {
  const auto names = t.cable_names();
  for (std::size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<int>(i);
  return -1;
}

FabricFault down(FaultTarget target, std::string name) { return FabricFault{target, std::move(name), -1, 0.0}; }
FabricFault down(FaultTarget target, int index) { return FabricFault{target, "", index, 0.0}; }

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("acceptance: switch counts of ISCA 2025 Table 3 (FT2, MPFT, FT3)") {
  // FT2: 2048 endpoints / 32 down = 64 leaves + ceil(64 * 32 / 64) = 32 spines = 96.
  const Topology ft2 = Topology::build(spec(256, 8, TopologyKind::FatTree, 1, 2, 64));
  CHECK(ft2.gpu_count() == 2048);
  CHECK(ft2.switch_count() == 96);
  // MPFT: 8 planes x 96 = 768 switches, 8 x 64 leaves x 32 up cables = 16384 switch links.
  const Topology mpft = Topology::build(spec(2048, 8, TopologyKind::MultiPlaneFatTree, 8, 2, 64));
  CHECK(mpft.gpu_count() == 16384);
  CHECK(mpft.switch_count() == 768);
  CHECK(mpft.inter_switch_cable_count() == 16384);
  // FT3 at radix 64: k^3/4 = 65536 endpoints; 64 pods x (32 leaves + 32 aggregation)
  // + (k/2)^2 = 1024 cores = 5120 switches; 2048 x 32 + 2048 x 32 = 131072 switch links.
  const Topology ft3 = Topology::build(spec(8192, 8, TopologyKind::FatTree, 1, 3, 64));
  CHECK(ft3.gpu_count() == 65536);
  CHECK(ft3.switches_per_plane(0) == 2048);
  CHECK(ft3.switches_per_plane(1) == 2048);
  CHECK(ft3.switches_per_plane(2) == 1024);
  CHECK(ft3.switch_count() == 5120);
  CHECK(ft3.inter_switch_cable_count() == 131072);
  // Full bisection: half the NICs, 32768 x 50 GB/s.
  CHECK(ft3.bisection_bandwidth().value() == doctest::Approx(32768 * 50e9));
  // Cross-pod: NIC, leaf->agg->core->agg->leaf, NIC = 6 links; 2 nic + 5 switch latencies.
  CHECK(ft3.route(0, 65535).size() == 6);
  CHECK(ft3.path_latency(0, 65535) == Time::us(2 * 1.175 + 5 * 0.45));
  // One node more does not fit: 64 pods is the most a radix-64 core can join.
  CHECK_THROWS_AS(Topology::build(spec(8193, 8, TopologyKind::FatTree, 1, 3, 64)), std::invalid_argument);
}

TEST_CASE("oversubscription: leaf port split and bisection") {
  ClusterSpec c = spec(22, 8, TopologyKind::FatTree, 1, 2, 64, 2.0);
  // down = ceil(64 * 2 / 3) = ceil(42.67) = 43, up = 21.
  CHECK(leaf_down_ports(c.network) == 43);
  const Topology t = Topology::build(c);
  // 176 endpoints / 43 = 5 leaves (ceil); ceil(5 * 21 / 64) = 2 spines; 105 up cables.
  CHECK(t.leaves_per_plane() == 5);
  CHECK(t.spines_per_plane() == 2);
  CHECK(t.inter_switch_cable_count() == 105);
  // NIC layer 176 x 50 / 2 = 4400 GB/s, leaf up layer 105 x 50 / 2 = 2625 GB/s: the minimum.
  CHECK(t.bisection_bandwidth().value() == doctest::Approx(2625e9));
  // o = 1 keeps the old k/2 split; the largest o leaves one up port.
  c.network.oversubscription = 1.0;
  CHECK(leaf_down_ports(c.network) == 32);
  c.network.oversubscription = 63.0;
  CHECK(leaf_down_ports(c.network) == 63);
  c.network.oversubscription = 64.0;  // ceil(64 * 64 / 65) = 64: no up port
  CHECK_THROWS_AS(Topology::build(c), std::invalid_argument);
}

TEST_CASE("rail-optimized: same rail crosses one leaf, cross rail goes PXN over NVLink") {
  // Radix 32: 16 nodes per rail leaf; 64 nodes -> 4 node groups x 8 rails = 32 leaves,
  // ceil(32 * 16 / 32) = 16 spines.
  const Topology t = Topology::build(spec(64, 8, TopologyKind::RailOptimized, 1, 2, 32));
  CHECK(t.planes() == 1);
  CHECK(t.leaves_per_plane() == 32);
  CHECK(t.spines_per_plane() == 16);
  CHECK(t.leaf_of(8 * 5 + 3) == t.leaf_of(3));       // same group, rail 3
  CHECK(t.leaf_of(8 * 5 + 2) != t.leaf_of(3));       // rail 2
  CHECK(t.route(3, 8 * 5 + 3).size() == 2);          // NIC, NIC: one switch
  const sim::Route pxn = t.route(0, 8 * 5 + 3);      // rail 0 -> rail 3
  REQUIRE(pxn.size() == 4);                          // NVLink to GPU 3, then rail 3's leaf
  CHECK(t.link_head(pxn[1]) == 3);
  CHECK(t.route(3, 8 * 20 + 3).size() == 4);         // other node group: via a spine
  const RouteChecks rc = check_all_routes(Topology::build(spec(8, 4, TopologyKind::RailOptimized, 1, 2, 8)));
  CHECK(rc.routes == 32 * 31);
}

TEST_CASE("multi-plane with fewer planes than GPUs, and 72-GPU nodes") {
  // 4 planes of 8-GPU nodes: local ranks 1 and 5 share plane 1.
  const Topology t = Topology::build(spec(16, 8, TopologyKind::MultiPlaneFatTree, 4, 2, 16));
  CHECK(t.plane_of(5) == 1);
  CHECK(t.leaf_of(1) == t.leaf_of(5));
  // PXN proxy for 6 -> node 9 rank 1 is 5 (same group of 4 ranks, plane 1).
  const sim::Route r = t.route(6, 8 * 9 + 1);
  CHECK(t.link_head(r[1]) == 5);
  // NVL72 domains: 8 planes (9 NICs per node per plane) or a plain fat-tree.
  const Topology nvl = Topology::build(spec(4, 72, TopologyKind::MultiPlaneFatTree, 8, 2, 16));
  CHECK(nvl.planes() == 8);
  CHECK(nvl.leaves_per_plane() == 5);  // 36 endpoints per plane / 8 down ports
  check_all_routes(nvl);
  check_all_routes(Topology::build(spec(3, 72, TopologyKind::FatTree, 1, 2, 32)));
}

TEST_CASE("routes match a breadth-first search of the healthy graph") {
  // Healthy fat-trees and MPFT: every route is a shortest path of the whole graph.
  for (const ClusterSpec& c :
       {spec(12, 2, TopologyKind::FatTree, 1, 2, 8), spec(10, 4, TopologyKind::MultiPlaneFatTree, 2, 2, 8),
        spec(40, 2, TopologyKind::FatTree, 1, 3, 8), spec(30, 2, TopologyKind::MultiPlaneFatTree, 2, 3, 8, 3.0)}) {
    const Topology t = Topology::build(c);
    const RouteChecks rc = check_all_routes(t);
    CHECK(rc.routes == t.gpu_count() * (t.gpu_count() - 1));
    CHECK(rc.shortest_whole == rc.routes);
  }
  // Radix 8, 40 x 2 endpoints: 20 leaves, 5 pods of 4, 4 aggregation per pod, 3 cores per group.
  const Topology ft3 = Topology::build(spec(40, 2, TopologyKind::FatTree, 1, 3, 8));
  CHECK(ft3.switches_per_plane(1) == 20);
  CHECK(ft3.switches_per_plane(2) == 12);
}

TEST_CASE("routes avoid failed elements and match a BFS of the surviving graph") {
  SUBCASE("2-tier: a spine, a leaf up-cable, a NIC down; a NIC degraded") {
    ClusterSpec c = spec(12, 2, TopologyKind::FatTree, 1, 2, 8);
    const Topology healthy = Topology::build(c);
    // 6 leaves x 4 up cables dealt over 3 spines: leaf 0 has 2 cables to spine 0.
    CHECK(cable_named(healthy, "p0.leaf0-p0.spine0#1") >= 0);
    c.network.faults = {down(FaultTarget::Switch, "p0.spine2"), down(FaultTarget::Link, "p0.leaf1-p0.spine1#0"),
                        down(FaultTarget::Nic, 3), FabricFault{FaultTarget::Nic, "", 5, 0.5}};
    const Topology t = Topology::build(c);
    CHECK_FALSE(t.vertex_alive(t.vertex_count() - 1));  // p0.spine2
    CHECK_FALSE(t.cable_alive(3));
    CHECK(t.cable_capacity(5).value() == doctest::Approx(25e9));
    check_all_routes(t);
    // GPU 3 (node 1) sends through its node-mate 2's NIC and receives the same way.
    const sim::Route out = t.route(3, 20);
    CHECK(t.link_head(out[1]) == 2);
    const sim::Route in = t.route(20, 3);
    CHECK(t.link_tail(in[in.size() - 2]) == 2);
  }
  SUBCASE("multi-plane: a whole plane down moves its traffic to the other plane") {
    ClusterSpec c = spec(10, 4, TopologyKind::MultiPlaneFatTree, 2, 2, 8);
    c.network.faults = {down(FaultTarget::Plane, 1)};
    const Topology t = Topology::build(c);
    check_all_routes(t);
    // GPU 1 (plane 1) -> GPU 13 (node 3, plane 1): PXN to GPU 0 out, in via GPU 14
    // (the next node-mate of 13 on plane 0).
    const sim::Route r = t.route(1, 13);
    CHECK(t.link_head(r[1]) == 0);
    CHECK(t.plane_of(t.link_tail(r[r.size() - 2])) == 0);
    CHECK(t.bisection_bandwidth().value() == doctest::Approx(20 * 50e9 / 2));  // plane 0 only
  }
  SUBCASE("3-tier: a core, an aggregation switch and an aggregation-core cable down") {
    ClusterSpec c = spec(40, 2, TopologyKind::FatTree, 1, 3, 8);
    c.network.faults = {down(FaultTarget::Switch, "p0.core0"), down(FaultTarget::Switch, "p0.agg5"),
                        down(FaultTarget::Link, "p0.agg4-p0.core1#0"),
                        FabricFault{FaultTarget::Link, "p0.leaf0-p0.agg1", -1, 0.5}};
    const Topology t = Topology::build(c);
    check_all_routes(t);
  }
}

TEST_CASE("faults the fabric cannot apply or that disconnect it") {
  auto fault_error = [](const ClusterSpec& c) {
    try {
      (void)Topology::build(c);
    } catch (const FabricFaultError& e) {
      return e;
    }
    FAIL("no FabricFaultError");
    return FabricFaultError(-2, "", "", "");
  };
  ClusterSpec c = spec(4, 1, TopologyKind::FatTree, 1, 2, 4);  // 2 leaves, 1 spine, 2 cables each
  c.network.faults = {down(FaultTarget::Link, "p0.leaf0-p0.spine0")};  // parallel cables need #i
  FabricFaultError e = fault_error(c);
  CHECK(e.fault_index() == 0);
  CHECK(e.key() == "link");
  c.network.faults = {down(FaultTarget::Nic, 0), down(FaultTarget::Switch, "p0.spine9")};
  e = fault_error(c);
  CHECK(e.fault_index() == 1);
  CHECK(e.key() == "switch");
  c.network.faults = {down(FaultTarget::Nic, 4)};
  CHECK(fault_error(c).key() == "nic");
  c.network.faults = {down(FaultTarget::Plane, 1)};
  CHECK(fault_error(c).key() == "plane");
  // Node 0's only NIC down: unreachable.
  c.network.faults = {down(FaultTarget::Nic, 0)};
  e = fault_error(c);
  CHECK(e.fault_index() == -1);
  CHECK(e.value().find("node 0") != std::string::npos);
  // Both of leaf 0's up cables down: leaf 0 cut off from leaf 1.
  c.network.faults = {down(FaultTarget::Link, "p0.leaf0-p0.spine0#0"), down(FaultTarget::Link, "p0.leaf0-p0.spine0#1")};
  e = fault_error(c);
  CHECK(e.fault_index() == -1);
  CHECK(e.value().find("p0.leaf0 no surviving up-link") != std::string::npos);
  // Failing the leaf itself takes its NICs (nodes 0 and 1) out: also unreachable.
  c.network.faults = {down(FaultTarget::Switch, "p0.leaf0")};
  CHECK(fault_error(c).fault_index() == -1);
  // One cable of the pair is fine.
  c.network.faults = {down(FaultTarget::Link, "p0.leaf0-p0.spine0#0")};
  check_all_routes(Topology::build(c));
}
}
