#pragma once
// A scenario file fully determines a run: model, cluster, parallel layout,
// precision, training length, price and calibration profile. Loading is
// strict: unknown keys, wrong types, out-of-range values and layouts that do
// not divide are InputErrors naming the file, the JSON path, the value and
// what was expected. The resolved scenario (every default filled in, presets
// expanded) is echoed into the report.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "trainsim/app/run_spec.hpp"
#include "trainsim/common/precision.hpp"
#include "trainsim/hardware/cluster.hpp"
#include "trainsim/model/architecture.hpp"
#include "trainsim/model/moe_traffic.hpp"
#include "trainsim/model/parallel.hpp"

namespace trainsim::app {

// Limits of what one run can simulate (checked when the scenario loads, or
// before the run for options that add work).
inline constexpr std::int64_t kMaxMicrobatches = 4096;   // per pipeline per step
inline constexpr std::int64_t kMaxTraceSize = 1 << 16;   // Scenario::trace_size() with --trace (~1M events)

struct TrainingSpec {
  std::int64_t seq_len = 4096;
  std::int64_t global_batch_size = 1;  // sequences per optimizer step
  double tokens = 0;                   // tokens of the whole run
};

// GPUs slower than their peers (compute kernels take `slowdown` times as
// long): listed ones, and an optional seeded spread over all GPUs; and
// scale-out links slower than nominal, drawn (listed ones are
// cluster.network.faults with a bandwidth_factor).
struct StragglerSpec {
  struct Listed {
    int gpu = 0;
    double slowdown = 1.0;
  };
  std::vector<Listed> gpus;
  double spread_sigma = 0;   // log-normal sigma of a per-GPU factor >= 1 (0: none)
  std::uint64_t seed = 0;
  // Scale-out links (NICs and switch cables) at a drawn fraction of their
  // achievable capacity: exp(-sigma |z|) per link (0: none).
  double link_sigma = 0;
  std::uint64_t link_seed = 0;
  bool any() const { return !gpus.empty() || spread_sigma > 0 || link_sigma > 0; }
  // Per-GPU factors for `n` GPUs (empty when none): exp(sigma * |z|) with z
  // standard normal from a counter-based draw, times the listed factors.
  std::vector<double> factors(int n) const;
};

struct Scenario {
  std::string file;
  std::string name;
  std::string model_ref;  // preset name, "inline", or "hf_config:<path>"
  model::Architecture arch;
  hw::ClusterSpec cluster;
  model::ParallelPlan plan;
  Precision gemm_precision = Precision::BF16;
  TrainingSpec training;
  double usd_per_gpu_hour = 0;
  std::string calibration = "h800";  // profile name or path
  StragglerSpec stragglers;
  model::RoutingModel routing;  // /moe_routing; balanced unless given
  int routing_states = 16;      // /moe_routing/states
  // /phases: the run's phases (empty: one pre-training phase made of
  // `training`); /reliability: failures and checkpoints (none: no failures).
  std::vector<PhaseSpec> phases;
  std::optional<ReliabilitySpec> reliability;

  std::int64_t microbatches_per_step() const;  // per pipeline
  // Micro-batches x layers and modules: what a trace's size grows with
  // (about 14 events each; the default scenario has 7,680).
  std::int64_t trace_size() const;
  std::int64_t tokens_per_step() const { return training.global_batch_size * training.seq_len; }
};

// Loads and validates; throws InputError on any problem.
Scenario load_scenario(const std::string& file);
Scenario parse_scenario(const nlohmann::json& j, const std::string& file);
// The fully resolved scenario (presets expanded, defaults filled in).
nlohmann::json to_json(const Scenario& s);
// A `parallelism` object by itself (JSON pointer `path` for messages).
model::ParallelPlan parse_parallelism(const nlohmann::json& j, const std::string& file, const std::string& path);

}  // namespace trainsim::app
