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
  bool exact = false;
};

Row make_row(const PlanSpace& space, const PlanOptions& opt, const JobResult& r) {
  const PlanJob& j = space.jobs[static_cast<std::size_t>(r.job)];
  const double cap = j.scenario.cluster.gpu.hbm_capacity.value() / kGiB;
  Row row;
  row.job = r.job;
  row.exact = r.exact;
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

// Feasible rows, best first.
std::vector<Row> ranked_rows(const PlanSpace& space, const PlanOptions& opt, const std::vector<JobResult>& screened) {
  std::vector<Row> rows;
  for (const auto& r : screened) {
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
                      {"figures", row.exact ? "exact" : "screened"},
                      {"step_time_s", row.fig.step_time_s},
                      {"tokens_per_second", row.fig.tokens_per_second},
                      {"total_gpu_hours", row.fig.gpu_hours},
                      {"total_cost_usd", row.fig.cost_usd},
                      {"wall_clock_days", row.fig.days},
                      {"peak_memory_gib", row.peak_gib},
                      {"job", row.job}};
  const auto& zs = space.jobs[static_cast<std::size_t>(row.job)].zero_stages;
  std::vector<int> alike;
  for (int z : zs)
    if (z > row.zero_stage && row.zero_stage > 0) alike.push_back(z);
  if (!alike.empty()) j["same_time_with_zero_stages"] = alike;
  return j;
}

// Families rejected after timing: no ZeRO stage fits the simulated memory.
void add_simulated_memory_families(const PlanSpace& space, const std::vector<JobResult>& screened,
                                   std::vector<RejectedFamily>& fams) {
  std::map<std::string, RejectedFamily> add;
  for (const auto& r : screened) {
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

// Screened against exact step time for the rows that have both.
nlohmann::json screening_error(const std::vector<std::pair<double, double>>& pairs) {
  double worst = 0, sum = 0;
  for (const auto& [s, e] : pairs) {
    const double err = (s - e) / e;
    sum += std::abs(err);
    if (std::abs(err) > std::abs(worst)) worst = err;
  }
  return {{"rows", pairs.size()},
          {"mean_abs_relative_error", pairs.empty() ? 0.0 : sum / static_cast<double>(pairs.size())},
          {"worst_relative_error", worst},
          {"note", "(screened - exact) / exact step time for the best K and the reference, each simulated both ways"}};
}

nlohmann::json options_json(const PlanOptions& opt) {
  return {{"objective", to_string(opt.objective)},
          {"top", opt.top},
          {"gpu_counts", opt.gpu_counts},
          {"gpu_range", opt.gpu_range},
          {"vary_precision", opt.vary_precision},
          {"vary_comm_sms", opt.vary_comm_sms}};
}

PlanOptions options_from_json(const nlohmann::json& j) {
  PlanOptions o;
  o.objective = parse_objective(j.at("objective").get<std::string>());
  o.top = j.at("top").get<int>();
  o.gpu_counts = j.at("gpu_counts").get<std::vector<int>>();
  o.gpu_range = j.at("gpu_range").get<bool>();
  o.vary_precision = j.at("vary_precision").get<bool>();
  o.vary_comm_sms = j.at("vary_comm_sms").get<bool>();
  return o;
}

std::vector<int> best_jobs(const std::vector<Row>& rows, int k) {
  std::vector<int> v;
  for (std::size_t i = 0; i < rows.size() && static_cast<int>(i) < k; ++i) v.push_back(rows[i].job);
  return v;
}

}  // namespace

std::vector<int> shard_exact_jobs(const Scenario& /*base*/, const PlanOptions& opt, const PlanSpace& space,
                                  const std::vector<JobResult>& screened) {
  std::vector<int> v = best_jobs(ranked_rows(space, opt, screened), opt.top);
  for (const auto& r : screened)
    if (r.job == space.reference_job && std::find(v.begin(), v.end(), r.job) == v.end()) v.push_back(r.job);
  return v;
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

nlohmann::json reference_rank(const PlanSpace& space, const PlanOptions& opt, const std::vector<Row>& rows,
                              const std::vector<JobResult>& screened) {
  const Row ref = make_row(space, opt, screened[static_cast<std::size_t>(space.reference_job)]);
  nlohmann::json j;
  if (ref.zero_stage < 0) {
    j["feasible"] = false;
    return j;
  }
  const auto pos = std::find_if(rows.begin(), rows.end(), [&](const Row& r) { return r.job == ref.job; }) - rows.begin();
  j["feasible"] = true;
  j["rank_by_screened_objective"] = pos + 1;
  j["of"] = rows.size();
  j["percentile"] = 100.0 * static_cast<double>(pos + 1) / static_cast<double>(rows.size());
  return j;
}

}  // namespace

nlohmann::json finalize_plan(const Scenario& base, const PlanOptions& opt, const PlanSpace& space,
                             const std::vector<JobResult>& screened, const ExactSource& exact) {
  const std::vector<Row> rows = ranked_rows(space, opt, screened);
  const std::vector<int> best_k = best_jobs(rows, opt.top);
  std::vector<int> want = best_k;
  if (std::find(want.begin(), want.end(), space.reference_job) == want.end()) want.push_back(space.reference_job);
  const std::map<int, JobResult> ex = exact_results(want, screened, exact);
  std::vector<Row> top;
  std::vector<std::pair<double, double>> err;
  for (int j : want) err.emplace_back(screened[static_cast<std::size_t>(j)].step_time_s, ex.at(j).step_time_s);
  for (int j : best_k) top.push_back(make_row(space, opt, ex.at(j)));
  std::sort(top.begin(), top.end(), [](const Row& a, const Row& b) {
    return (a.zero_stage >= 0) != (b.zero_stage >= 0) ? a.zero_stage >= 0 : better(a, b);
  });

  nlohmann::json plan;
  plan["scenario_name"] = base.name;
  plan["options"] = options_json(opt);
  plan["layouts_enumerated"] = space.candidates;
  plan["layouts_timed"] = space.layouts;
  plan["simulations_screened"] = screened.size();
  plan["layouts_feasible_after_timing"] = rows.size();
  nlohmann::json best = nlohmann::json::array();
  for (const Row& r : top) best.push_back(row_json(space, r));
  plan["best"] = best;
  nlohmann::json ranked = nlohmann::json::array();
  for (const Row& r : rows) ranked.push_back(row_json(space, r));
  plan["ranked_screened"] = ranked;
  plan["screening_error"] = screening_error(err);
  const JobResult& rex = ex.at(space.reference_job);
  nlohmann::json ref = reference_rank(space, opt, rows, screened);
  ref["exact"] = row_json(space, make_row(space, opt, rex));
  plan["reference"] = ref;
  if (!top.empty() && top.front().zero_stage >= 0 && make_row(space, opt, rex).zero_stage >= 0)
    plan["reference_layout"] = reference_block(row_json(space, top.front()), ex.at(top.front().job),
                                               ref["exact"], rex);
  std::vector<RejectedFamily> fams = space.families;
  add_simulated_memory_families(space, screened, fams);
  plan["rejected"] = families_json(fams);
  if (opt.gpu_range) plan["pareto_front"] = pareto_json(space, rows);
  return plan;
}

nlohmann::json run_plan(const Scenario& base, const PlanOptions& opt, Progress* progress) {
  const PlanSpace space = enumerate_plan(base, opt);
  std::vector<int> all(space.jobs.size());
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
  if (progress) progress->set_total(all.size() + static_cast<std::size_t>(opt.top) + 1);
  const auto screened = evaluate_jobs(space, all, false, opt.threads, progress);
  return finalize_plan(base, opt, space, screened, [&](const std::vector<int>& jobs) {
    return evaluate_jobs(space, jobs, true, opt.threads, progress);
  });
}

nlohmann::json run_plan_part(const Scenario& base, const PlanOptions& opt, Progress* progress) {
  const PlanSpace space = enumerate_plan(base, opt);
  const std::vector<int> mine = shard_jobs(space, opt.shard, opt.shards);
  if (progress) progress->set_total(mine.size() + static_cast<std::size_t>(opt.top) + 1);
  const auto screened = evaluate_jobs(space, mine, false, opt.threads, progress);
  const auto exact = evaluate_jobs(space, shard_exact_jobs(base, opt, space, screened), true, opt.threads, progress);
  nlohmann::json s = nlohmann::json::array(), e = nlohmann::json::array();
  for (const auto& r : screened) s.push_back(to_json(r));
  for (const auto& r : exact) e.push_back(to_json(r));
  return {{"trainsim_plan_part", 1}, {"shard", opt.shard},   {"shards", opt.shards}, {"scenario", to_json(base)},
          {"options", options_json(opt)}, {"screened", s}, {"exact", e}};
}

namespace {

void part_fail(const std::string& file, const std::string& path, const std::string& value, const std::string& want) {
  throw InputError(file, path, value, want);
}

}  // namespace

nlohmann::json merge_plan_parts(const std::vector<nlohmann::json>& parts, const std::vector<std::string>& files) {
  if (parts.empty()) part_fail("plan merge", "", "no parts", "one part file per shard");
  for (std::size_t i = 0; i < parts.size(); ++i)
    if (!parts[i].is_object() || !parts[i].contains("trainsim_plan_part"))
      part_fail(files[i], "", "a file without \"trainsim_plan_part\"", "a part written by trainsim plan --shard");
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
  std::vector<JobResult> screened(space.jobs.size());
  std::map<int, JobResult> exact;
  for (const auto& p : parts) {
    for (const auto& r : p.at("screened")) {
      JobResult jr = job_result_from_json(r);
      screened.at(static_cast<std::size_t>(jr.job)) = jr;
    }
    for (const auto& r : p.at("exact")) exact[r.at("job").get<int>()] = job_result_from_json(r);
  }
  return finalize_plan(base, opt, space, screened, [&](const std::vector<int>& jobs) {
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
  return fmt::format("{:>5} {:>2} {:>3} {:>3} {:>4}  z{} {:<13} {:>3} {:<9} {:>3} {:<4}", l.at("gpus").get<int>(),
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
    "rank   gpus tp  pp  ep   dp  zero schedule    mbs recompute sms prec    step s    days      $M    GiB  "
    "figures\n";

}  // namespace

std::string plan_text(const nlohmann::json& plan) {
  std::string out = fmt::format(
      "plan for {} by {}: {} layouts enumerated, {} timed ({} simulations), {} feasible\n",
      plan.at("scenario_name").get<std::string>(), plan.at("options").at("objective").get<std::string>(),
      plan.at("layouts_enumerated").get<long long>(), plan.at("layouts_timed").get<long long>(),
      plan.at("simulations_screened").get<long long>(), plan.at("layouts_feasible_after_timing").get<long long>());
  out += kHeader;
  int i = 0;
  for (const auto& r : plan.at("best")) out += row_line(std::to_string(++i), r);
  const auto& ref = plan.at("reference");
  const std::string where = ref.at("feasible").get<bool>()
                                ? fmt::format("{}/{}", ref.at("rank_by_screened_objective").get<long long>(),
                                              ref.at("of").get<long long>())
                                : std::string("n/f");
  out += row_line("ref", ref.at("exact"));
  if (ref.at("feasible").get<bool>())
    out += fmt::format("the scenario's layout ranks {} by screened {} (top {:.1f}%)\n", where,
                       plan.at("options").at("objective").get<std::string>(), ref.at("percentile").get<double>());
  else
    out += "the scenario's layout does not fit in memory\n";
  const auto& se = plan.at("screening_error");
  out += fmt::format("screening error (screened vs exact step time, {} rows): mean {:.2f}%, worst {:+.2f}%\n",
                     se.at("rows").get<long long>(), 100 * se.at("mean_abs_relative_error").get<double>(),
                     100 * se.at("worst_relative_error").get<double>());
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
