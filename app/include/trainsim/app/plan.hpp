#pragma once
// `trainsim plan`: search the parallel layouts of a scenario's model on its
// cluster type, rank them by cost, time or throughput, and say why the
// others were rejected. Method in docs/PLANNING.md; in short:
//
// 1. Enumerate (plan_space.cpp): GPU counts x tp x pp x ep x ZeRO stage x
//    micro-batch size x schedule (virtual stages for interleaved) x
//    recompute x communication SMs (x precision when asked). Every candidate
//    is the scenario's resolved JSON with the layout patched in and read back
//    by parse_scenario: a layout built here passes exactly the checks a
//    scenario file passes, and a failure becomes a rejected family keyed by
//    the JSON path and the expected-value text with numbers blanked.
//    Survivors are checked against an estimate of the memory per GPU
//    (balanced stages, the schedule's activation peak) before any timing.
// 2. Estimate (plan_eval.cpp): ZeRO stages 1 and 2 time alike in the model
//    (they differ in memory only), so they share one simulation ("job").
//    Every job is estimated: its stage partition searched and the pipeline
//    schedule executed with simulated chunk times, every rank's gradient
//    sync alone on the fabric (model::StepInputs::estimate_only; no cluster
//    execution, so no contention between GPUs).
// 3. Screen: the best fraction of each cluster size's feasible jobs by the
//    estimated objective (and the scenario's own layout) run the cluster
//    execution at m1 micro-batches (the fewest the schedule accepts with its
//    warm-up filled), extrapolated to the real count with the steady-state
//    period of the busiest rank measured in that same run.
// 4. Rank and confirm: screened jobs are ranked by the screened objective;
//    the best K and the scenario's own layout are simulated exactly (the
//    real micro-batch count). Every row says whether its figures are
//    estimated, screened or exact, and the plan reports how far estimates
//    were from the screened figures where both exist.
//
// Determinism: jobs have fixed indices from the enumeration; threads, shards
// and MPI ranks only decide who computes a job, never its result or place.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "trainsim/app/scenario.hpp"

namespace trainsim {
class Progress;
}

