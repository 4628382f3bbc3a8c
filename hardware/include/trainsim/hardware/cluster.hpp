#pragma once
// A training cluster as data: the GPU, how many nodes of how many GPUs, and
// the scale-out fabric the GPUs' NICs plug into.
//
// Scenario schema (object at e.g. /cluster):
//   "gpu":           preset name ("H800") or an inline GPU object (gpu.hpp schema)
//   "nodes":         integer >= 1
//   "gpus_per_node": integer >= 1
//   "nics_per_node": optional; must equal gpus_per_node (one NIC per GPU is the
//                    only layout modelled)
//   "network": {
//     "topology":    "multi-plane-fat-tree" | "fat-tree"
//     "planes":      multi-plane: must equal gpus_per_node (default), since each
//                    GPU-NIC pair sits on its own plane (DeepSeek's MPFT);
//                    fat-tree: 1 (default)
//     "tiers":       2 (3-tier fat-trees are rejected: not yet supported)
//     "switch_radix": even integer >= 4 (ports per switch)
//     "nic_Gbps":    NIC and switch port speed, per direction
//     "switch_latency_us": optional, default 0.45 (see below)
//     "nic_latency_us":    optional, default 1.175 (see below)
//   }
//
// Default latencies come from the 64-byte, CPU-side latencies DeepSeek
// measured on its H800 cluster (arXiv 2505.09343, ISCA 2025, Table 5;
// shared/reference/deepseek-v3-facts.json training_cluster.latency_64B_cpu_side_us):
// IB same leaf 2.8 us, IB cross leaf 3.7 us. A same-leaf path crosses one
// switch, a cross-leaf path three (leaf, spine, leaf), so each extra switch
// traversal (switch plus the cable to it) costs (3.7 - 2.8) / 2 = 0.45 us.
// What is left of the same-leaf figure, 2.8 - 0.45 = 2.35 us, is split evenly
// between the sending and the receiving NIC (host software, PCIe, NIC and its
// cable): 1.175 us each. The figures include CPU-side software overhead, so
// they are upper bounds for GPU-initiated (IBGDA) transfers.
//
// A 2-tier fat-tree of radix k connects at most k^2/2 endpoints per plane
// (k leaves of k/2 down ports); larger clusters are rejected at <cluster path>/nodes.
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "trainsim/common/units.hpp"
#include "trainsim/hardware/gpu.hpp"

namespace trainsim {
class JsonObject;
}

namespace trainsim::hw {

enum class TopologyKind { MultiPlaneFatTree, FatTree };

const char* to_string(TopologyKind k);  // "multi-plane-fat-tree" / "fat-tree"

inline constexpr double kDefaultSwitchLatencyUs = 0.45;  // (3.7 - 2.8) / 2, see above
inline constexpr double kDefaultNicLatencyUs = 1.175;    // (2.8 - 0.45) / 2, see above

struct NetworkSpec {
  TopologyKind topology = TopologyKind::FatTree;
  int planes = 1;
  int tiers = 2;
  int switch_radix = 64;
  BytesPerSecond nic_bandwidth{};  // per NIC per direction; also the switch port speed
  Time switch_latency = Time::us(kDefaultSwitchLatencyUs);  // per switch traversal
  Time nic_latency = Time::us(kDefaultNicLatencyUs);        // per NIC (send or receive side)
};

struct ClusterSpec {
  GpuSpec gpu;
  int nodes = 1;
  int gpus_per_node = 8;
  int nics_per_node = 8;
  NetworkSpec network;

  int total_gpus() const { return nodes * gpus_per_node; }
};

// Largest endpoint count per plane of a 2-tier fat-tree of this radix: k^2/2.
long long max_endpoints_two_tier(int switch_radix);

// Strict parse (unknown keys rejected); InputError naming file and JSON path.
ClusterSpec parse_cluster(JsonObject& cluster);

// Echo for reports; parse_cluster(to_json(c)) gives c back (GPU inline).
nlohmann::json to_json(const ClusterSpec& cluster);

}  // namespace trainsim::hw
