#include <doctest/doctest.h>

#include <map>
#include <set>
#include <stdexcept>
#include <vector>

#include "trainsim/hardware/cluster.hpp"
#include "trainsim/hardware/gpu.hpp"
#include "trainsim/hardware/topology.hpp"

using namespace trainsim;
using namespace trainsim::hw;

namespace {

ClusterSpec cluster(int nodes, int gpus_per_node, TopologyKind kind, int radix) {
  return ClusterSpec{
      .gpu = gpu_preset("H800"),
      .nodes = nodes,
      .gpus_per_node = gpus_per_node,
      .nics_per_node = gpus_per_node,
      .network = {.topology = kind,
                  .planes = kind == TopologyKind::MultiPlaneFatTree ? gpus_per_node : 1,
                  .tiers = 2,
                  .switch_radix = radix,
                  .nic_bandwidth = gbits_per_s(400)},
  };
}

// DeepSeek-V3's deployed cluster: 256 nodes x 8 H800, 8-plane MPFT, 64-port switches.
ClusterSpec deepseek() { return cluster(256, 8, TopologyKind::MultiPlaneFatTree, 64); }

// Each link's head is the next link's tail; the route starts at src and ends at dst.
void check_contiguous(const Topology& t, int src, int dst) {
  sim::Route r = t.route(src, dst);
  CAPTURE(src);
  CAPTURE(dst);
  REQUIRE_FALSE(r.empty());
  CHECK(t.link_tail(r.front()) == src);
  CHECK(t.link_head(r.back()) == dst);
  for (std::size_t i = 0; i + 1 < r.size(); ++i) CHECK(t.link_head(r[i]) == t.link_tail(r[i + 1]));
  // Intermediate vertices are switches or (PXN) a GPU of the source node.
  for (std::size_t i = 0; i + 1 < r.size(); ++i) {
    int v = t.link_head(r[i]);
    if (t.vertex_kind(v) == VertexKind::Gpu) CHECK(t.node_of(v) == t.node_of(src));
  }
}

std::map<VertexKind, int> kinds_along(const Topology& t, const sim::Route& r) {
  std::map<VertexKind, int> m;
  for (auto l : r) ++m[t.vertex_kind(t.link_head(l))];
  return m;
}

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("full-size MPFT matches DeepSeek's cost table") {
  // ISCA 2025 Table 3: MPFT 16384 endpoints, 768 switches, 16384 (inter-switch) links.
  // Per plane: 2048 endpoints / 32 down ports = 64 leaves; ceil(64 * 32 / 64) = 32 spines;
  // 8 planes x 96 = 768. Leaf up links: 8 x 64 x 32 = 16384.
  ClusterSpec c = cluster(2048, 8, TopologyKind::MultiPlaneFatTree, 64);
  Topology t = Topology::build(c);
  CHECK(t.gpu_count() == 16384);
  CHECK(t.leaves_per_plane() == 64);
  CHECK(t.spines_per_plane() == 32);
  CHECK(t.switch_count() == 768);
  CHECK(t.inter_switch_cable_count() == 16384);
  CHECK(t.cable_count() == 16384 + 16384);
  // Links: 2 NVLink + 2 NIC edges per GPU, 2 per leaf-spine cable.
  CHECK(t.links().size() == 4u * 16384 + 2u * 16384);
  check_contiguous(t, 0, 16383);
  check_contiguous(t, 5, 16384 - 8);
}

TEST_CASE("2048-endpoint single-plane FT2 matches the cost table") {
  // ISCA 2025 Table 3: FT2 2048 endpoints, 96 switches, 2048 links.
  Topology t = Topology::build(cluster(256, 8, TopologyKind::FatTree, 64));
  CHECK(t.planes() == 1);
  CHECK(t.switch_count() == 96);
  CHECK(t.leaf_count() == 64);
  CHECK(t.spine_count() == 32);
  CHECK(t.inter_switch_cable_count() == 2048);
  // Plain fat-tree: every GPU has its own NIC into the one plane, so a
  // cross-node route between different local ranks never uses NVLink.
  sim::Route r = t.route(0, 8 * 100 + 3);
  CHECK(kinds_along(t, r).count(VertexKind::NvSwitch) == 0);
  CHECK(r.size() == 4);
  check_contiguous(t, 0, 8 * 100 + 3);
  // GPUs 0..31 (nodes 0..3) fill leaf 0's 32 down ports: node 0 -> node 3 stays on the leaf.
  CHECK(t.node_of(31) == 3);
  CHECK(t.leaf_of(31) == t.leaf_of(0));
  CHECK(t.route(0, 31).size() == 2);
  CHECK(t.leaf_of(32) != t.leaf_of(0));
}

TEST_CASE("DeepSeek-V3 cluster: routes, hop counts and latencies") {
  Topology t = Topology::build(deepseek());
  const ClusterSpec c = deepseek();
  // Per plane: 256 endpoints / 32 = 8 leaves, ceil(8 * 32 / 64) = 4 spines.
  CHECK(t.leaves_per_plane() == 8);
  CHECK(t.spines_per_plane() == 4);
  CHECK(t.switch_count() == 8 * 12);
  CHECK(t.node_of(8 * 40 + 3) == 40);
  CHECK(t.local_rank(8 * 40 + 3) == 3);
  CHECK(t.plane_of(8 * 40 + 3) == 3);

  SUBCASE("within a node: GPU -> NVSwitch -> GPU, measured NVLink latency") {
    sim::Route r = t.route(0, 5);
    REQUIRE(r.size() == 2);
    CHECK(t.vertex_kind(t.link_head(r[0])) == VertexKind::NvSwitch);
    CHECK(t.links()[static_cast<std::size_t>(r[0])].capacity.value() == doctest::Approx(200e9));
    CHECK(t.path_latency(0, 5) == Time::us(3.33));
    check_contiguous(t, 0, 5);
  }
  SUBCASE("same plane, same leaf: 2 links, 2 NIC + 1 switch = 2.8 us") {
    // Nodes 0..31 put their local-rank-0 NIC on plane 0, leaf 0.
    int dst = 8 * 31;
    CHECK(t.leaf_of(0) == t.leaf_of(dst));
    sim::Route r = t.route(0, dst);
    REQUIRE(r.size() == 2);
    CHECK(t.vertex_kind(t.link_head(r[0])) == VertexKind::Leaf);
    CHECK(t.links()[static_cast<std::size_t>(r[0])].capacity.value() == doctest::Approx(50e9));
    CHECK(t.path_latency(0, dst) == Time::us(2.8));
    check_contiguous(t, 0, dst);
  }
  SUBCASE("same plane, cross leaf: 4 links via a spine, 3.7 us") {
    int dst = 8 * 32;  // node 32: plane 0, leaf 1
    CHECK(t.leaf_of(0) != t.leaf_of(dst));
    sim::Route r = t.route(0, dst);
    REQUIRE(r.size() == 4);
    CHECK(t.vertex_kind(t.link_head(r[1])) == VertexKind::Spine);
    for (auto l : r) CHECK(t.links()[static_cast<std::size_t>(l)].capacity.value() == doctest::Approx(50e9));
    CHECK(t.path_latency(0, dst) == Time::us(3.7));
    // Cross leaf minus same leaf = two more switch traversals (spine + far leaf).
    CHECK(t.path_latency(0, dst) - t.path_latency(0, 8 * 31) == c.network.switch_latency * 2);
    check_contiguous(t, 0, dst);
  }
  SUBCASE("cross plane: NVLink to the PXN proxy first, then that plane") {
    int dst = 8 * 40 + 3;  // node 40, local rank 3 -> plane 3, leaf 1
    sim::Route r = t.route(0, dst);
    REQUIRE(r.size() == 6);
    CHECK(t.link_tail(r[0]) == 0);
    CHECK(t.vertex_kind(t.link_head(r[0])) == VertexKind::NvSwitch);
    int proxy = t.link_head(r[1]);
    CHECK(proxy == 3);  // node 0, local rank 3
    CHECK(t.plane_of(proxy) == t.plane_of(dst));
    CHECK(t.path_latency(0, dst) == Time::us(3.33) + Time::us(3.7));
    check_contiguous(t, 0, dst);
  }
  SUBCASE("every route is contiguous and has the expected length") {
    // Sources: all GPUs of nodes 0 and 37; destinations: every GPU.
    for (int src : {0, 1, 2, 3, 4, 5, 6, 7, 296, 299, 303}) {
      for (int dst = 0; dst < t.gpu_count(); ++dst) {
        if (dst == src) continue;
        sim::Route r = t.route(src, dst);
        std::size_t expect = 0;
        if (t.node_of(src) == t.node_of(dst)) {
          expect = 2;
        } else {
          expect = (t.leaf_of(dst) == t.leaf_of(src - t.local_rank(src) + t.local_rank(dst))) ? 2 : 4;
          if (t.plane_of(src) != t.plane_of(dst)) expect += 2;
        }
        CAPTURE(src);
        CAPTURE(dst);
        REQUIRE(r.size() == expect);
        check_contiguous(t, src, dst);
      }
    }
  }
  SUBCASE("static ECMP uses every spine and is deterministic") {
    std::set<int> spines;
    for (int dst = 8 * 32; dst < t.gpu_count(); dst += 8) {
      sim::Route r = t.route(0, dst);
      if (r.size() == 4) spines.insert(t.link_head(r[1]));
      CHECK(r == t.route(0, dst));
    }
    CHECK(spines.size() == 4);
  }
  SUBCASE("every spine's 64 ports are cabled, none more") {
    std::map<int, int> up_cables;
    for (std::size_t l = 0; l < t.links().size(); ++l)
      if (t.vertex_kind(t.link_head(static_cast<int>(l))) == VertexKind::Spine) ++up_cables[t.link_head(static_cast<int>(l))];
    CHECK(up_cables.size() == 32);
    for (auto [spine, n] : up_cables) CHECK(n == 64);
    CHECK(t.cable_count() == 2048 + 8 * 8 * 32);
  }
  SUBCASE("src == dst is an empty route; out-of-range GPUs throw") {
    CHECK(t.route(7, 7).empty());
    CHECK(t.path_latency(7, 7) == Time::zero());
    CHECK_THROWS_AS(t.route(-1, 0), std::out_of_range);
    CHECK_THROWS_AS(t.route(0, 2048), std::out_of_range);
    CHECK_THROWS_AS(t.node_of(2048), std::out_of_range);
  }
}

TEST_CASE("small fabrics: one leaf has no spines; uneven leaf counts stay within the radix") {
  {
    // 2 nodes x 8 GPUs = 16 endpoints <= 32 down ports: one leaf, no spines.
    Topology t = Topology::build(cluster(2, 8, TopologyKind::FatTree, 64));
    CHECK(t.leaf_count() == 1);
    CHECK(t.spine_count() == 0);
    CHECK(t.inter_switch_cable_count() == 0);
    CHECK(t.cable_count() == 16);
    CHECK(t.route(0, 9).size() == 2);
    CHECK(t.path_latency(0, 9) == Time::us(2.8));
  }
  {
    // Radix 14 (7 down, 7 up), 35 single-GPU nodes: 5 leaves, ceil(5*7/14) = 3 spines.
    // A per-leaf "port p -> spine p mod 3" wiring would give spine 0 three cables
    // from each leaf (15 > 14 ports); the round-robin deal gives 12/12/11.
    Topology t = Topology::build(cluster(35, 1, TopologyKind::FatTree, 14));
    CHECK(t.leaves_per_plane() == 5);
    CHECK(t.spines_per_plane() == 3);
    std::map<int, int> ports;
    for (std::size_t l = 0; l < t.links().size(); ++l) {
      int h = t.link_head(static_cast<int>(l));
      if (t.vertex_kind(h) == VertexKind::Spine) ++ports[h];
    }
    for (auto [spine, n] : ports) CHECK(n <= 14);
    for (int s = 0; s < 35; ++s)
      for (int d = 0; d < 35; ++d)
        if (s != d) check_contiguous(t, s, d);
  }
  {
    // Smallest radix: 4 ports, 2 down; 4^2/2 = 8 endpoints max, 4 leaves, 2 spines.
    Topology t = Topology::build(cluster(4, 2, TopologyKind::MultiPlaneFatTree, 4));
    CHECK(t.planes() == 2);
    CHECK(t.leaves_per_plane() == 2);
    CHECK(t.spines_per_plane() == 1);
    for (int s = 0; s < 8; ++s)
      for (int d = 0; d < 8; ++d)
        if (s != d) check_contiguous(t, s, d);
  }
}

TEST_CASE("Topology::build rejects parameters it cannot wire") {
  auto rejects = [](ClusterSpec c) { CHECK_THROWS_AS(Topology::build(c), std::invalid_argument); };
  ClusterSpec ok = deepseek();
  CHECK_NOTHROW(Topology::build(ok));
  { ClusterSpec c = ok; c.nodes = 0; rejects(c); }
  { ClusterSpec c = ok; c.gpus_per_node = 0; c.nics_per_node = 0; rejects(c); }
  { ClusterSpec c = ok; c.nics_per_node = 4; rejects(c); }
  { ClusterSpec c = ok; c.network.planes = 3; rejects(c); }                 // multi-plane: a divisor of 8
  { ClusterSpec c = ok; c.network.topology = TopologyKind::FatTree; rejects(c); }  // fat-tree needs 1
  { ClusterSpec c = ok; c.network.tiers = 4; rejects(c); }
  { ClusterSpec c = ok; c.network.tiers = 1; rejects(c); }
  { ClusterSpec c = ok; c.network.switch_radix = 63; rejects(c); }
  { ClusterSpec c = ok; c.network.switch_radix = 2; rejects(c); }
  { ClusterSpec c = ok; c.nodes = 2049; rejects(c); }                       // > 64^2/2 per plane
  { ClusterSpec c = ok; c.network.nic_bandwidth = BytesPerSecond(0.0); rejects(c); }
  { ClusterSpec c = ok; c.gpu.nvlink_unidir = BytesPerSecond(0.0); rejects(c); }
  { ClusterSpec c = ok; c.network.switch_latency = Time::us(-1); rejects(c); }
  { ClusterSpec c = ok; c.network.nic_latency = Time::us(-1); rejects(c); }
  { ClusterSpec c = ok; c.gpu.nvlink_latency = Time::us(-1); rejects(c); }
}
}
