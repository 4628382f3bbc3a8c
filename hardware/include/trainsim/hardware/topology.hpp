#pragma once
// The cluster as a wired graph, and the routes flows take through it.
//
// What the model captures
// -----------------------
// * Vertices: every GPU; one NVSwitch per node, modelled as a single
//   non-blocking crossbar (the 4 physical NVSwitch chips of an HGX board act
//   as one for bandwidth purposes); and the scale-out fabric switches per
//   plane: leaf and spine (2 tiers) or leaf, aggregation and core (3 tiers).
// * Edges are directed: each physical cable is two edges, one per direction,
//   and each edge becomes one sim::Link (edge index = link index) with a
//   capacity and a latency. GPU<->NVSwitch edges carry the GPU's NVLink
//   bandwidth per direction and half the measured NVLink latency each, so a
//   GPU->NVSwitch->GPU path costs exactly the measured figure. GPU<->leaf
//   edges are the GPU's own NIC (one NIC per GPU) at the NIC speed; switch
//   cables run at the same port speed.
// * Fabric shapes (cluster.hpp has the scenario keys):
//   - Leaves have d = ceil(k*o/(o+1)) down ports and k-d up ports (radix k,
//     oversubscription o; o = 1 gives k/2 and k/2).
//   - 2 tiers: leaves = ceil(endpoints / d); the leaves' up ports, taken leaf
//     by leaf, are dealt round-robin over ceil(leaves*(k-d)/k) spines, so
//     every leaf reaches every spine and parallel cables are separate links.
//     One leaf needs no spine. At most k leaves: k^2/2 endpoints at 1:1.
//   - 3 tiers (the k-ary fat-tree of Al-Fares et al., SIGCOMM 2008): pods
//     of k/2 leaves and k-d aggregation switches, one cable from every leaf
//     to every aggregation switch of its pod; aggregation switch j of every
//     pod deals its k/2 up ports round-robin over the ceil(pods/2) cores of
//     group j. Sized to the endpoints (the last pod may have fewer leaves,
//     but all its aggregation switches; one pod needs no cores). Radix 64 at 1:1: 64 pods, 65,536 endpoints, 2,048 +
//     2,048 + 1,024 = 5,120 switches and 131,072 switch cables, as ISCA 2025
//     Table 3 (arXiv 2505.09343) lists for FT3.
//   - fat-tree: one plane; NICs fill leaves in GPU order (node-major).
//     multi-plane-fat-tree (DeepSeek's MPFT): local rank r on plane r % P,
//     each plane its own fat-tree. rail-optimized (NVIDIA DGX SuperPOD
//     style): one plane; rail r (local rank r of every node) has its own
//     leaves, d nodes per leaf, leaves ordered (node group, rail), and
//     spines/cores join the rails.
// * Latency per link: the sender's NIC plus the leaf it enters
//   (nic + switch), each further switch entered (switch), and the receiving
//   NIC (nic). Same leaf: 2 nic + 1 switch; cross leaf: 2 nic + 3 switch,
//   which reproduces the measured 2.8 / 3.7 us with the defaults of
//   cluster.hpp; a 3-tier cross-pod path adds 2 more switches.
// * Faults (cluster.network.faults) are applied to the Boost graph: a failed
//   cable, switch (all its cables), NIC or plane (its switches and NICs) is
//   removed from it; a degraded cable or NIC keeps its place with its
//   capacity scaled. Failed links stay in links() (indices are stable) but no
//   route uses them.
//
// Routing (separate from wiring, deterministic, read from the graph)
// -------------------------------------------------------------------
// The surviving graph is flattened into per-vertex adjacency (O(links)
// memory, no per-pair or per-destination tables). Within a node:
// GPU->NVSwitch->GPU. Across nodes the flow picks a plane, an egress NIC on
// the source's node and an ingress NIC on the destination's node:
//   - the ingress is the destination's own NIC; the egress is the NIC of the
//     source-node GPU on the destination's plane (multi-plane) or rail
//     (rail-optimized), reached over NVLink: NCCL PXN, which NCCL enables by
//     default (NCCL >= 2.12), so cross-rail traffic stays on one rail; in a
//     plain fat-tree the source's own NIC.
//   - if that NIC is down, the next node-mate (cyclic in local rank) with a
//     live NIC on the same plane; if the plane has none on either side, the
//     next plane (cyclic from the destination's). A GPU with a dead NIC thus
//     receives through a node-mate's NIC and NVLink, PXN-style.
// Between the two leaves the path is up*/down*: up to the lowest tier whose
// switches cover both leaves, then down, which is a shortest path of the
// surviving fabric whenever one is valley-free. Each up hop picks, by a hash
// of the flow's endpoints, among the distinct upper switches (in vertex
// order) that can still reach the destination, then among the surviving
// parallel cables; down hops are forced. The hash is the sum of the egress
// and ingress NICs' indices within their plane (not GPU ids: all GPUs of one
// plane have ids congruent mod planes, so a GPU-id sum would pin a plane to
// one spine): upper switch h % n, then cable (h / n) % cables. On a healthy
// 2-tier fabric this is the spine (a+b) mod spines and cable choice trainsim
// has always used, so results did not move. build() checks that faults
// leave every pair of nodes a route (a common plane with live NICs, and the
// surviving leaves of each plane mutually reachable up*/down*).
//
// What it ignores
// ---------------
// * Switch buffers, credit-based flow control, congestion control, packet
//   reordering and adaptive routing: a link is a shared capacity under the
//   flow model, nothing more. Static hashing means ECMP collisions are
//   represented; adaptive routing's ability to avoid them is not.
// * PCIe between GPU and NIC, host memory and CPUs, the storage/3FS network,
//   NVLink port granularity (18 links per H800/H100 are one aggregate), NVLink
//   faults, and SHARP or other in-network reduction.
// * Rail-optimised PXN without NVLink (NCCL_PXN_DISABLE=1) and fabrics other
//   than fat-trees (dragonfly, torus); oversubscription above the leaves.
// * Latencies are CPU-side 64 B figures (they include host software); they
//   are upper bounds for GPU-initiated transfers and are not validated beyond
//   reproducing the two table entries they were derived from.
//
// Validated by tests/hardware/test_topology.cpp: switch and cable counts
// against ISCA 2025 Table 3 (FT2, MPFT, FT3), route lengths against a Boost
// breadth-first search of the surviving graph, contiguity, fault avoidance.
#include <stdexcept>
#include <string>
#include <vector>

