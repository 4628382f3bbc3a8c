#pragma once
// The cluster as a wired graph, and the routes flows take through it.
//
// What the model captures
// -----------------------
// * Vertices: every GPU; one NVSwitch per node, modelled as a single
//   non-blocking crossbar (the 4 physical NVSwitch chips of an HGX board act
//   as one for bandwidth purposes); and the scale-out fabric switches, Leaf
//   and Spine, per plane.
// * Edges are directed: each physical cable is two edges, one per direction,
//   and each edge becomes one sim::Link (edge index = link index) with a
//   capacity and a latency. GPU<->NVSwitch edges carry the GPU's NVLink
//   bandwidth per direction and half the measured NVLink latency each, so a
//   GPU->NVSwitch->GPU path costs exactly the measured figure. GPU<->Leaf
//   edges are the GPU's own NIC (one NIC per GPU) at the NIC speed; Leaf<->
//   Spine cables run at the same port speed.
// * Fabric: a 2-tier fat-tree (leaf/spine) per plane. A leaf of radix k has
//   k/2 down ports and k/2 up ports; NICs fill leaves in order (node-major);
//   a plane with more than one leaf gets ceil(leaves * k/2 / k) spines, and
//   the leaves' up ports are dealt round-robin over the spines, so parallel
//   cables between a leaf and a spine are separate links, as in hardware.
//   In a multi-plane fat-tree (DeepSeek's MPFT) local rank r of every node is
//   on plane r; a plain fat-tree has one plane holding every NIC.
// * Latency per link: the sender's NIC plus the leaf it enters
//   (nic + switch), each further switch entered (switch), and the receiving
//   NIC (nic). Same leaf: 2 nic + 1 switch; cross leaf: 2 nic + 3 switch,
//   which reproduces the measured 2.8 / 3.7 us with the defaults of
//   cluster.hpp.
//
// Routing (which path a flow takes) is separate from the wiring and fully
// deterministic: within a node GPU->NVSwitch->GPU; across nodes on one plane
// GPU->Leaf[->Spine->Leaf]->GPU with the spine (a+b) mod spines, where a and
// b are the two NICs' indices within their plane (the node numbers, in a
// multi-plane fabric), and the parallel cable chosen from the same hash
// (static ECMP); across planes the
// data first crosses NVLink to the source-node GPU on the destination's plane
// (NCCL PXN), then goes inter-node on that plane. sim/ only sees the links and
// the routes, never switches or GPUs.
//
// What it ignores
// ---------------
// * Switch buffers, credit-based flow control, congestion control, packet
//   reordering and adaptive routing: a link is a shared capacity under the
//   flow model, nothing more. Static hashing means ECMP collisions are
//   represented; adaptive routing's ability to avoid them is not.
// * PCIe between GPU and NIC, host memory and CPUs, the storage/3FS network,
//   NVLink port granularity (18 links per H800/H100 are one aggregate), and
//   SHARP or other in-network reduction.
// * Failures, oversubscription choices other than the 1:1 fat-tree, 3-tier
//   trees (rejected), and rail-optimised wirings other than the multi-plane one.
// * Latencies are CPU-side 64 B figures (they include host software); they
//   are upper bounds for GPU-initiated transfers and are not validated beyond
//   reproducing the two table entries they were derived from.
#include <vector>

#include "trainsim/common/units.hpp"
#include "trainsim/hardware/cluster.hpp"
#include "trainsim/sim/link.hpp"

namespace trainsim::hw {

enum class VertexKind { Gpu, NvSwitch, Leaf, Spine };

const char* to_string(VertexKind k);

// Topology::build takes the cluster description itself as its parameter struct.
using TopologyParams = ClusterSpec;

class Topology {
 public:
  // Throws std::invalid_argument on parameters it cannot wire (planes not 1 or
  // gpus_per_node, tiers != 2, odd or too small radix, too many endpoints per
  // plane, non-positive bandwidths, negative latencies, ...).
  static Topology build(const ClusterSpec& spec);

  int gpu_count() const { return gpus_; }
  int node_count() const { return nodes_; }
  int gpus_per_node() const { return gpus_per_node_; }
  int planes() const { return planes_; }
  int node_of(int gpu) const;
  int local_rank(int gpu) const;
  int plane_of(int gpu) const;  // plane of the GPU's NIC
  int leaf_of(int gpu) const;   // leaf vertex the GPU's NIC is cabled to

  // One link per directed edge; index = edge index.
  const std::vector<sim::Link>& links() const { return links_; }
  // Vertex ids of a link's ends (tail -> head). GPU g is vertex g.
  int link_tail(sim::LinkIndex link) const;
  int link_head(sim::LinkIndex link) const;
  int vertex_count() const { return static_cast<int>(kinds_.size()); }
  VertexKind vertex_kind(int vertex) const;

  // Links a flow from src_gpu to dst_gpu crosses, in order; empty when
  // src == dst. std::out_of_range for a GPU id outside [0, gpu_count()).
  sim::Route route(int src_gpu, int dst_gpu) const;
  // Sum of the latencies of route(src, dst).
  Time path_latency(int src_gpu, int dst_gpu) const;

  // Fabric switches (leaves + spines over all planes); NVSwitches not counted.
  int switch_count() const { return leaf_count() + spine_count(); }
  int leaf_count() const { return planes_ * leaves_per_plane_; }
  int spine_count() const { return planes_ * spines_per_plane_; }
  int leaves_per_plane() const { return leaves_per_plane_; }
  int spines_per_plane() const { return spines_per_plane_; }
  // Physical cables: NIC-to-leaf plus leaf-to-spine (NVLink not counted).
  int cable_count() const { return gpus_ + inter_switch_cables_; }
  int inter_switch_cable_count() const { return inter_switch_cables_; }

 private:
  Topology() = default;
  int proxy_for(int src_gpu, int dst_gpu) const;
  void check_gpu(int gpu, const char* what) const;

  int gpus_ = 0, nodes_ = 0, gpus_per_node_ = 0, planes_ = 1;
  int leaves_per_plane_ = 0, spines_per_plane_ = 0, inter_switch_cables_ = 0;
  int first_leaf_vertex_ = 0;

  std::vector<sim::Link> links_;
  std::vector<int> tail_, head_;  // per link
  std::vector<VertexKind> kinds_;  // per vertex

  // Per GPU: link indices of its NVLink (to/from the node's NVSwitch) and NIC
  // (to/from its leaf).
  std::vector<int> nvlink_up_, nvlink_down_, nic_up_, nic_down_;
  // Leaf<->spine cables grouped by (global leaf, spine within plane), CSR:
  // cables of group g are [cable_begin_[g], cable_begin_[g+1]) in cable_up_
  // (leaf->spine link) and cable_down_ (spine->leaf link of the same cable).
  std::vector<int> cable_begin_, cable_up_, cable_down_;
};

}  // namespace trainsim::hw
