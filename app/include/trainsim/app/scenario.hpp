#pragma once
// A scenario file fully determines a run: model, cluster, parallel layout,
// precision, training length, price and calibration profile. Loading is
// strict: unknown keys, wrong types, out-of-range values and layouts that do
// not divide are InputErrors naming the file, the JSON path, the value and
// what was expected. The resolved scenario (every default filled in, presets
// expanded) is echoed into the report.
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "trainsim/common/precision.hpp"
#include "trainsim/hardware/cluster.hpp"
#include "trainsim/model/architecture.hpp"
#include "trainsim/model/parallel.hpp"

namespace trainsim::app {

struct TrainingSpec {
  std::int64_t seq_len = 4096;
  std::int64_t global_batch_size = 1;  // sequences per optimizer step
  double tokens = 0;                   // tokens of the whole run
};

struct Scenario {
  std::string file;
  std::string name;
  std::string model_ref;  // preset name, or "inline"
  model::Architecture arch;
  hw::ClusterSpec cluster;
  model::ParallelPlan plan;
  Precision gemm_precision = Precision::BF16;
  TrainingSpec training;
  double usd_per_gpu_hour = 0;
  std::string calibration = "h800";  // profile name or path

  std::int64_t microbatches_per_step() const;  // per pipeline
  std::int64_t tokens_per_step() const { return training.global_batch_size * training.seq_len; }
};

// Loads and validates; throws InputError on any problem.
Scenario load_scenario(const std::string& file);
Scenario parse_scenario(const nlohmann::json& j, const std::string& file);
// The fully resolved scenario (presets expanded, defaults filled in).
nlohmann::json to_json(const Scenario& s);

}  // namespace trainsim::app