#include "trainsim/common/units.hpp"
#include "trainsim/hardware/cluster.hpp"
#include "trainsim/sim/link.hpp"

namespace trainsim::hw {

enum class VertexKind { Gpu, NvSwitch, Leaf, Spine, Aggregation, Core };

const char* to_string(VertexKind k);

// Topology::build takes the cluster description itself as its parameter struct.
using TopologyParams = ClusterSpec;

// A fault the fabric cannot apply (unknown name) or that leaves a GPU
// unreachable. fault_index() is the position in NetworkSpec::faults, or -1
// for the fault set as a whole; key/value/expected fill an InputError.
class FabricFaultError : public std::invalid_argument {
 public:
  FabricFaultError(int fault_index, std::string key, std::string value, std::string expected);
  int fault_index() const { return index_; }
  const std::string& key() const { return key_; }
  const std::string& value() const { return value_; }
  const std::string& expected() const { return expected_; }

 private:
  int index_;
  std::string key_, value_, expected_;
};

// One physical cable outside the nodes: a NIC (GPU to leaf) or a switch
// cable (lower tier to upper tier). layer: 0 NIC, 1 leaf-up, 2 aggregation-up.
struct Cable {
  int lower = 0, upper = 0;         // vertex ids
  sim::LinkIndex up = 0, down = 0;  // lower->upper and upper->lower links
  int plane = 0;
  int layer = 0;
};

class Topology {
 public:
  // Throws std::invalid_argument on parameters it cannot wire (planes not a
  // divisor of gpus_per_node, tiers not 2 or 3, odd or too small radix, too
  // many endpoints per plane, non-positive bandwidths, negative latencies,
  // ...) and FabricFaultError on faults it cannot apply or that disconnect.
  static Topology build(const ClusterSpec& spec);

  int gpu_count() const { return gpus_; }
  int node_count() const { return nodes_; }
  int gpus_per_node() const { return gpus_per_node_; }
  int planes() const { return planes_; }
  int tiers() const { return tiers_; }
  TopologyKind kind() const { return kind_; }
  int node_of(int gpu) const;
  int local_rank(int gpu) const;
  int plane_of(int gpu) const;  // plane of the GPU's NIC
  int leaf_of(int gpu) const;   // leaf vertex the GPU's NIC is cabled to

  // One link per directed edge; index = edge index.
  const std::vector<sim::Link>& links() const { return links_; }
  // Vertex ids of a link's ends (tail -> head). GPU g is vertex g.
  int link_tail(sim::LinkIndex link) const;
  int link_head(sim::LinkIndex link) const;
  // False for links removed by a fault (routes never use them).
  bool link_alive(sim::LinkIndex link) const;
  int vertex_count() const { return static_cast<int>(kinds_.size()); }
  VertexKind vertex_kind(int vertex) const;
  // "gpu5", "nvsw0", "p3.leaf7", "p0.spine2", "p0.agg40", "p0.core1000".
  const std::string& vertex_name(int vertex) const;
  // Fabric tier of a switch: 0 leaf, 1 spine/aggregation, 2 core; -1 else.
  int vertex_tier(int vertex) const;
  // False for a switch taken down by a switch or plane fault (never a GPU).
  bool vertex_alive(int vertex) const;