namespace trainsim::app {

enum class PlanObjective { Cost, Time, TokensPerSecond };
const char* to_string(PlanObjective o);

struct PlanOptions {
  std::vector<int> gpu_counts;  // empty: the scenario's cluster size
  bool gpu_range = false;       // --gpus A:B (then the Pareto front is reported)
  PlanObjective objective = PlanObjective::Cost;
  int top = 10;
  bool vary_precision = false;  // also try bf16 and fp8 (where the GPU has it)
  bool vary_comm_sms = false;   // also try the scenario's communication SMs -8 and +8
  int shard = 0, shards = 1;    // --shard i/N
  int threads = 0;              // 0: all hardware threads
  bool progress = false;        // draw a progress line (on a terminal)
  // The share of each cluster size's feasible jobs (best by estimate) that
  // the cluster execution screens; at least `top` of them.
  double screen_fraction = 0.25;
  // --gpu-types: GPU presets to compare, each with its price per GPU-hour
  // (negative: the scenario's price). Empty: the scenario's GPU only.
  std::vector<std::pair<std::string, double>> gpu_types;
  double deadline_days = 0;  // --days: > 0 asks which layout finishes in time, and what a day is worth
};

// "2048" or "1024:4096" (doubling from A, B included); multiples of
// `gpus_per_node`. Throws InputError naming --gpus.
void parse_gpu_option(const std::string& text, int gpus_per_node, PlanOptions& opt);
// "H800,H100=2.5,B200=4.1": GPU presets (data/gpus) with optional prices in
// dollars per GPU-hour. Throws InputError naming --gpu-types.
void parse_gpu_types_option(const std::string& text, PlanOptions& opt);
// "i/N" with 0 <= i < N. Throws InputError naming --shard.
void parse_shard_option(const std::string& text, PlanOptions& opt);
PlanObjective parse_objective(const std::string& text);

// One point of the search; zero_stage 1 stands for 1, 2 and 3 in a job.
struct PlanLayout {
  std::string gpu;  // GPU preset name (the scenario's GPU unless --gpu-types)
  int gpus = 0, tp = 1, pp = 1, ep = 1, dp = 1, zero_stage = 1, micro_batch_size = 1, virtual_stages = 1;
  model::ScheduleKind schedule = model::ScheduleKind::OneFOneB;
  model::Recompute recompute = model::Recompute::Selective;
  int comm_sms = 0;
  Precision precision = Precision::BF16;
};
nlohmann::json to_json(const PlanLayout& l);
PlanLayout layout_of(const Scenario& s);

// One simulation: a layout with the ZeRO stages that share its timing.
struct PlanJob {
  PlanLayout layout;
  std::vector<int> zero_stages;  // candidates that passed validation and the memory estimate
  Scenario scenario;             // validated; zero_stage = layout.zero_stage
};

struct RejectedFamily {
  std::string key;     // json path + reason with numbers blanked, or "memory ..."
  std::string reason;  // the first member's full reason
  std::int64_t count = 0;
  double min_need_gib = 0, max_need_gib = 0;  // memory families
};

struct PlanSpace {
  std::vector<PlanJob> jobs;
  std::vector<RejectedFamily> families;  // sorted by key
  std::int64_t candidates = 0;           // layouts enumerated
  std::int64_t layouts = 0;              // layouts left for timing (jobs x their zero stages)
  int reference_job = -1;                // the scenario's own layout
};

PlanSpace enumerate_plan(const Scenario& base, const PlanOptions& opt);

// The memory estimate before timing: the largest rank's weights, gradients
// and optimizer state for balanced stages, plus the schedule's peak
// activation chunks at balanced stage size, plus the largest transient.
double estimated_memory_gib(const Scenario& s);

// How a job is timed: the pipeline estimate, the cluster execution at few
// micro-batches extrapolated, or the cluster execution at the real count.
enum class EvalLevel { Estimate, Screen, Exact };

// What a simulation says about a job. job -1: not evaluated at this level.
struct JobResult {
  int job = -1;
  bool estimated = false;  // the pipeline estimate (EvalLevel::Estimate)
  bool exact = false;
  int simulated_microbatches = 0;  // m1 when screened
  double step_time_s = 0;
  std::map<int, double> peak_gib;   // per ZeRO stage of the job
  nlohmann::json detail;            // exact runs: breakdown and memory parts
};
nlohmann::json to_json(const JobResult& r);
JobResult job_result_from_json(const nlohmann::json& j);

// The micro-batch counts of the screening run (m1 <= m): the smallest count
// the schedule accepts that fills its warm-up. Returns m when m is small.
int screening_microbatches(const PlanLayout& l, std::int64_t microbatches);
JobResult evaluate_job(const PlanSpace& space, int job, EvalLevel level);
// Evaluates `jobs` on `threads` threads; results in the order of `jobs`.
std::vector<JobResult> evaluate_jobs(const PlanSpace& space, const std::vector<int>& jobs, EvalLevel level,
                                     int threads, Progress* progress);
// `results` (in the order of `jobs`) placed at their job indices in a vector
// of every job; the others keep job = -1.
std::vector<JobResult> by_job(const PlanSpace& space, const std::vector<JobResult>& results);

// The jobs the cluster execution screens, given every job's estimate (by job
// index): per cluster option (GPU type, GPU count), the best `screen_fraction` of the feasible ones by
// the estimated objective (at least `top`), and the reference. Sorted.
std::vector<int> screen_jobs(const PlanOptions& opt, const PlanSpace& space, const std::vector<JobResult>& estimated);

// The jobs of shard i of N: j % N == i.
std::vector<int> shard_jobs(const PlanSpace& space, int shard, int shards);
// The same slice of a list of jobs: its k-th entries with k % N == i.
std::vector<int> shard_slice(const std::vector<int>& jobs, int shard, int shards);

// The plan: ranked rows, families, Pareto front, reference layout.
// `estimated` and `screened` are indexed by job (job -1: not evaluated);
// `exact` gives an exact result for a job (simulating or looking up).
using ExactSource = std::function<std::vector<JobResult>(const std::vector<int>& jobs)>;
nlohmann::json finalize_plan(const Scenario& base, const PlanOptions& opt, const PlanSpace& space,
                             const std::vector<JobResult>& estimated, const std::vector<JobResult>& screened,
                             const ExactSource& exact);

// The jobs a shard must also run exactly so that a merge needs no
// simulation: its own best K and best per cluster option by the screened
// objective (as finalize_plan ranks: raised to the estimate), and the
// reference. Both vectors by job index.
std::vector<int> shard_exact_jobs(const PlanOptions& opt, const PlanSpace& space,
                                  const std::vector<JobResult>& estimated, const std::vector<JobResult>& screened);

// Whole runs. `run_plan` does everything on this process (threads); a shard
// run returns a part instead; `merge_plan_parts` turns parts into the plan.
nlohmann::json run_plan(const Scenario& base, const PlanOptions& opt, Progress* progress);
nlohmann::json run_plan_part(const Scenario& base, const PlanOptions& opt, Progress* progress);
nlohmann::json merge_plan_parts(const std::vector<nlohmann::json>& parts, const std::vector<std::string>& files);

std::string plan_text(const nlohmann::json& plan);

}  // namespace trainsim::app
