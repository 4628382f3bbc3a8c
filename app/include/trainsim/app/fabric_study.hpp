#pragma once
// `trainsim fabric SCENARIO [--json] [--list] [--dot FILE]`: the scale-out
// fabric of a scenario's cluster, by itself.
//
// Only the scenario's "cluster" object is read (and checked strictly, faults
// included); the other keys are left to `simulate`, so a file holding just
// {"cluster": {...}} is enough.
//
// What it reports (JSON keys; the text form prints the same):
//   endpoints, nodes, gpus_per_node, planes, tiers, topology, switch_radix,
//   oversubscription, leaf_down_ports, leaf_up_ports
//   switches              fabric switches over all planes (NVSwitches not
//                         counted), failed ones included
//   switches_per_plane    {"leaf", "spine"} or {"leaf", "aggregation", "core"}
//   switch_links          switch-to-switch cables over all planes (ISCA 2025
//                         Table 3 counts these as "links")
//   nic_links             NIC-to-leaf cables (one per GPU)
//   bisection_GBps        per direction, GB/s (1e9 bytes/s): per plane the
//                         minimum over the cable layers (NICs, leaf up-links,
//                         aggregation up-links) of half the layer's surviving
//                         capacity, summed over planes (Topology::
//                         bisection_bandwidth). A full 1:1 fat-tree gives half
//                         its NICs' capacity; an o:1 leaf about 1/o of that.
//   failed                {"switches": [names], "links": [cable names failed by
//                         themselves, not through a failed switch], "nics":
//                         [GPU ids]}
//   degraded              [{"link": name | "nic": id, "bandwidth_factor": f}]
// --list prints every switch and cable name (the names faults use), one per
// line, with " down" or " xF" after failed or degraded ones. --dot writes
// Graphviz (undirected, one edge per cable; failed dashed red, degraded
// orange) for fabrics of at most kMaxDotVertices vertices.
#include <string>

#include <nlohmann/json.hpp>

#include "trainsim/hardware/cluster.hpp"
#include "trainsim/hardware/topology.hpp"

namespace trainsim::app {

// Above this, --dot is refused: Graphviz layouts of thousands of vertices are
// unreadable and slow.
inline constexpr int kMaxDotVertices = 1024;

struct FabricStudy {
  std::string file;
  hw::ClusterSpec cluster;
  hw::Topology topology;
};

// Reads the "cluster" of a scenario file; InputError on bad input.
FabricStudy load_fabric(const std::string& scenario_file);
FabricStudy fabric_study(const hw::ClusterSpec& cluster, const std::string& file);

nlohmann::json fabric_json(const FabricStudy& s);
std::string fabric_text(const nlohmann::json& report);
std::string fabric_names(const FabricStudy& s);
// InputError (naming the scenario file and /cluster) above kMaxDotVertices.
std::string fabric_dot(const FabricStudy& s);

}  // namespace trainsim::app
