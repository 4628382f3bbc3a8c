#pragma once
// The report of a simulated scenario: the headline numbers at the top level
// (step time, throughput, MFU, GPU-hours, cost), the breakdown of a step, the
// memory per GPU, the fully resolved scenario, the calibration profile used
// and the assumptions made. Every number is computed here from the step
// simulation; nothing is adjusted afterwards.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "trainsim/app/scenario.hpp"
#include "trainsim/hardware/calibration.hpp"
#include "trainsim/model/step.hpp"

namespace trainsim::app {

struct Simulation {
  Scenario scenario;
  hw::CalibrationProfile profile;
  model::StepResult step;
  std::string fidelity_reason;  // why the step ran at this fidelity
};

// How many GPUs the step simulation instantiates. Auto: one replica per
// pipeline rank when the scenario is provably symmetric, every GPU otherwise.
enum class FidelityChoice { Auto, Collapsed, Full };

struct SimulateOptions {
  FidelityChoice fidelity = FidelityChoice::Auto;
  bool record = false;  // keep kernels and transfers for chrome_trace
  bool progress = false;  // a progress line on stderr while simulating (terminals only)
  bool estimate_only = false;  // model::StepInputs::estimate_only (the planner's first screen)
};

// What in the scenario makes replicas of a rank differ (stragglers, skewed
// routing, faults); empty when every replica of a rank is an exact copy.
std::vector<std::string> symmetry_breakers(const Scenario& scenario);

// Runs the step simulation for a loaded scenario. Collapsed fidelity asked
// for a scenario that breaks the symmetry is an InputError (`option` names
// the command-line option for the message).
Simulation simulate(const Scenario& scenario, const SimulateOptions& options = {},
                    const std::string& option = "--fidelity");
// The scenario's calibration profile; a profile that does not load is an
// InputError naming the scenario file and /calibration (and the profile's own
// error).
hw::CalibrationProfile load_scenario_profile(const Scenario& scenario);

// The version of the report's layout, `schema_version` in every report; the
// layout is docs/report-schema.json. Bump it with any change of a key there.
inline constexpr int kReportSchemaVersion = 1;

nlohmann::json make_report(const Simulation& sim);
// The same with the whole run priced (run_cost.hpp): adds the `run` block
// (phases, totals, failures); with explicit phases, the top-level
// total_gpu_hours, total_cost_usd and wall_clock_days are the run's totals.
struct RunResult;
nlohmann::json make_report(const Simulation& sim, const RunResult& run);
// A readable multi-line summary of a report.
std::string summary_text(const nlohmann::json& report);
// Chrome/Perfetto trace (JSON object format) of one step: one process per
// simulated GPU (pipeline rank), with a pipeline-chunk track and, inside
// each chunk, its compute-stream and communication-stream kernels.
nlohmann::json chrome_trace(const Simulation& sim);

}  // namespace trainsim::app
