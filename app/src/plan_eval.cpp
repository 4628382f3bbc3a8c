// Timing the jobs of a plan: estimated (the pipeline estimate of the stage
// partition search, model::StepInputs::estimate_only), screened (the
// cluster execution at few micro-batches, extrapolated) or exact (the
// scenario's micro-batch count), on a pool of threads.
//
// Screening. A step with m micro-batches is a warm-up, a steady state in
// which every rank repeats the same work per micro-batch, and a cool-down,
// followed by the gradient synchronisation and the optimizer; only the
// steady state grows with m. A job is simulated once at m1 < m (the fewest
// micro-batches that fill the warm-up: 2 x pp, rounded up to what the
// schedule accepts) and extrapolated:
//     T(m) = T(m1) + (m - m1) x period,
// where the period is measured in that same run: the busiest rank's work
// per micro-batch (one overlapped F&B op under DualPipe, two under
// DualPipeV, the mean of F + backward otherwise), as the cluster execution
// timed it, contention included. What this misses: a steady state that
// does not settle by m1 (pipeline transfers that pile up), and kernels
// whose duration depends on which micro-batch runs beside them. The error
// against exact runs is measured and reported (docs/PLANNING.md).
// Memory: activations in flight saturate once the warm-up is filled, except
// under GPipe (all m in flight), whose activations are scaled by m / m1.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>

#include "trainsim/app/plan.hpp"
#include "trainsim/app/report.hpp"
#include "trainsim/common/progress.hpp"
#include "trainsim/common/units.hpp"

namespace trainsim::app {

int screening_microbatches(const PlanLayout& l, std::int64_t microbatches) {
  // DualPipe(V) need 2 x pp; interleaved fills its warm-up by about v x pp;
  // the others reach their steady state at pp (the period is measured as
  // work per micro-batch, which needs no steady state to be reached).
  int m1 = l.pp;
  if (l.schedule == model::ScheduleKind::DualPipe || l.schedule == model::ScheduleKind::DualPipeV) m1 = 2 * l.pp;
  if (l.schedule == model::ScheduleKind::Interleaved) m1 = std::max(2, l.virtual_stages) * l.pp;
  // Too little left to gain: simulate the real count.
  if (microbatches <= static_cast<std::int64_t>(m1) + l.pp) return static_cast<int>(microbatches);
  return m1;
}

namespace {

// The busiest rank's steady-state work per micro-batch, in seconds.
double steady_period_s(const model::StepResult& st) {
  const model::Schedule& s = st.schedule;
  double worst = 0;
  for (int r = 0; r < s.ranks; ++r) {
    const auto& ops = s.per_rank[static_cast<std::size_t>(r)];
    double all = 0, fb = 0;
    int pairs = 0;
    for (const auto& t : st.exec.timeline[static_cast<std::size_t>(r)]) {
      const double d = (t.end - t.start).to_seconds();
      all += d;
      if (ops[static_cast<std::size_t>(t.index)].type == model::ChunkOpType::FB) fb += d, ++pairs;
    }
    const double fb_per_microbatch = s.kind == model::ScheduleKind::DualPipeV ? 2.0 : 1.0;
    worst = std::max(worst, pairs > 0 ? fb / pairs * fb_per_microbatch : all / s.microbatches);
  }
  return worst;
}

// Peak memory per ZeRO stage from a run at stage `ran` (0 or 1): the state
// of every rank re-sharded (weights 2, gradients 4, optimizer 8 bytes per
// parameter, as model::memory_per_rank counts them), activations scaled.
std::map<int, double> memory_by_zero(const model::StepResult& st, int ran, const std::vector<int>& zeros,
                                     double activation_scale) {
  std::map<int, double> peak;
  for (int z : zeros) {
    double worst = 0;
    for (const auto& m : st.memory) {
      // At stage 1 the optimizer bytes are 8 x the sharded parameter count
      // S and the weights 2 x the unsharded count P; at stage 0 both are
      // unsharded.
      const double w = m.weights_bytes, g = m.gradients_bytes, o = m.optimizer_bytes;
      double state = w + g + o;
      if (ran == 1 && z >= 2) state -= g - o / 2;
      if (ran == 1 && z >= 3) state -= w - o / 4;
      worst = std::max(worst, state + m.activations_bytes * activation_scale + m.transient_bytes);
    }
    peak[z] = worst / kGiB;
  }
  return peak;
}

nlohmann::json exact_detail(const Simulation& sim) {
  const auto r = make_report(sim);
  nlohmann::json mem = r["memory"];
  mem.erase("per_rank");
  return {{"mfu", r["mfu"]}, {"breakdown", r["breakdown"]}, {"memory", mem},
          {"critical_gpu", r["cluster_simulation"]["critical_gpu"]["gpu"]}};
}

// The pipeline estimate at the real micro-batch count (cheap: no cluster
// execution, so nothing to extrapolate).
JobResult estimate_job(const PlanJob& pj, int job) {
  SimulateOptions o;
  o.estimate_only = true;
  const Simulation sim = simulate(pj.scenario, o);
  JobResult r;
  r.job = job;
  r.estimated = true;
  r.simulated_microbatches = static_cast<int>(pj.scenario.microbatches_per_step());
  r.step_time_s = sim.step.step_time.to_seconds();
  r.peak_gib = memory_by_zero(sim.step, pj.layout.zero_stage, pj.zero_stages, 1.0);
  return r;
}

}  // namespace

JobResult evaluate_job(const PlanSpace& space, int job, EvalLevel level) {
  const PlanJob& pj = space.jobs[static_cast<std::size_t>(job)];
  const std::int64_t m = pj.scenario.microbatches_per_step();
  if (level == EvalLevel::Estimate) return estimate_job(pj, job);
  const bool exact = level == EvalLevel::Exact;
  const int m1 = exact ? static_cast<int>(m) : screening_microbatches(pj.layout, m);
  Scenario s = pj.scenario;
  s.training.global_batch_size = static_cast<std::int64_t>(m1) * s.plan.dp * s.plan.micro_batch_size;
  const Simulation sim = simulate(s);
  JobResult r;
  r.job = job;
  r.exact = m1 == m;
  r.simulated_microbatches = m1;
  r.step_time_s = sim.step.step_time.to_seconds() + static_cast<double>(m - m1) * steady_period_s(sim.step);
  const bool gpipe = pj.layout.schedule == model::ScheduleKind::GPipe;
  const double scale = gpipe ? static_cast<double>(m) / m1 : 1.0;
  r.peak_gib = memory_by_zero(sim.step, pj.layout.zero_stage, pj.zero_stages, scale);
  if (exact) r.detail = exact_detail(sim);
  return r;
}

std::vector<JobResult> evaluate_jobs(const PlanSpace& space, const std::vector<int>& jobs, EvalLevel level,
                                     int threads, Progress* progress) {
  const bool exact = level == EvalLevel::Exact;
  std::vector<JobResult> out(jobs.size());
  // Longest first (simulation cost grows with the micro-batches simulated),
  // for balance; results keep their places whatever the order.
  std::vector<std::size_t> order(jobs.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto cost = [&](std::size_t i) {
    const PlanJob& j = space.jobs[static_cast<std::size_t>(jobs[i])];
    return exact ? j.scenario.microbatches_per_step()
                 : screening_microbatches(j.layout, j.scenario.microbatches_per_step());
  };
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return cost(a) > cost(b); });
  std::atomic<std::size_t> next{0};
  std::exception_ptr error;
  std::mutex mu;
  auto worker = [&] {
    for (std::size_t k = next++; k < order.size(); k = next++) {
      try {
        out[order[k]] = evaluate_job(space, jobs[order[k]], level);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
      }
      if (progress) progress->advance();
    }
  };
  int n = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  n = std::max(1, std::min<int>(n, static_cast<int>(jobs.size())));
  std::vector<std::thread> pool;
  for (int i = 1; i < n; ++i) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
  return out;
}

