#pragma once
// MoE dispatch and combine as DeepEP's normal (high-throughput) kernels move
// them: which GPU sends how many bytes to which GPU, over which hop.
//
// What it captures
// ----------------
// * Dispatch. A token goes to at most M nodes (node-limited routing; V3: 8
//   expert groups, 4 per token). For every target node other than its own,
//   ONE copy crosses InfiniBand to the GPU with the sender's local rank on
//   that node (same plane of a multi-plane fat-tree, so no PXN hop); that GPU
//   forwards it over NVLink to every other GPU of its node hosting at least
//   one of the token's experts: one copy per target GPU, not per expert.
//   Targets on the sender's own node are written directly over NVLink.
//   (DeepEP routes own-node tokens through its local RDMA buffer and the same
//   forwarder; the links crossed are the same.)
// * Combine is the reverse: each GPU sends one reduced row per token back to
//   the forwarding GPU of its node (NVLink), which reduces the rows of its
//   node and sends a single copy back over InfiniBand.
// * Experts are placed by EP rank (expert e on rank e / (experts / ep)), plus
//   optional redundant copies of hot experts; a replicated expert's tokens
//   are split evenly over its copies.
// * Routing models. All route a token the way DeepEP's benchmark does: each
//   expert gets a score, the M nodes whose best expert scores highest are
//   chosen, then the top-k experts on those nodes. `balanced` (the default,
//   what DeepSeek's profile assumed) has i.i.d. scores and is computed in
//   expectation in closed form (routing_counts; the derivation is in
//   moe_traffic.cpp), identical for every layer and micro-batch. `zipf`,
//   `dirichlet` and `histogram` give each expert a load p_e; a token's
//   scores are log p_e plus Gumbel noise (top-k = k experts drawn without
//   replacement in proportion to load), drawn from a counter-based RNG keyed
//   by (seed, layer, micro-batch, source rank, token, expert), so any caller
//   gets the same draw in any order. At most max_sampled_tokens tokens per
//   source GPU are sampled and the counts scaled to tokens_per_gpu.
// * Per GPU: the expert rows it receives (tokens x experts hosted: the expert
//   GEMMs' M) and DeepEP's "logical" byte counts (deepep_* fields below).
// * Timing: bytes per link and the idle-network bottleneck time, or a run of
//   every transfer as one flow on a sim::FlowNetwork built from the topology
//   with achievable (not nominal) link capacities and a per-GPU limit from
//   the communication SMs (NetworkEfficiency).
//
// What it ignores
// ---------------
// * DeepEP's notify step (the size exchange before each dispatch; the
//   benchmark times it separately and excludes it), buffer and chunk limits,
//   per-channel queue pairs, IBGDA vs proxy paths, the low-latency kernels
//   (pure RDMA, per-expert copies), the top-k weights and indices that travel
//   with each token (a few dozen bytes), and kernel launch.
// * The pipelining of IB receive and NVLink forward is fluid: forward flows
//   start with the IB flows and share NVLink from t=0; causality is enforced
//   at completion only (a forward cannot finish before the IB data it
//   forwards has arrived; a combine IB send cannot finish before the NVLink
//   rows it reduces). Chunk granularity is not modelled.
// * Token-level variance of `balanced` routing (it is an expectation), and
//   the correlation of routing between layers.
//
// How it was validated
// --------------------
// Against DeepEP's published normal-kernel bottleneck bandwidths on H800
// (EP8 NVLink, EP16/32/64 RDMA; tests/model/test_moe_traffic.cpp, suite
// "validation", and docs/VALIDATION.md): EP8, EP32 and EP64 within 20%
// (+19/+16%, -8/-7%, -11/-9% dispatch/combine); EP16 misses (+30%: the model
// is NVLink-bound there and DeepEP's forwarding reaches less than the link).
// Those figures were never used to set any parameter: link efficiencies are
// DeepSeek's statements of the achievable NVLink and IB rates
// (data/network/efficiency.json). The balanced expectation is checked
// against an independent derivation and against sampling; unit tests derive
// transfer bytes and times by hand.
#include <cstdint>
#include <string>
#include <vector>

#include "trainsim/common/precision.hpp"
#include "trainsim/common/units.hpp"
#include "trainsim/hardware/topology.hpp"
#include "trainsim/model/architecture.hpp"