  // Links a flow from src_gpu to dst_gpu crosses, in order; empty when
  // src == dst. std::out_of_range for a GPU id outside [0, gpu_count()).
  sim::Route route(int src_gpu, int dst_gpu) const;
  // Sum of the latencies of route(src, dst).
  Time path_latency(int src_gpu, int dst_gpu) const;

  // Fabric switches over all planes (NVSwitches not counted), wired ones,
  // failed included.
  int switch_count() const { return leaf_count() + spine_count(); }
  int leaf_count() const { return planes_ * switches_per_plane(0); }
  // Switches above the leaves (spines; or aggregation plus core).
  int spine_count() const { return planes_ * spines_per_plane(); }
  int leaves_per_plane() const { return switches_per_plane(0); }
  int spines_per_plane() const { return switches_per_plane(1) + switches_per_plane(2); }
  // Switches of one tier in one plane (tier 0 leaf, 1, 2).
  int switches_per_plane(int tier) const;
  // Physical cables: NIC-to-leaf plus switch-to-switch (NVLink not counted).
  int cable_count() const { return static_cast<int>(cables_.size()); }
  int inter_switch_cable_count() const { return cable_count() - gpus_; }
  const std::vector<Cable>& cables() const { return cables_; }
  // "<lower>-<upper>", with "#i" (i-th cable between the pair, from 0) when
  // the pair has parallel cables: "gpu5-p5.leaf0", "p0.leaf3-p0.spine1#1".
  std::vector<std::string> cable_names() const;
  bool cable_alive(int cable) const;
  // Capacity of a cable per direction now (after degradations; 0 if failed).
  BytesPerSecond cable_capacity(int cable) const;

  // Bisection bandwidth per direction, bytes/s: per plane, the minimum over
  // the cable layers (NICs, leaf up-links, aggregation up-links) of half the
  // layer's surviving capacity, summed over planes. For a fat-tree whose
  // layers are spread evenly this is the worst balanced cut (k^3/8 NICs'
  // worth for a full 1:1 3-tier tree); with faults concentrated on one side
  // it is an upper bound.
  BytesPerSecond bisection_bandwidth() const;

 private:
  Topology() = default;
  friend class TopologyBuilder;
  void check_gpu(int gpu, const char* what) const;

  // Routing (topology_route.cpp).
  int lane_proxy(int src_gpu, int lane) const;
  int lane_of(int gpu) const;
  int pick_nic(int node, int prefer_gpu, int plane) const;
  long long plane_index(int gpu) const;
  bool covers(int sw, int leaf) const;
  bool can_descend(int sw, int leaf) const;
  bool can_climb(int sw, int leaf) const;
  void climb(int sw, int leaf, unsigned long long h, sim::Route& r) const;
  void descend(int sw, int leaf, unsigned long long h, sim::Route& r) const;
  template <class Ok>
  int count_groups(int v, int tier, Ok ok) const;
  template <class Ok>
  bool has_group(int v, int tier, Ok ok) const;
  template <class Ok>
  int nth_group(int v, int tier, Ok ok, int n) const;
  sim::LinkIndex pick_parallel(int v, int first, unsigned long long h) const;
  // One hop from switch v to tier `tier`: the (h mod n)-th of the n switch
  // groups there that pass `ok`, then a parallel cable; consumes h.
  template <class Ok>
  sim::LinkIndex hop(int v, int tier, Ok ok, unsigned long long& h, const char* way) const;
  void check_reachability() const;
  void check_node_planes() const;
  void check_plane_leaves(int plane) const;

  int gpus_ = 0, nodes_ = 0, gpus_per_node_ = 0, planes_ = 1, tiers_ = 2, lanes_ = 1;
  TopologyKind kind_ = TopologyKind::FatTree;
  int per_plane_[3] = {0, 0, 0};  // switches per plane and tier
  int top_tier_ = 0;              // highest tier wired (0: one leaf per plane)
  int up_ports_ = 0;              // leaf up ports (3-tier: aggregation switches per pod)
  bool faulty_ = false;

  std::vector<sim::Link> links_;
  std::vector<int> tail_, head_;       // per link
  std::vector<char> link_alive_;       // per link
  std::vector<char> vertex_failed_;    // per vertex: failed by a switch or plane fault
  std::vector<VertexKind> kinds_;      // per vertex
  std::vector<std::string> names_;     // per vertex
  std::vector<signed char> tier_;      // per vertex; -1 for GPUs and NVSwitches
  std::vector<int> plane_, group_;     // per vertex: plane; pod (leaf, aggregation) or -1
  std::vector<Cable> cables_;

  // Per GPU: link indices of its NVLink (to/from the node's NVSwitch) and NIC
  // (to/from its leaf).
  std::vector<int> nvlink_up_, nvlink_down_, nic_up_, nic_down_;
  // Surviving out-links of each vertex, sorted by (head, link), CSR:
  // vertex v's are adj_[adj_begin_[v] .. adj_begin_[v+1]).
  std::vector<int> adj_begin_, adj_;
};

}  // namespace trainsim::hw
