#pragma once
// `trainsim collective`: one collective on a scenario's cluster, timed by the
// flow model at a range of sizes, printed the way nccl-tests prints it.
//
// The group is the first N GPUs of the cluster (ids 0..N-1, node-major: the
// GPUs of node 0, then node 1, ...), which is how the scenario's EP groups are
// laid out. The links are the cluster topology's, at their achievable rates
// (model::NetworkEfficiency: NVLink 160 of 200 GB/s, IB 40 of 50).
//
// Columns follow nccl-tests (src/*.cu, *GetBw and *GetCollByteCount):
//   size   bytes: all-reduce: the buffer each rank reduces; all-gather: the
//          gathered output (N x each rank's part); reduce-scatter: the input
//          (N x each rank's output); all-to-all: each rank's send buffer
//          (N x the part sent to each peer). moe-dispatch / moe-combine:
//          tokens per GPU x bytes per token (FP8 + scales or BF16 dispatch,
//          BF16 combine, from the scenario's model and precision).
//   count  elements of `type` in size (moe ops: tokens per GPU).
//   algbw  size / time.
//   busbw  algbw x 2(N-1)/N (all-reduce), x (N-1)/N (the others; moe ops
//          as all-to-all).
// Ring collectives (NCCL's ring algorithm as sim/collectives schedules it) and
// the pairwise all-to-all run on a FlowNetwork with sim::run_collective. The
// moe ops run model::moe_traffic (balanced routing, the scenario's top-k and
// node limit, its comm SMs) and add DeepEP's bottleneck bandwidth (logical
// RDMA bytes per GPU / time when the group spans nodes, NVLink bytes inside
// one node).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "trainsim/app/scenario.hpp"

namespace trainsim::app {

enum class CollectiveOp { AllReduce, AllGather, ReduceScatter, AllToAll, MoeDispatch, MoeCombine };

std::optional<CollectiveOp> parse_collective_op(std::string_view name);
const char* to_string(CollectiveOp op);
std::string collective_op_names();  // "all-reduce|all-gather|..."

// "LOW:HIGH" with optional K, M, G suffixes (powers of 1024, as nccl-tests'
// -b/-e); throws InputError naming `option` when malformed or LOW > HIGH.
struct SizeRange {
  double low_bytes = 0;
  double high_bytes = 0;
};
SizeRange parse_size_range(const std::string& text, const std::string& option = "--bytes");

struct CollectiveParams {
  CollectiveOp op = CollectiveOp::AllReduce;
  int group = 0;                   // N: the first N GPUs
  std::optional<SizeRange> sizes;  // required for the NCCL ops
  std::optional<double> tokens;    // moe ops: tokens per GPU (default: micro-batch x sequence)
};

struct CollectiveRow {
  double size_bytes = 0;
  std::int64_t count = 0;
  double time_us = 0;
  double algbw_GBps = 0;
  double busbw_GBps = 0;
  std::optional<double> deepep_GBps;  // moe ops
};

struct CollectiveStudy {
  std::string scenario;
  CollectiveOp op = CollectiveOp::AllReduce;
  int group = 0;
  std::string type;  // element type of `count`
  std::vector<CollectiveRow> rows;
};

// Throws InputError (option name and value) on a group that is not a divisor
// of the cluster's GPUs, missing or bad sizes, or a moe op on a dense model.
CollectiveStudy run_collective_study(const Scenario& scenario, const CollectiveParams& params);

std::string collective_text(const CollectiveStudy& study);
nlohmann::json collective_json(const CollectiveStudy& study);

}  // namespace trainsim::app