namespace trainsim::model {

enum class RoutingKind { Balanced, Zipf, Dirichlet, Histogram };
const char* to_string(RoutingKind k);  // "balanced", "zipf", "dirichlet", "histogram"

// An extra copy of an expert on another EP rank (EPLB-style redundancy).
struct ExpertReplica {
  int expert = 0;
  int ep_rank = 0;
};

struct RoutingModel {
  RoutingKind kind = RoutingKind::Balanced;
  double zipf_exponent = 1.0;      // zipf: load of the r-th hottest expert ~ r^-s
  double dirichlet_alpha = 1.0;    // dirichlet: concentration (large -> uniform)
  std::vector<double> expert_load;  // histogram: one weight >= 0 per expert
  std::uint64_t seed = 0;
  // Tokens sampled per source GPU (skewed models); counts are scaled by
  // tokens_per_gpu / sampled.
  int max_sampled_tokens = 1024;
  std::vector<ExpertReplica> replicas;  // sampled models only
};

enum class MoePhase { Dispatch, Combine };
const char* to_string(MoePhase p);

struct MoeTrafficParams {
  std::vector<int> ep_group;  // global GPU ids in EP-rank order
  int routed_experts = 0;
  double tokens_per_gpu = 0;
  int top_k = 0;
  int max_nodes_per_token = 0;  // M; 0 = unlimited
  double dispatch_bytes_per_token = 0;  // V3: hidden * (1 + 4/128) (FP8 + scales)
  double combine_bytes_per_token = 0;   // V3: 2 * hidden (BF16)
  RoutingModel routing;
  int layer = 0;        // key of the routing draw (sampled models)
  int micro_batch = 0;  // key of the routing draw (sampled models)
};

// Parameters for an MoE architecture (std::invalid_argument without MoE):
// experts, top-k, dispatch bytes in `dispatch_precision` (FP8: with scales),
// BF16 combine, and the node limit M = max_groups_per_token x the nodes one
// expert group spans (as model::dispatch_nodes_per_token), 0 when unlimited.
// Routing stays balanced; layer and micro-batch 0.
MoeTrafficParams moe_traffic_params(const Architecture& arch, std::vector<int> ep_group, int gpus_per_node,
                                    double tokens_per_gpu, Precision dispatch_precision);

// hidden * (1 + 4/128): FP8 values plus one FP32 scale per 128 channels.
double fp8_dispatch_bytes_per_token(int hidden);
// 2 * hidden: BF16.
double bf16_bytes_per_token(int hidden);

enum class MoeHop {
  IntraNode,  // sender -> target on the same node, NVLink
  InterNode,  // one copy per (token, node) over IB, same local rank
  Forward,    // forwarding GPU <-> target on its node, NVLink
};
const char* to_string(MoeHop h);

struct MoeTransfer {
  int src_gpu = 0;
  int dst_gpu = 0;
  double bytes = 0;
  MoeHop hop = MoeHop::IntraNode;
  // The GPU whose tokens these are (dispatch: sender; combine: receiver). For
  // a Forward it names the InterNode transfer that feeds it (dispatch:
  // origin -> src_gpu) or that it feeds (combine: dst_gpu -> origin).
  int origin_gpu = 0;
};

// Expected (or sampled and scaled) token counts per (source EP rank, ...).
struct RoutingCounts {
  int ep = 0;
  std::vector<int> node_ids;      // physical node of each group node, in order of first appearance
  std::vector<int> node_of_rank;  // group node index (0..nodes-1) per EP rank
  int nodes() const { return static_cast<int>(node_ids.size()); }
  std::vector<double> node_tokens;  // [src * nodes + n]: tokens reaching node n
  std::vector<double> rank_tokens;  // [src * ep + r]: tokens with >=1 expert on rank r
  std::vector<double> expert_rows;  // [src * ep + r]: (token, expert) pairs on rank r
};

struct MoeTraffic {
  MoePhase phase = MoePhase::Dispatch;
  std::vector<MoeTransfer> transfers;  // no self transfers
  std::vector<int> ep_group;
  std::vector<double> received_rows;  // per EP rank: tokens x experts hosted
  // DeepEP's benchmark byte counts per EP rank, as its printed GB/s count
  // them (deepseek-ai/DeepEP @ dd758ca, tests/legacy/test_internode.py
  // l.60-63, 224-227, 239-264, 301-311; tests/legacy/test_intranode.py
  // l.188-189, 198-220, 255-262):
  //  * rdma: the number of (token, distinct target node) pairs of this GPU's
  //    tokens, the GPU's OWN node included, x hidden x 2 (BF16), x (1 + 4/128)
  //    / 2 for FP8 dispatch: i.e. x bytes per token. Combine uses the same
  //    pair count x BF16 bytes. Logical bytes: the own-node copy never
  //    crosses IB, which is how EP32 can print 58 GB/s on a 50 GB/s NIC.
  //  * nvl: rows this GPU receives (recv_x: one per distinct token, from
  //    every source including itself) x bytes per token.
  // The time divided into them is the dispatch (combine) kernel's mean
  // duration from the profiler, excluding the separate notify kernel (the
  // size exchange), with the best of a sweep of chunk sizes; internode runs
  // report rdma bytes / t ("RDMA" bandwidth), intranode runs nvl bytes / t.
  std::vector<double> deepep_rdma_bytes;
  std::vector<double> deepep_nvl_bytes;
  bool internode = false;  // the group spans more than one node
};

// Expected distinct nodes per token under balanced node-limited top-k routing
// (i.i.d. expert scores, the max_nodes nodes with the best expert, then top_k
// of their experts) over `nodes` nodes of `experts_per_node` experts; exact
// (see moe_traffic.cpp). V3 at EP64 (8, 32, 8, 4): 3.98.
double expected_nodes_per_token(int nodes, int experts_per_node, int top_k, int max_nodes);

// Token counts of the routing model (balanced: closed form; others sampled).
RoutingCounts routing_counts(const hw::Topology& topo, const MoeTrafficParams& p);

// The point-to-point transfers of one dispatch or combine. Throws
// std::invalid_argument on inconsistent parameters.
MoeTraffic moe_traffic(const hw::Topology& topo, const MoeTrafficParams& p, MoePhase phase);
MoeTraffic moe_traffic(const hw::Topology& topo, const MoeTrafficParams& p, const RoutingCounts& c,
                       MoePhase phase);

// Achievable fraction of nominal link capacity, and the SM bound on a GPU's
// injection rate. The defaults equal data/network/efficiency.json, which
// holds the sources; load_network_efficiency() reads that file.
struct NetworkEfficiency {
  double nvlink = 0.8;  // 160 of 200 GB/s: V3 report sec. 3.2.2, ISCA'25 sec. 4.3
  double ib = 0.8;      // 40 of 50 GB/s: ISCA'25 (arXiv 2505.09343) sec. 4.3
  int comm_sms = 20;             // SMs given to the communication kernels
  int saturating_comm_sms = 20;  // V3 report sec. 3.2.2: 20 SMs saturate IB + NVLink
  // Factor on a GPU's egress links: min(1, comm_sms / saturating_comm_sms).
  // DeepEP pairs SMs into channels that each push at a bounded rate, so below
  // the saturating count the rate a GPU can inject scales with its SMs.
  double sm_factor() const;
};

// The embedded data/network/efficiency.json (comm_sms = its saturating count).
NetworkEfficiency load_network_efficiency();

// Capacities (bytes/s) of topo's links after efficiency: NVLink links (an end
// is an NVSwitch) x nvlink, others x ib, and links leaving a GPU x sm_factor.
std::vector<double> effective_capacities_Bps(const hw::Topology& topo, const NetworkEfficiency& eff);

// Bytes each topology link carries (index = link index) when every transfer
// follows topo.route(src, dst).
std::vector<double> link_bytes(const hw::Topology& topo, const std::vector<MoeTransfer>& transfers);

// max over links of bytes / effective capacity (no latency): the idle-network
// lower bound of the collective's time.
Time bottleneck_time(const hw::Topology& topo, const std::vector<double>& bytes_per_link,
                     const NetworkEfficiency& eff);

struct MoeRunResult {
  Time time{};           // last transfer done (with causality, see top)
  Time inter_node_end{}; // last InterNode transfer done
  Time nvlink_end{};     // last IntraNode/Forward transfer done
  // DeepEP's reported bandwidth: mean logical bytes per GPU (rdma when the
  // group spans nodes, else nvl) / time, bytes/s.
  double deepep_bandwidth_Bps = 0;
};

// Runs every transfer as one flow on a fresh FlowNetwork over topo's links
// (effective capacities, link latencies), all started at t=0.
MoeRunResult run_moe_traffic(const hw::Topology& topo, const MoeTraffic& traffic,
                             const NetworkEfficiency& eff);

}  // namespace trainsim::model
