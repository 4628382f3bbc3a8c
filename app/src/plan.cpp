// `trainsim plan`: ranking, the Pareto front, the reference layout, rejected
// families, the text table, and shard parts and their merge (plan.hpp).
#include "trainsim/app/plan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "trainsim/common/error.hpp"
#include "trainsim/common/progress.hpp"
#include "trainsim/common/units.hpp"

namespace trainsim::app {

namespace {

// Whole-run figures of a job from its step time (as make_report computes them).
struct Figures {
  double step_time_s = 0, tokens_per_second = 0, gpu_hours = 0, cost_usd = 0, days = 0;
};

Figures figures(const Scenario& s, double step_time_s) {
  Figures f;
  const int gpus = s.cluster.total_gpus();
  f.step_time_s = step_time_s;
  f.tokens_per_second = static_cast<double>(s.tokens_per_step()) / step_time_s;
  const double run_s = s.training.tokens / f.tokens_per_second;
  f.gpu_hours = run_s * gpus / 3600.0;
  f.cost_usd = f.gpu_hours * s.usd_per_gpu_hour;
  f.days = run_s / 86400.0;
  return f;
}

// Lower is better. Cost without a price falls back to GPU-hours.
double objective_value(PlanObjective o, const Figures& f) {
  switch (o) {
    case PlanObjective::Cost: return f.cost_usd > 0 ? f.cost_usd : f.gpu_hours;
    case PlanObjective::Time: return f.days;
    case PlanObjective::TokensPerSecond: return -f.tokens_per_second;
  }
  return 0;
}

// A timed job as a candidate row: its smallest ZeRO stage that fits.
struct Row {
  int job = -1;
  int zero_stage = -1;  // -1: no stage fits
  double peak_gib = 0;
  Figures fig;
  double objective = 0;
  bool exact = false, estimated = false;
  double estimate_s = -1;  // the job's estimated step time, where known
};

Row make_row(const PlanSpace& space, const PlanOptions& opt, const JobResult& r) {
  const PlanJob& j = space.jobs[static_cast<std::size_t>(r.job)];
  const double cap = j.scenario.cluster.gpu.hbm_capacity.value() / kGiB;
  Row row;
  row.job = r.job;
  row.exact = r.exact;
  row.estimated = r.estimated;
  if (r.estimated) row.estimate_s = r.step_time_s;
  row.peak_gib = r.peak_gib.begin()->second;
  for (const auto& [z, g] : r.peak_gib)
    if (g <= cap) {
      row.zero_stage = z;
      row.peak_gib = g;
      break;
    }
  row.fig = figures(j.scenario, r.step_time_s);
  row.objective = objective_value(opt.objective, row.fig);
  return row;
}

bool better(const Row& a, const Row& b) { return a.objective != b.objective ? a.objective < b.objective : a.job < b.job; }

// Rows that fit in memory first, then better() (for tables of exact rows).
bool fits_then_better(const Row& a, const Row& b) {
  return (a.zero_stage >= 0) != (b.zero_stage >= 0) ? a.zero_stage >= 0 : better(a, b);
}

// Feasible rows, best first (results with job -1 are skipped).
std::vector<Row> ranked_rows(const PlanSpace& space, const PlanOptions& opt, const std::vector<JobResult>& results) {
  std::vector<Row> rows;
  for (const auto& r : results) {
    if (r.job < 0) continue;
    Row row = make_row(space, opt, r);
    if (row.zero_stage >= 0) rows.push_back(row);
  }
  std::sort(rows.begin(), rows.end(), better);
  return rows;
}

nlohmann::json row_json(const PlanSpace& space, const Row& row) {
  PlanLayout l = space.jobs[static_cast<std::size_t>(row.job)].layout;
  if (row.zero_stage >= 0) l.zero_stage = row.zero_stage;
  nlohmann::json j = {{"layout", to_json(l)},
                      {"fits", row.zero_stage >= 0},
                      {"figures", row.exact ? "exact" : row.estimated ? "estimated" : "screened"},
                      {"step_time_s", row.fig.step_time_s},
                      {"tokens_per_second", row.fig.tokens_per_second},
                      {"total_gpu_hours", row.fig.gpu_hours},
                      {"total_cost_usd", row.fig.cost_usd},
                      {"wall_clock_days", row.fig.days},
                      {"peak_memory_gib", row.peak_gib},
                      {"job", row.job}};
  if (!row.estimated && row.estimate_s >= 0) j["estimated_step_time_s"] = row.estimate_s;
  const auto& zs = space.jobs[static_cast<std::size_t>(row.job)].zero_stages;
  std::vector<int> alike;
  for (int z : zs)
    if (z > row.zero_stage && row.zero_stage > 0) alike.push_back(z);
  if (!alike.empty()) j["same_time_with_zero_stages"] = alike;
  return j;
}

// Families rejected after timing: no ZeRO stage fits the simulated memory.
void add_simulated_memory_families(const PlanSpace& space, const std::vector<JobResult>& results,
                                   std::vector<RejectedFamily>& fams) {
  std::map<std::string, RejectedFamily> add;
  for (const auto& r : results) {
    if (r.job < 0) continue;
    const PlanJob& j = space.jobs[static_cast<std::size_t>(r.job)];
    const double cap = j.scenario.cluster.gpu.hbm_capacity.value() / kGiB;
    double need = 1e300;
    for (const auto& [z, g] : r.peak_gib) need = std::min(need, g);
    if (need <= cap) continue;
    const auto& l = j.layout;
    const std::string key = fmt::format("memory (simulated): pp {} ep {} tp {}", l.pp, l.ep, l.tp);
    auto [it, fresh] = add.try_emplace(
        key, RejectedFamily{key,
                            fmt::format("needs {:.0f} GiB of {:.0f} (simulated; e.g. {} mbs {} recompute {})", need,
                                        cap, model::to_string(l.schedule), l.micro_batch_size,
                                        model::to_string(l.recompute)),
                            0, need, need});
    it->second.count += static_cast<std::int64_t>(r.peak_gib.size());
    it->second.min_need_gib = std::min(it->second.min_need_gib, need);
    it->second.max_need_gib = std::max(it->second.max_need_gib, need);
  }
  for (auto& [k, f] : add) fams.push_back(f);
}

nlohmann::json families_json(std::vector<RejectedFamily> fams) {
  std::stable_sort(fams.begin(), fams.end(), [](const RejectedFamily& a, const RejectedFamily& b) {
    return a.count != b.count ? a.count > b.count : a.key < b.key;
  });
  nlohmann::json out = nlohmann::json::array();
  for (const auto& f : fams) {
    nlohmann::json j = {{"family", f.key}, {"layouts", f.count}, {"reason", f.reason}};
    if (f.max_need_gib > 0) j["needs_gib"] = {f.min_need_gib, f.max_need_gib};
    out.push_back(j);
  }
  return out;
}

// Non-dominated rows over (GPUs, days, dollars), fewest GPUs first.
nlohmann::json pareto_json(const PlanSpace& space, const std::vector<Row>& rows) {
  std::vector<Row> front;
  for (const Row& r : rows) {
    const int g = space.jobs[static_cast<std::size_t>(r.job)].layout.gpus;
    bool dominated = false;
    for (const Row& o : rows) {
      const int og = space.jobs[static_cast<std::size_t>(o.job)].layout.gpus;
      const bool no_worse = og <= g && o.fig.days <= r.fig.days && o.fig.cost_usd <= r.fig.cost_usd;
      const bool better_somewhere = og < g || o.fig.days < r.fig.days || o.fig.cost_usd < r.fig.cost_usd;
      if (no_worse && better_somewhere) {
        dominated = true;
        break;
      }
    }
    if (!dominated) front.push_back(r);
  }
  std::sort(front.begin(), front.end(), [&](const Row& a, const Row& b) {
    const int ga = space.jobs[static_cast<std::size_t>(a.job)].layout.gpus;
    const int gb = space.jobs[static_cast<std::size_t>(b.job)].layout.gpus;
    return ga != gb ? ga < gb : better(a, b);
  });
  nlohmann::json out = nlohmann::json::array();
  for (const Row& r : front) out.push_back(row_json(space, r));
  return out;
}

double at(const nlohmann::json& j, const char* a, const char* b = nullptr) {
  const nlohmann::json& x = b ? j.at(a).at(b) : j.at(a);
  return x.get<double>();
}

// The winner against the scenario's own layout, number by number (exact runs).
nlohmann::json reference_block(const nlohmann::json& win, const JobResult& wr, const nlohmann::json& ref,
                               const JobResult& rr) {
  auto side = [](const nlohmann::json& row, const JobResult& r) {
    const auto& b = r.detail.at("breakdown");
    const auto& e = b.at("exposed_communication_s");
    double exposed = 0;
    for (const auto& [k, v] : e.items()) exposed += v.get<double>();
    return nlohmann::json{{"layout", row.at("layout")},
                          {"step_time_s", r.step_time_s},
                          {"compute_s", at(b, "compute_s")},
                          {"pipeline_bubble_s", at(b, "pipeline_bubble_s")},
                          {"exposed_communication_s", exposed},
                          {"exposed_communication_by_kind_s", e},
                          {"optimizer_s", at(b, "optimizer_s")},
                          {"mfu", r.detail.at("mfu")},
                          {"peak_memory_gib", row.at("peak_memory_gib")},
                          {"total_cost_usd", row.at("total_cost_usd")},
                          {"wall_clock_days", row.at("wall_clock_days")}};
  };
  nlohmann::json w = side(win, wr), r = side(ref, rr);
  nlohmann::json diff;
  for (const char* k : {"step_time_s", "compute_s", "pipeline_bubble_s", "exposed_communication_s", "optimizer_s",
                        "peak_memory_gib", "total_cost_usd", "wall_clock_days"})
    diff[k] = w[k].get<double>() - r[k].get<double>();
  return {{"winner", w},
          {"reference", r},
          {"winner_minus_reference", diff},
          {"note", "both simulated exactly; step = compute + exposed communication + bubble + optimizer + other on the "
                   "rank that ends the step (the breakdown of `trainsim simulate`)"}};
}

// (first - exact) / exact step time over pairs (first, exact).
nlohmann::json relative_error(const std::vector<std::pair<double, double>>& pairs, const char* note) {
  double worst = 0, sum = 0;
  for (const auto& [s, e] : pairs) {
    const double err = (s - e) / e;
    sum += std::abs(err);
    if (std::abs(err) > std::abs(worst)) worst = err;
  }
  return {{"rows", pairs.size()},
          {"mean_abs_relative_error", pairs.empty() ? 0.0 : sum / static_cast<double>(pairs.size())},
          {"worst_relative_error", worst},
          {"note", note}};
}

nlohmann::json options_json(const PlanOptions& opt) {
  return {{"objective", to_string(opt.objective)},
          {"top", opt.top},
          {"gpu_counts", opt.gpu_counts},
          {"gpu_range", opt.gpu_range},
          {"vary_precision", opt.vary_precision},
          {"vary_comm_sms", opt.vary_comm_sms},
          {"screen_fraction", opt.screen_fraction},
          {"gpu_types", opt.gpu_types},
          {"deadline_days", opt.deadline_days}};
}

PlanOptions options_from_json(const nlohmann::json& j) {
  PlanOptions o;
  o.objective = parse_objective(j.at("objective").get<std::string>());
  o.top = j.at("top").get<int>();
  o.gpu_counts = j.at("gpu_counts").get<std::vector<int>>();
  o.gpu_range = j.at("gpu_range").get<bool>();
  o.vary_precision = j.at("vary_precision").get<bool>();
  o.vary_comm_sms = j.at("vary_comm_sms").get<bool>();
  o.screen_fraction = j.at("screen_fraction").get<double>();
  o.gpu_types = j.at("gpu_types").get<std::vector<std::pair<std::string, double>>>();
  o.deadline_days = j.at("deadline_days").get<double>();
  return o;
}

// A cluster option: (GPU type, GPU count).
std::pair<std::string, int> cluster_of(const PlanSpace& space, int job) {
  const PlanLayout& l = space.jobs[static_cast<std::size_t>(job)].layout;
  return {l.gpu, l.gpus};
}

// The best few rows of each cluster option in `rows` (ranked), cluster by
// cluster; empty when every row is of one cluster option. Several per
// option, because one exact re-run can fall behind the option's runner-up
// (screening error, docs/PLANNING.md).
constexpr std::size_t kExactPerCluster = 3;
std::vector<std::vector<int>> best_per_cluster(const PlanSpace& space, const std::vector<Row>& rows) {
  std::map<std::pair<std::string, int>, std::vector<int>> best;
  for (const Row& r : rows) {
    auto& v = best[cluster_of(space, r.job)];
    if (v.size() < kExactPerCluster) v.push_back(r.job);
  }
  std::vector<std::vector<int>> out;
  if (best.size() > 1)
    for (auto& [c, v] : best) out.push_back(std::move(v));
  return out;
}

std::vector<int> best_jobs(const std::vector<Row>& rows, int k) {
  std::vector<int> v;
  for (std::size_t i = 0; i < rows.size() && static_cast<int>(i) < k; ++i) v.push_back(rows[i].job);
  return v;
}

}  // namespace

namespace {

// The screened figures the plan ranks by: the extrapolated step, raised to
// the job's estimate where it fell below. The estimate leaves out contention
// and was never above the exact step in the runs measured (docs/PLANNING.md),
// so a screen below it has missed what its short run did not show (pipeline
// transfers piling up over a long steady state). Exact runs are kept.
std::vector<JobResult> floor_at_estimate(std::vector<JobResult> screened, const std::vector<JobResult>& estimated,
                                         std::size_t& raised) {
  raised = 0;
  for (std::size_t j = 0; j < screened.size(); ++j) {
    JobResult& r = screened[j];
    if (r.job < 0 || r.exact || estimated[j].job < 0 || r.step_time_s >= estimated[j].step_time_s) continue;
    r.step_time_s = estimated[j].step_time_s;
    ++raised;
  }
  return screened;
}

}  // namespace

std::vector<int> shard_exact_jobs(const PlanOptions& opt, const PlanSpace& space,
                                  const std::vector<JobResult>& estimated, const std::vector<JobResult>& screened) {
  std::size_t raised = 0;
  const std::vector<Row> rows = ranked_rows(space, opt, floor_at_estimate(screened, estimated, raised));
  std::vector<int> v = best_jobs(rows, opt.top);
  for (const auto& c : best_per_cluster(space, rows))
    for (int j : c)
      if (std::find(v.begin(), v.end(), j) == v.end()) v.push_back(j);
  for (const auto& r : screened)
    if (r.job == space.reference_job && std::find(v.begin(), v.end(), r.job) == v.end()) v.push_back(r.job);
  return v;
}

std::vector<int> screen_jobs(const PlanOptions& opt, const PlanSpace& space, const std::vector<JobResult>& estimated) {
  std::map<std::pair<std::string, int>, std::vector<int>> by_gpus;  // feasible jobs per cluster option, best first
  for (const Row& r : ranked_rows(space, opt, estimated)) by_gpus[cluster_of(space, r.job)].push_back(r.job);
  std::set<int> keep;
  for (const auto& [g, jobs] : by_gpus) {
    const auto n = std::max<std::size_t>(static_cast<std::size_t>(std::max(0, opt.top)),
                                         static_cast<std::size_t>(std::ceil(opt.screen_fraction *
                                                                            static_cast<double>(jobs.size()))));
    for (std::size_t i = 0; i < jobs.size() && i < n; ++i) keep.insert(jobs[i]);
  }
  if (space.reference_job >= 0) keep.insert(space.reference_job);
  return {keep.begin(), keep.end()};
}

namespace {

// Exact results for `jobs`: reused when screening already ran the real count.
std::map<int, JobResult> exact_results(const std::vector<int>& jobs, const std::vector<JobResult>& screened,
                                       const ExactSource& exact) {
  std::map<int, JobResult> out;
  std::vector<int> need;
  for (int j : jobs) {
    const JobResult& s = screened[static_cast<std::size_t>(j)];
    if (s.exact && !s.detail.is_null()) out[j] = s;
    else need.push_back(j);
  }
  for (auto& r : exact(need)) out[r.job] = r;
  return out;
}

// The position of `job` in `rows` (1-based) and its percentile; null if absent.
nlohmann::json rank_in(const std::vector<Row>& rows, int job) {
  const auto it = std::find_if(rows.begin(), rows.end(), [&](const Row& r) { return r.job == job; });
  if (it == rows.end()) return nullptr;
  const auto pos = static_cast<double>(it - rows.begin() + 1);
  return {{"rank", it - rows.begin() + 1}, {"of", rows.size()},
          {"percentile", 100.0 * pos / static_cast<double>(rows.size())}};
}

nlohmann::json reference_rank(const PlanSpace& space, const PlanOptions& opt, const std::vector<Row>& screened_rows,
                              const std::vector<Row>& estimated_rows, const std::vector<JobResult>& screened) {
  const Row ref = make_row(space, opt, screened[static_cast<std::size_t>(space.reference_job)]);
  nlohmann::json j;
  j["feasible"] = ref.zero_stage >= 0;
  if (ref.zero_stage < 0) return j;
  const nlohmann::json s = rank_in(screened_rows, ref.job);
  j["rank_by_screened_objective"] = s.at("rank");
  j["of"] = s.at("of");  // the screened feasible jobs (the best share by estimate)
  j["by_estimated_objective"] = rank_in(estimated_rows, ref.job);  // among every feasible job
  return j;
}

// The funnel: how many jobs each level saw, and how far the estimates were
// from the screened figures of the jobs that have both.
nlohmann::json funnel_json(const PlanOptions& opt, const std::vector<JobResult>& estimated,
                           const std::vector<JobResult>& screened) {
  std::size_t n_est = 0, n_scr = 0;
  std::vector<std::pair<double, double>> pairs;
  for (std::size_t j = 0; j < screened.size(); ++j) {
    n_est += estimated[j].job >= 0 ? 1 : 0;
    if (screened[j].job < 0) continue;
    ++n_scr;
    if (estimated[j].job >= 0) pairs.emplace_back(estimated[j].step_time_s, screened[j].step_time_s);
  }
  return {{"jobs_estimated", n_est},
          {"jobs_screened", n_scr},
          {"screen_fraction", opt.screen_fraction},
          {"estimate_vs_screened",
           relative_error(pairs, "(estimated - screened) / screened step time over the screened jobs; the estimate "
                                 "leaves out contention between GPUs")}};
}

// Rows with the job's estimated step time attached.
std::vector<Row> with_estimates(std::vector<Row> rows, const std::vector<JobResult>& estimated) {
  for (Row& r : rows) {
    const JobResult& e = estimated[static_cast<std::size_t>(r.job)];
    if (e.job >= 0) r.estimate_s = e.step_time_s;
  }
  return rows;
}

// The highest level known of every job: screened where screened, else estimated.
std::vector<JobResult> best_known(const std::vector<JobResult>& estimated, const std::vector<JobResult>& screened) {
  std::vector<JobResult> out = estimated;
  for (std::size_t j = 0; j < out.size(); ++j)
    if (screened[j].job >= 0) out[j] = screened[j];
  return out;
}

// Rows not beaten on both days and dollars, fastest first.
std::vector<Row> time_cost_front(const std::vector<Row>& rows) {
  std::vector<Row> v = rows;
  std::sort(v.begin(), v.end(), [](const Row& a, const Row& b) {
    return a.fig.days != b.fig.days ? a.fig.days < b.fig.days : a.fig.cost_usd < b.fig.cost_usd;
  });
  std::vector<Row> front;
  for (const Row& r : v)
    if (front.empty() || r.fig.cost_usd < front.back().fig.cost_usd) front.push_back(r);
  return front;
}

// The cheapest row finishing within `days` (the front is fastest first, so
// the last that meets it); null if none does.
const Row* cheapest_within(const std::vector<Row>& front, double days) {
  const Row* best = nullptr;
  for (const Row& r : front)
    if (r.fig.days <= days) best = &r;
  return best;
}

// --days N: the fewest GPUs and the cheapest layout finishing within N days,
// and what one day more or less is worth, from the screened rows of every
// cluster option searched (a step function: layouts come in whole steps).
nlohmann::json deadline_json(const PlanSpace& space, const PlanOptions& opt, const std::vector<Row>& rows) {
  const double n = opt.deadline_days;
  const std::vector<Row> front = time_cost_front(rows);
  nlohmann::json d = {{"days", n}};
  nlohmann::json f = nlohmann::json::array();
  for (const Row& r : front) f.push_back(row_json(space, r));
  d["time_cost_front"] = f;
  const Row* cheap = cheapest_within(front, n);
  if (!cheap) {
    d["met"] = false;
    if (!front.empty()) d["fastest"] = row_json(space, front.front());
    d["note"] = "no layout searched finishes in time: search more GPUs (--gpus A:B) or other GPU types (--gpu-types)";
    return d;
  }
  d["met"] = true;
  const Row* fewest = nullptr;
  for (const Row& r : rows) {
    if (r.fig.days > n) continue;
    const int g = space.jobs[static_cast<std::size_t>(r.job)].layout.gpus;
    if (!fewest || g < space.jobs[static_cast<std::size_t>(fewest->job)].layout.gpus) fewest = &r;
  }
  d["fewest_gpus"] = row_json(space, *fewest);
  d["cheapest"] = row_json(space, *cheap);
  const Row* later = cheapest_within(front, n + 1);
  const Row* sooner = cheapest_within(front, n - 1);
  d["usd_saved_by_one_more_day"] = cheap->fig.cost_usd - later->fig.cost_usd;
  if (sooner) d["usd_cost_of_one_day_sooner"] = sooner->fig.cost_usd - cheap->fig.cost_usd;
  else d["usd_cost_of_one_day_sooner"] = nullptr;
  // The next step of the staircase: the first cheaper layout on the front
  // and what each day of waiting for it saves.
  const auto next = std::find_if(front.begin(), front.end(), [&](const Row& r) {
    return r.fig.cost_usd < cheap->fig.cost_usd;
  });
  if (next != front.end()) {
    const double days = next->fig.days - cheap->fig.days, usd = cheap->fig.cost_usd - next->fig.cost_usd;
    d["next_saving"] = {{"extra_days", days}, {"usd_saved", usd}, {"usd_saved_per_day", usd / days},
                        {"layout", row_json(space, *next)}};
  }
  d["note"] = "dollars between the cheapest layouts finishing within N-1, N and N+1 days (screened figures), over "
              "every cluster option searched; the front lists where each saving starts";
  return d;
}

}  // namespace

nlohmann::json finalize_plan(const Scenario& base, const PlanOptions& opt, const PlanSpace& space,
                             const std::vector<JobResult>& estimated, const std::vector<JobResult>& screened_runs,
                             const ExactSource& exact) {
  std::size_t raised = 0;
  const std::vector<JobResult> screened = floor_at_estimate(screened_runs, estimated, raised);
  const std::vector<Row> rows = with_estimates(ranked_rows(space, opt, screened), estimated);
  const std::vector<Row> est_rows = ranked_rows(space, opt, estimated);
  const std::vector<int> best_k = best_jobs(rows, opt.top);
  const std::vector<std::vector<int>> per_cluster = best_per_cluster(space, rows);
  std::vector<int> want = best_k;
  for (const auto& c : per_cluster)
    for (int j : c)
      if (std::find(want.begin(), want.end(), j) == want.end()) want.push_back(j);
  if (std::find(want.begin(), want.end(), space.reference_job) == want.end()) want.push_back(space.reference_job);
  const std::map<int, JobResult> ex = exact_results(want, screened, exact);
  std::vector<Row> top;
  std::vector<std::pair<double, double>> err, est_err;
  for (int j : want) {
    err.emplace_back(screened[static_cast<std::size_t>(j)].step_time_s, ex.at(j).step_time_s);
    const JobResult& e = estimated[static_cast<std::size_t>(j)];
    if (e.job >= 0) est_err.emplace_back(e.step_time_s, ex.at(j).step_time_s);
  }
  for (int j : best_k) top.push_back(make_row(space, opt, ex.at(j)));
  top = with_estimates(top, estimated);
  std::sort(top.begin(), top.end(), fits_then_better);

  nlohmann::json plan;
  plan["scenario_name"] = base.name;
  plan["options"] = options_json(opt);
  plan["layouts_enumerated"] = space.candidates;
  plan["layouts_timed"] = space.layouts;
  auto evaluated = [](const std::vector<JobResult>& v) {
    return std::count_if(v.begin(), v.end(), [](const JobResult& r) { return r.job >= 0; });
  };
  plan["simulations_estimated"] = evaluated(estimated);
  plan["simulations_screened"] = evaluated(screened);
  plan["layouts_feasible_by_estimate"] = est_rows.size();
  plan["layouts_feasible_after_timing"] = rows.size();
  plan["funnel"] = funnel_json(opt, estimated, screened_runs);
  plan["funnel"]["screened_raised_to_estimate"] = raised;
  nlohmann::json best = nlohmann::json::array();
  for (const Row& r : top) best.push_back(row_json(space, r));
  plan["best"] = best;
  nlohmann::json ranked = nlohmann::json::array();
  for (const Row& r : rows) ranked.push_back(row_json(space, r));
  plan["ranked_screened"] = ranked;
  nlohmann::json ranked_est = nlohmann::json::array();
  for (const Row& r : est_rows) ranked_est.push_back(row_json(space, r));
  plan["ranked_estimated"] = ranked_est;
  plan["screening_error"] = relative_error(
      err, "(screened - exact) / exact step time for the rows run exactly (the best K, the best of each cluster "
           "option, the reference)");
  plan["estimate_error"] = relative_error(
      est_err, "(estimated - exact) / exact step time for the same rows");
  const JobResult& rex = ex.at(space.reference_job);
  nlohmann::json ref = reference_rank(space, opt, rows, est_rows, screened);
  ref["exact"] = row_json(space, with_estimates({make_row(space, opt, rex)}, estimated).front());
  plan["reference"] = ref;
  if (!top.empty() && top.front().zero_stage >= 0 && make_row(space, opt, rex).zero_stage >= 0)
    plan["reference_layout"] = reference_block(row_json(space, top.front()), ex.at(top.front().job),
                                               ref["exact"], rex);
  std::vector<RejectedFamily> fams = space.families;
  add_simulated_memory_families(space, best_known(estimated, screened), fams);
  plan["rejected"] = families_json(fams);
  if (opt.gpu_range) plan["pareto_front"] = pareto_json(space, rows);
  if (!per_cluster.empty()) {
    nlohmann::json bc = nlohmann::json::array();
    for (const auto& c : per_cluster) {  // the best of the option's exact rows
      std::vector<Row> v;
      for (int j : c) v.push_back(make_row(space, opt, ex.at(j)));
      v = with_estimates(v, estimated);
      std::sort(v.begin(), v.end(), fits_then_better);
      bc.push_back(row_json(space, v.front()));
    }
    plan["best_per_cluster"] = bc;
  }
  if (opt.deadline_days > 0) plan["deadline"] = deadline_json(space, opt, rows);
  return plan;
}

namespace {

std::vector<int> all_jobs(const PlanSpace& space) {
  std::vector<int> all(space.jobs.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  return all;
}

}  // namespace

nlohmann::json run_plan(const Scenario& base, const PlanOptions& opt, Progress* progress) {
  const PlanSpace space = enumerate_plan(base, opt);
  const std::vector<int> all = all_jobs(space);
  if (progress) progress->set_total(all.size());
  const auto estimated = by_job(space, evaluate_jobs(space, all, EvalLevel::Estimate, opt.threads, progress));
  const std::vector<int> screen = screen_jobs(opt, space, estimated);
  if (progress) progress->set_total(all.size() + screen.size() + static_cast<std::size_t>(opt.top) + 1);
  const auto screened = by_job(space, evaluate_jobs(space, screen, EvalLevel::Screen, opt.threads, progress));
  return finalize_plan(base, opt, space, estimated, screened, [&](const std::vector<int>& jobs) {
    return evaluate_jobs(space, jobs, EvalLevel::Exact, opt.threads, progress);
  });
}

// A shard estimates every job (cheap, and the screened set depends on all of
// them), screens its slice of the screened set, and runs exactly its own
// best K by screened objective and the reference if it screened it; the
// part keeps the estimates of its own jobs only (j % N == i).
nlohmann::json run_plan_part(const Scenario& base, const PlanOptions& opt, Progress* progress) {
  const PlanSpace space = enumerate_plan(base, opt);
  const std::vector<int> all = all_jobs(space);
  if (progress) progress->set_total(all.size());
  const auto estimated = evaluate_jobs(space, all, EvalLevel::Estimate, opt.threads, progress);
  const std::vector<int> mine = shard_slice(screen_jobs(opt, space, by_job(space, estimated)), opt.shard, opt.shards);
  if (progress) progress->set_total(all.size() + mine.size() + static_cast<std::size_t>(opt.top) + 1);
  const auto screened = evaluate_jobs(space, mine, EvalLevel::Screen, opt.threads, progress);
  const auto exact = evaluate_jobs(space, shard_exact_jobs(opt, space, by_job(space, estimated), by_job(space, screened)),
                                   EvalLevel::Exact, opt.threads, progress);
  nlohmann::json e = nlohmann::json::array(), s = nlohmann::json::array(), x = nlohmann::json::array();
  for (int j : shard_jobs(space, opt.shard, opt.shards)) e.push_back(to_json(estimated[static_cast<std::size_t>(j)]));
  for (const auto& r : screened) s.push_back(to_json(r));
  for (const auto& r : exact) x.push_back(to_json(r));
  return {{"trainsim_plan_part", 2}, {"shard", opt.shard},   {"shards", opt.shards},
          {"scenario", to_json(base)}, {"options", options_json(opt)}, {"estimated", e},
          {"screened", s},            {"exact", x}};
}

namespace {

void part_fail(const std::string& file, const std::string& path, const std::string& value, const std::string& want) {
  throw InputError(file, path, value, want);
}

}  // namespace

nlohmann::json merge_plan_parts(const std::vector<nlohmann::json>& parts, const std::vector<std::string>& files) {
  if (parts.empty()) part_fail("plan merge", "", "no parts", "one part file per shard");
  for (std::size_t i = 0; i < parts.size(); ++i)
    if (!parts[i].is_object() || !parts[i].contains("trainsim_plan_part") || parts[i]["trainsim_plan_part"] != 2)
      part_fail(files[i], "/trainsim_plan_part", parts[i].is_object() && parts[i].contains("trainsim_plan_part") ? parts[i]["trainsim_plan_part"].dump() : "absent",
                "2: a part written by this version's trainsim plan --shard");
  const int shards = parts[0].at("shards").get<int>();
  std::set<int> seen;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    if (parts[i].at("scenario") != parts[0].at("scenario") || parts[i].at("options") != parts[0].at("options") ||
        parts[i].at("shards").get<int>() != shards)
      part_fail(files[i], "", "a part of another plan", "parts of one plan (same scenario, options and shard count)");
    if (!seen.insert(parts[i].at("shard").get<int>()).second)
      part_fail(files[i], "/shard", parts[i].at("shard").dump(), "each shard once");
  }
  if (static_cast<int>(seen.size()) != shards)
    part_fail(files[0], "/shards", std::to_string(shards), fmt::format("all {} shards (got {})", shards, seen.size()));
  const Scenario base = parse_scenario(parts[0].at("scenario"), files[0]);
  const PlanOptions opt = options_from_json(parts[0].at("options"));
  const PlanSpace space = enumerate_plan(base, opt);
  std::vector<JobResult> estimated(space.jobs.size()), screened(space.jobs.size());
  std::map<int, JobResult> exact;
  auto place = [&](std::vector<JobResult>& v, const nlohmann::json& r, std::size_t i) {
    JobResult jr = job_result_from_json(r);
    if (jr.job < 0 || static_cast<std::size_t>(jr.job) >= v.size())
      part_fail(files[i], "/job", std::to_string(jr.job), fmt::format("a job index below {}", v.size()));
    v[static_cast<std::size_t>(jr.job)] = jr;
  };
  for (std::size_t i = 0; i < parts.size(); ++i) {
    for (const auto& r : parts[i].at("estimated")) place(estimated, r, i);
    for (const auto& r : parts[i].at("screened")) place(screened, r, i);
    for (const auto& r : parts[i].at("exact")) exact[r.at("job").get<int>()] = job_result_from_json(r);
  }
  for (std::size_t j = 0; j < estimated.size(); ++j)
    if (estimated[j].job < 0) part_fail(files[0], "/estimated", std::to_string(j), "every job's estimate");
  for (int j : screen_jobs(opt, space, estimated))
    if (screened[static_cast<std::size_t>(j)].job < 0)
      part_fail(files[0], "/screened", std::to_string(j), "every screened job's result");
  return finalize_plan(base, opt, space, estimated, screened, [&](const std::vector<int>& jobs) {
    std::vector<JobResult> out;
    for (int j : jobs) {
      auto it = exact.find(j);
      if (it == exact.end())
        part_fail(files[0], "/exact", std::to_string(j), "the exact result of every job a merge ranks best");
      out.push_back(it->second);
    }
    return out;
  });
}

namespace {

std::string layout_cell(const nlohmann::json& l) {
  std::string sched = l.at("schedule").get<std::string>();
  if (sched == "interleaved") sched += fmt::format("x{}", l.at("virtual_stages").get<int>());
  return fmt::format("{:<9} {:>5} {:>2} {:>3} {:>3} {:>4}  z{} {:<13} {:>3} {:<9} {:>3} {:<4}",
                     l.at("gpu").get<std::string>(), l.at("gpus").get<int>(),
                     l.at("tp").get<int>(), l.at("pp").get<int>(), l.at("ep").get<int>(), l.at("dp").get<int>(),
                     l.at("zero_stage").get<int>(), sched, l.at("micro_batch_size").get<int>(),
                     l.at("recompute").get<std::string>(), l.at("comm_sms").get<int>(),
                     l.at("precision").get<std::string>());
}

std::string row_line(const std::string& label, const nlohmann::json& r) {
  return fmt::format("{:>4}  {}  {:8.3f} {:7.1f} {:9.3f} {:6.1f}  {}{}\n", label, layout_cell(r.at("layout")),
                     r.at("step_time_s").get<double>(), r.at("wall_clock_days").get<double>(),
                     r.at("total_cost_usd").get<double>() / 1e6, r.at("peak_memory_gib").get<double>(),
                     r.at("figures").get<std::string>(), r.at("fits").get<bool>() ? "" : " (does not fit)");
}

const char* kHeader =
    "rank  gpu        gpus tp  pp  ep   dp  zero schedule    mbs recompute sms prec    step s    days      $M    GiB  "
    "figures\n";

std::string deadline_text(const nlohmann::json& d) {
  const double n = d.at("days").get<double>();
  if (!d.at("met").get<bool>()) {
    std::string out = fmt::format("no layout searched finishes within {:g} days", n);
    if (d.contains("fastest"))
      out += fmt::format(" (fastest: {:.1f} days on {} {})", d.at("fastest").at("wall_clock_days").get<double>(),
                         d.at("fastest").at("layout").at("gpus").get<int>(),
                         d.at("fastest").at("layout").at("gpu").get<std::string>());
    return out + "\n";
  }
  const auto& c = d.at("cheapest");
  const auto& f = d.at("fewest_gpus");
  std::string out = fmt::format(
      "within {:g} days: fewest GPUs {} {} ({:.1f} days, ${:.3f}M); cheapest {} {} ({:.1f} days, ${:.3f}M)\n", n,
      f.at("layout").at("gpus").get<int>(), f.at("layout").at("gpu").get<std::string>(),
      f.at("wall_clock_days").get<double>(), f.at("total_cost_usd").get<double>() / 1e6,
      c.at("layout").at("gpus").get<int>(), c.at("layout").at("gpu").get<std::string>(),
      c.at("wall_clock_days").get<double>(), c.at("total_cost_usd").get<double>() / 1e6);
  out += fmt::format("one more day saves ${:.3f}M", d.at("usd_saved_by_one_more_day").get<double>() / 1e6);
  const auto& sooner = d.at("usd_cost_of_one_day_sooner");
  out += sooner.is_null() ? std::string("; no layout searched finishes one day sooner\n")
                          : fmt::format("; one day sooner costs ${:.3f}M\n", sooner.get<double>() / 1e6);
  if (d.contains("next_saving")) {
    const auto& ns = d.at("next_saving");
    out += fmt::format("next saving: ${:.3f}M for {:.1f} more days on {} {} (${:.1f}K per day)\n",
                       ns.at("usd_saved").get<double>() / 1e6, ns.at("extra_days").get<double>(),
                       ns.at("layout").at("layout").at("gpus").get<int>(),
                       ns.at("layout").at("layout").at("gpu").get<std::string>(),
                       ns.at("usd_saved_per_day").get<double>() / 1e3);
  }
  return out;
}

}  // namespace

std::string plan_text(const nlohmann::json& plan) {
  const auto& fu = plan.at("funnel");
  const auto& ev = fu.at("estimate_vs_screened");
  std::string out = fmt::format(
      "plan for {} by {}: {} layouts enumerated, {} timed: {} simulations estimated ({} feasible), the best {:.0f}% "
      "per cluster option screened ({} simulations; estimate vs screened step: mean {:.1f}%, worst {:+.1f}%), "
      "{} feasible\n",
      plan.at("scenario_name").get<std::string>(), plan.at("options").at("objective").get<std::string>(),
      plan.at("layouts_enumerated").get<long long>(), plan.at("layouts_timed").get<long long>(),
      plan.at("simulations_estimated").get<long long>(), plan.at("layouts_feasible_by_estimate").get<long long>(),
      100 * fu.at("screen_fraction").get<double>(), plan.at("simulations_screened").get<long long>(),
      100 * ev.at("mean_abs_relative_error").get<double>(), 100 * ev.at("worst_relative_error").get<double>(),
      plan.at("layouts_feasible_after_timing").get<long long>());
  out += kHeader;
  int i = 0;
  for (const auto& r : plan.at("best")) out += row_line(std::to_string(++i), r);
  const auto& ref = plan.at("reference");
  const std::string where = ref.at("feasible").get<bool>()
                                ? fmt::format("{}/{}", ref.at("rank_by_screened_objective").get<long long>(),
                                              ref.at("of").get<long long>())
                                : std::string("n/f");
  out += row_line("ref", ref.at("exact"));
  if (ref.at("feasible").get<bool>()) {
    const std::string obj = plan.at("options").at("objective").get<std::string>();
    out += fmt::format("the scenario's layout ranks {} by screened {} among the screened", where, obj);
    const auto& be = ref.at("by_estimated_objective");
    if (!be.is_null())
      out += fmt::format(", {}/{} of all feasible layouts by estimated {} (top {:.1f}%)", be.at("rank").get<long long>(),
                         be.at("of").get<long long>(), obj, be.at("percentile").get<double>());
    out += "\n";
  }
  else
    out += "the scenario's layout does not fit in memory\n";
  const auto& se = plan.at("screening_error");
  out += fmt::format("screening error (screened vs exact step time, {} rows): mean {:.2f}%, worst {:+.2f}%\n",
                     se.at("rows").get<long long>(), 100 * se.at("mean_abs_relative_error").get<double>(),
                     100 * se.at("worst_relative_error").get<double>());
  const auto& ee = plan.at("estimate_error");
  out += fmt::format("estimate error (estimated vs exact step time, {} rows): mean {:.2f}%, worst {:+.2f}%\n",
                     ee.at("rows").get<long long>(), 100 * ee.at("mean_abs_relative_error").get<double>(),
                     100 * ee.at("worst_relative_error").get<double>());
  if (plan.contains("reference_layout")) {
    const auto& d = plan.at("reference_layout").at("winner_minus_reference");
    out += fmt::format(
        "winner - reference: step {:+.3f} s (compute {:+.3f}, bubble {:+.3f}, exposed comm {:+.3f}, optimizer "
        "{:+.3f}), memory {:+.1f} GiB, ${:+.3f}M\n",
        d.at("step_time_s").get<double>(), d.at("compute_s").get<double>(), d.at("pipeline_bubble_s").get<double>(),
        d.at("exposed_communication_s").get<double>(), d.at("optimizer_s").get<double>(),
        d.at("peak_memory_gib").get<double>(), d.at("total_cost_usd").get<double>() / 1e6);
  }
  if (plan.contains("pareto_front")) {
    out += "Pareto front (GPUs, days, dollars):\n" + std::string(kHeader);
    for (const auto& r : plan.at("pareto_front")) out += row_line("", r);
  }
  if (plan.contains("best_per_cluster")) {
    out += "best per cluster option (GPU type, GPUs):\n" + std::string(kHeader);
    for (const auto& r : plan.at("best_per_cluster")) out += row_line("", r);
  }
  if (plan.contains("deadline")) out += deadline_text(plan.at("deadline"));
  out += "rejected (families, largest first):\n";
  int shown = 0;
  for (const auto& f : plan.at("rejected")) {
    if (++shown > 12) {
      out += fmt::format("  ... {} more families in the JSON\n", plan.at("rejected").size() - 12);
      break;
    }
    out += fmt::format("  {:>7}  {}\n", f.at("layouts").get<long long>(), f.at("reason").get<std::string>());
  }
  return out;
}

}  // namespace trainsim::app
