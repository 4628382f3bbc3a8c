#pragma once
// The price of a whole training run: its phases, each simulated, and the
// expected cost of failures.
//
// Phases. A scenario may list phases (pre-training with a batch-size ramp,
// context extension at 32K and 128K, post-training); without `phases` the run
// is one pre-training phase made of `training`. Every phase is the base
// scenario with that phase's overrides, built as a scenario JSON and loaded
// by parse_scenario, so it passes every layout check a scenario file passes,
// and simulated by the same simulate() as `trainsim simulate`: attention
// cost and memory at 32K or 128K come from the step model, not a scaling
// rule. A phase whose peak memory exceeds the GPU is an input error naming
// the phase (an explicit phase only; the implicit one reports as before).
//
// Batch ramp. The batch grows linearly in tokens (DeepSeek-V3: "gradually",
// 3072 to 15360 sequences over 469B tokens; linear is our assumption). The
// ramp is cut into `segments` equal token spans; the batch at each of the
// segments + 1 boundaries is rounded to the nearest batch the phase's layout
// accepts (a multiple of dp x micro_batch_size whose micro-batch count the
// schedule accepts; with DualPipe, PP 16 and DP 128 the smallest is 4096, so
// V3's 3072 runs as 4096) and simulated. Seconds per token f(b) are
// integrated over tokens with the trapezoid rule (steps and the step
// breakdown with the same weights). While f is monotone along the ramp
// (bigger batch, smaller bubble share) the exact integral of the rounded
// schedule lies between the left and right Riemann sums, so half their
// difference, reported as `discretisation_bound_gpu_hours`, bounds the
// error of the trapezoid; the rounding of each point is reported next to it.
//
// Failures (Young 1974, Daly 2006). Failures of the job arrive as a Poisson
// process at rate G x (GPU rate) + N x (node rate), rates in failures per
// 1000 GPU- or node-days (job MTBF M; infinite when both are 0). A checkpoint
// takes C = size / write bandwidth and blocks training (no asynchronous
// checkpointing); a failure costs a restart R and the work since the last
// checkpoint. With checkpoints every tau seconds of work, Daly's expected
// wall time for T seconds of work is
//     W = M e^{R/M} (e^{(tau + C)/M} - 1) T / tau,
// and his optimal tau is sqrt(2CM) [1 + sqrt(C/2M)/3 + (C/2M)/9] - C for
// C < 2M, else M (Young's first-order optimum: sqrt(2CM)). W splits into
// the work T, checkpoint writes T C / tau, restarts (W / M failures x R) and
// the lost work (the rest). Ignored: failures correlated in time or space,
// slow degradations (stragglers: see `stragglers`), planned maintenance, the
// final checkpoint's placement, and spare capacity (a failed node is
// replaced within R). Not validated against a run: the failure rates are
// Llama 3's measured ones, the formulas are checked against their closed
// forms in tests/app/test_run_cost.cpp, and the defaults reproduce Llama 3's
// MTBF and stay above its ">90% effective training time" (docs/VALIDATION.md).
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "trainsim/app/report.hpp"
#include "trainsim/app/run_spec.hpp"
#include "trainsim/app/scenario.hpp"

namespace trainsim::app {

// ---- failures and checkpoints ------------------------------------------------

// Young's first-order optimal checkpoint interval sqrt(2 C M) (seconds of work).
double young_interval_s(double checkpoint_s, double mtbf_s);
// Daly's higher-order optimum (2006, eq. 37): see the essay above.
double daly_interval_s(double checkpoint_s, double mtbf_s);

struct FailureModel {
  double mtbf_s = 0;        // of the whole job; +infinity: no failures
  double checkpoint_s = 0;  // C
  double restart_s = 0;     // R
  std::optional<double> interval_s;  // tau; default: daly_interval_s
};

struct Goodput {
  double work_s = 0;          // T: failure-free seconds
  double wall_s = 0;          // W: expected seconds with failures
  double interval_s = 0;      // tau used (0 when no checkpoint is needed)
  double interruptions = 0;   // expected failures, W / M
  double checkpoints = 0;     // T / tau
  double checkpoint_write_s = 0;
  double restart_total_s = 0;
  double lost_work_s = 0;
  double goodput() const { return wall_s > 0 ? work_s / wall_s : 1.0; }
};

// Expected wall time of `work_s` seconds of training under `m`. With no
// failures (mtbf infinite) and no fixed interval, wall_s == work_s exactly.
Goodput expected_goodput(double work_s, const FailureModel& m);

// The job's failure model from the scenario's reliability block.
FailureModel failure_model(const ReliabilitySpec& r, int gpus, int nodes);

// Defaults and their sources (documented in docs/SCENARIOS.md).
ReliabilitySpec default_reliability(const Scenario& s);

// ---- phases ------------------------------------------------------------------

// The phase's scenario at a given batch (its own seq_len, overrides), loaded
// through parse_scenario; InputErrors name the phase's JSON path.
Scenario phase_scenario(const Scenario& base, const PhaseSpec& phase, std::int64_t batch);
// The batch the phase's layout accepts nearest to `target` (ties: larger).
std::int64_t accepted_batch(const Scenario& base, const PhaseSpec& phase, std::int64_t target);
// Checks every phase (each batch it will simulate) at load time.
void check_phases(const Scenario& base);
// The phases of the run: the scenario's, or one pre-training phase from `training`.
std::vector<PhaseSpec> run_phases(const Scenario& s);

struct BatchPoint {
  std::int64_t requested = 0;  // the ramp's batch at this point (or the constant batch)
  std::int64_t simulated = 0;  // what the layout accepts
  double tokens = 0;           // tokens priced at this point (trapezoid weight)
  double steps = 0;
  double step_s = 0;
  double peak_gib = 0;
};

// Seconds of the whole phase spent in each part of the step breakdown.
struct PhaseBreakdown {
  double compute = 0, ep_dispatch = 0, ep_combine = 0, tensor_parallel = 0, pipeline_p2p = 0, data_parallel = 0,
         bubble = 0, optimizer = 0, other = 0;
  void add(const model::StepResult& step, double steps);
  void add(const PhaseBreakdown& o);
  nlohmann::json to_json() const;  // hours of the phase per part
};

struct PhaseResult {
  PhaseSpec spec;
  int gpus = 0;
  double usd_per_gpu_hour = 0;
  std::vector<BatchPoint> points;
  double tokens = 0, steps = 0, seconds = 0;
  double discretisation_bound_s = 0;
  double peak_gib = 0, capacity_gib = 0;
  PhaseBreakdown breakdown;
  nlohmann::json layout;  // the phase's resolved parallelism and precision
  Goodput goodput;        // work_s == seconds when there is no reliability block
};

struct RunResult {
  std::vector<PhaseResult> phases;
  bool explicit_phases = false;
  std::optional<ReliabilitySpec> reliability;
  FailureModel failures;
};

// Simulates every phase (reusing `base_sim` where a phase's step equals it).
RunResult evaluate_run(const Simulation& base_sim, const SimulateOptions& options = {});

// The report's `run` block.
nlohmann::json run_to_json(const RunResult& run);

}  // namespace trainsim::app
