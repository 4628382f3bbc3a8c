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
//     "topology":    "multi-plane-fat-tree" | "fat-tree" | "rail-optimized"
//     "planes":      multi-plane: a divisor of gpus_per_node (default
//                    gpus_per_node); local rank r is on plane r % planes.
//                    fat-tree and rail-optimized: 1 (default)
//     "tiers":       2 (leaf/spine) or 3 (leaf/aggregation/core)
//     "switch_radix": even integer >= 4 (ports per switch)
//     "oversubscription": optional number >= 1, default 1: leaf down:up port
//                    ratio; down = ceil(radix * o / (o + 1)), up = radix - down
//                    (radix 64, o = 2: 43 down, 21 up)
//     "nic_Gbps":    NIC and switch port speed, per direction
//     "switch_latency_us": optional, default 0.45 (see below)
//     "nic_latency_us":    optional, default 1.175 (see below)
//     "faults":      optional array, default []; each element one object:
//                    {"link": "<cable name>"} | {"switch": "<name>"} |
//                    {"nic": <gpu id>} | {"plane": <p>}: down;
//                    {"link": ..., "bandwidth_factor": f} |
//                    {"nic": ..., "bandwidth_factor": f}: degraded to f of
//                    the capacity, 0 < f <= 1. Names as `trainsim fabric
//                    --list` prints them (topology.hpp).
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
// A 2-tier fat-tree of radix k has at most k leaves (a spine has k ports), a
// 3-tier one at most k pods of k/2 leaves; with d leaf down ports that is
// k*d (k^2/2 at 1:1) or k^2/2*d (k^3/4 at 1:1) endpoints per plane. Larger
// clusters are rejected at <cluster path>/nodes.
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "trainsim/common/units.hpp"
#include "trainsim/hardware/gpu.hpp"

namespace trainsim {
class JsonObject;
}

namespace trainsim::hw {

struct ClusterSpec;

enum class TopologyKind { MultiPlaneFatTree, FatTree, RailOptimized };

// "multi-plane-fat-tree" / "fat-tree" / "rail-optimized"
const char* to_string(TopologyKind k);

// What a fault takes down or degrades.
enum class FaultTarget { Link, Switch, Nic, Plane };

const char* to_string(FaultTarget t);  // "link" / "switch" / "nic" / "plane"

struct FabricFault {
  FaultTarget target = FaultTarget::Link;
  std::string name;               // Link, Switch: the name topology.hpp gives it
  int index = -1;                 // Nic: GPU id; Plane: plane number
  double bandwidth_factor = 0.0;  // 0: down; in (0, 1]: capacity scaled by it
  bool operator==(const FabricFault&) const = default;
};

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
  double oversubscription = 1.0;                            // leaf down:up ports
  std::vector<FabricFault> faults{};                        // applied in order
};

// Leaf ports towards the NICs: ceil(k * o / (o + 1)); the rest go up.
int leaf_down_ports(const NetworkSpec& n);
// Leaves one plane can hold: k (2-tier), k * k/2 (3-tier: k pods of k/2).
long long max_leaves_per_plane(const NetworkSpec& n);
// Largest node count the fabric can wire for this node shape.
long long max_nodes(const ClusterSpec& c);

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
// When faults are given the fabric is built once to check them (names exist,
// every GPU can still reach every other).
ClusterSpec parse_cluster(JsonObject& cluster);

// Echo for reports; parse_cluster(to_json(c)) gives c back (GPU inline).
nlohmann::json to_json(const ClusterSpec& cluster);

}  // namespace trainsim::hw