std::vector<int> shard_jobs(const PlanSpace& space, int shard, int shards) {
  std::vector<int> v;
  for (int j = 0; j < static_cast<int>(space.jobs.size()); ++j)
    if (j % shards == shard) v.push_back(j);
  return v;
}

std::vector<int> shard_slice(const std::vector<int>& jobs, int shard, int shards) {
  std::vector<int> v;
  for (std::size_t k = 0; k < jobs.size(); ++k)
    if (static_cast<int>(k % static_cast<std::size_t>(shards)) == shard) v.push_back(jobs[k]);
  return v;
}

std::vector<JobResult> by_job(const PlanSpace& space, const std::vector<JobResult>& results) {
  std::vector<JobResult> out(space.jobs.size());
  for (const auto& r : results) out.at(static_cast<std::size_t>(r.job)) = r;
  return out;
}

nlohmann::json to_json(const JobResult& r) {
  nlohmann::json mem = nlohmann::json::object();
  for (const auto& [z, g] : r.peak_gib) mem[std::to_string(z)] = g;
  nlohmann::json j = {{"job", r.job},
                      {"estimated", r.estimated},
                      {"exact", r.exact},
                      {"simulated_microbatches", r.simulated_microbatches},
                      {"step_time_s", r.step_time_s},
                      {"peak_gib_by_zero_stage", mem}};
  if (!r.detail.is_null()) j["detail"] = r.detail;
  return j;
}

JobResult job_result_from_json(const nlohmann::json& j) {
  JobResult r;
  r.job = j.at("job").get<int>();
  r.estimated = j.at("estimated").get<bool>();
  r.exact = j.at("exact").get<bool>();
  r.simulated_microbatches = j.at("simulated_microbatches").get<int>();
  r.step_time_s = j.at("step_time_s").get<double>();
  for (const auto& [z, g] : j.at("peak_gib_by_zero_stage").items()) r.peak_gib[std::stoi(z)] = g.get<double>();
  if (j.contains("detail")) r.detail = j["detail"];
  return r;
}

}  // namespace trainsim::app
