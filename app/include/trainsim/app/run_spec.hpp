#pragma once
// What a scenario says about the whole run beyond one step: its phases
// (`phases`) and its failures (`reliability`). Parsed by scenario.cpp,
// priced by run_cost.hpp. A phase is the scenario's base step with
// overrides: its own sequence length, batch (constant or a ramp), length and
// partial parallelism or precision; what it does not say it inherits from
// `training`, `parallelism` and `precision`.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace trainsim::app {

enum class PhaseKind { Pretraining, ContextExtension, PostTraining };
const char* to_string(PhaseKind k);

// Batch size growing linearly in tokens from `from` to `to` sequences over
// the phase's first `over_tokens` tokens, then constant at `to`. Discretised
// into `segments` equal token spans (segments + 1 simulated batch sizes).
struct BatchRamp {
  std::int64_t from = 0;
  std::int64_t to = 0;
  double over_tokens = 0;
  int segments = 8;
};

struct PhaseSpec {
  std::string name;
  PhaseKind kind = PhaseKind::Pretraining;
  std::string path;    // JSON pointer of the phase ("/phases/2"), for messages
  std::string source;  // where its numbers come from (free text, echoed)
  std::int64_t seq_len = 0;
  std::int64_t global_batch_size = 0;  // the constant batch; with a ramp, ramp.to
  std::optional<BatchRamp> ramp;
  double tokens = 0;                  // the phase's length (from `steps` when given so)
  std::optional<std::int64_t> steps;  // the length as written in steps
  // Partial overrides as written: {"parallelism": {...}, "precision": {...}}.
  nlohmann::json overrides = nlohmann::json::object();
};

// Failure rates, checkpoint and restart costs. Defaults (see run_cost.cpp
// for the sources): Llama 3's 54-day 16,384-GPU interruption log, Llama 3's
// storage throughput per GPU, a checkpoint of weights + optimizer state.
struct ReliabilitySpec {
  // Interruptions of the job per 1000 days of one GPU, of one node (host,
  // network, software: all that is not a GPU); 0: none.
  double gpu_failures_per_1000_gpu_days = 0;
  double node_failures_per_1000_node_days = 0;
  double checkpoint_size_gib = 0;
  double checkpoint_write_GBps = 0;  // aggregate, whole job
  double restart_s = 0;
  std::optional<double> checkpoint_interval_s;  // default: Daly's optimum
};

}  // namespace trainsim::app
