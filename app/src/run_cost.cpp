#include "trainsim/app/run_cost.hpp"

#include <fmt/format.h>

#include <cmath>
#include <limits>
#include <map>
#include <stdexcept>

#include "trainsim/common/error.hpp"
#include "trainsim/common/units.hpp"
#include "trainsim/model/accounting.hpp"
#include "trainsim/model/schedule.hpp"

namespace trainsim::app {

const char* to_string(PhaseKind k) {
  switch (k) {
    case PhaseKind::Pretraining: return "pretraining";
    case PhaseKind::ContextExtension: return "context_extension";
    case PhaseKind::PostTraining: return "post_training";
  }
  return "?";
}

// ---- failures and checkpoints ------------------------------------------------

namespace {

// Llama 3 (arXiv 2407.21783, §3.3.4 and Table 5): 419 unexpected
// interruptions in a 54-day snapshot of pre-training on 16,384 H100 (2,048
// nodes of 8). By root cause: faulty GPU 148, GPU HBM3 72, GPU SRAM 19, GPU
// system processor 17, silent data corruption 6, GPU thermal interface and
// sensor 6 (the GPU category: 268); software bug 54, network switch or cable
// 35, host maintenance 32, NIC 7, NCCL watchdog 7, SSD 3, power supply 3,
// chassis 2, IO board 2, dependency 2, CPU 2, system memory 2 (151, charged
// to the node: they scale with the number of hosts, not GPUs). The table's
// 30.1% for 148 faulty-GPU interruptions is a misprint (148/419 = 35.3%);
// we use the counts.
constexpr double kLlama3Gpus = 16384, kLlama3Nodes = 2048, kLlama3Days = 54;
constexpr double kLlama3GpuInterruptions = 268, kLlama3NodeInterruptions = 151;
// Llama 3 §3.3.1: Tectonic storage sustains 2 TB/s (7 TB/s peak) for the
// 16K-GPU cluster; the default gives a job its GPUs' share of the sustained rate.
constexpr double kLlama3StorageGBps = 2000;
// No published restart time for V3 or Llama 3 (Llama 3 reports only >90%
// effective training time): our assumption, 10 minutes to detect, replace,
// reschedule, re-initialise communicators and reload the checkpoint.
constexpr double kDefaultRestartS = 600;
// Bytes per parameter in a checkpoint: BF16 weights (2) + FP32 master
// weights and BF16 first and second moments (8), as the memory model
// (model/src/step.cpp) holds them; gradients are not saved.
constexpr double kCheckpointBytesPerParam = 10;

}  // namespace

double young_interval_s(double checkpoint_s, double mtbf_s) { return std::sqrt(2 * checkpoint_s * mtbf_s); }

double daly_interval_s(double checkpoint_s, double mtbf_s) {
  if (checkpoint_s >= 2 * mtbf_s) return mtbf_s;
  const double x = checkpoint_s / (2 * mtbf_s);
  return young_interval_s(checkpoint_s, mtbf_s) * (1 + std::sqrt(x) / 3 + x / 9) - checkpoint_s;
}

Goodput expected_goodput(double work_s, const FailureModel& m) {
  Goodput g;
  g.work_s = work_s;
  const bool failures = std::isfinite(m.mtbf_s);
  if (!failures && !m.interval_s) {  // nothing fails, nothing to checkpoint against
    g.wall_s = work_s;
    return g;
  }
  g.interval_s = m.interval_s ? *m.interval_s : daly_interval_s(m.checkpoint_s, m.mtbf_s);
  g.checkpoints = work_s / g.interval_s;
  g.checkpoint_write_s = g.checkpoints * m.checkpoint_s;
  if (!failures) {
    g.wall_s = work_s + g.checkpoint_write_s;
    return g;
  }
  // Daly (2006): W = M e^{R/M} (e^{(tau + C)/M} - 1) T / tau.
  const double M = m.mtbf_s;
  g.wall_s = M * std::exp(m.restart_s / M) * std::expm1((g.interval_s + m.checkpoint_s) / M) * g.checkpoints;
  g.interruptions = g.wall_s / M;
  g.restart_total_s = g.interruptions * m.restart_s;
  g.lost_work_s = g.wall_s - work_s - g.checkpoint_write_s - g.restart_total_s;
  return g;
}

FailureModel failure_model(const ReliabilitySpec& r, int gpus, int nodes) {
  FailureModel m;
  const double per_day = (gpus * r.gpu_failures_per_1000_gpu_days + nodes * r.node_failures_per_1000_node_days) / 1000;
  m.mtbf_s = per_day > 0 ? 86400.0 / per_day : std::numeric_limits<double>::infinity();
  m.checkpoint_s = r.checkpoint_size_gib * kGiB / (r.checkpoint_write_GBps * 1e9);
  m.restart_s = r.restart_s;
  m.interval_s = r.checkpoint_interval_s;
  return m;
}

ReliabilitySpec default_reliability(const Scenario& s) {
  ReliabilitySpec r;
  // 268 / (16,384 x 54) x 1000 = 0.3029; 151 / (2,048 x 54) x 1000 = 1.365.
  r.gpu_failures_per_1000_gpu_days = kLlama3GpuInterruptions / (kLlama3Gpus * kLlama3Days) * 1000;
  r.node_failures_per_1000_node_days = kLlama3NodeInterruptions / (kLlama3Nodes * kLlama3Days) * 1000;
  r.checkpoint_size_gib = model::model_params(s.arch, true).total * kCheckpointBytesPerParam / kGiB;
  r.checkpoint_write_GBps = kLlama3StorageGBps * s.cluster.total_gpus() / kLlama3Gpus;
  r.restart_s = kDefaultRestartS;
  return r;
}

// ---- phases ------------------------------------------------------------------

namespace {

// The base scenario's JSON without what belongs to the whole run.
Json base_json(const Scenario& base) {
  Json j = to_json(base);
  j.erase("phases");
  j.erase("reliability");
  return j;
}

// The phase's `parallelism` object: the base's with the phase's keys.
Json phase_parallelism(const Json& base_parallelism, const PhaseSpec& phase) {
  Json par = base_parallelism;
  if (!phase.overrides.contains("parallelism")) return par;
  const Json& over = phase.overrides["parallelism"];
  // A new schedule takes its own default number of virtual stages.
  if (over.contains("schedule") && !over.contains("virtual_stages")) par.erase("virtual_stages");
  par.merge_patch(over);
  return par;
}

// The scenario JSON of `phase` at `batch` (not yet validated).
Json phase_json(const Scenario& base, const PhaseSpec& phase, std::int64_t batch) {
  Json j = base_json(base);
  j["training"] = {{"seq_len", phase.seq_len}, {"global_batch_size", batch}, {"tokens", phase.tokens}};
  j["parallelism"] = phase_parallelism(j["parallelism"], phase);
  if (phase.overrides.contains("precision")) j["precision"].merge_patch(phase.overrides["precision"]);
  return j;
}

// Where a path of the phase's own scenario lives in the scenario file.
std::string phase_path(const PhaseSpec& phase, const std::string& path) {
  if (path == "/training/seq_len") return phase.path + "/seq_len";
  if (path == "/training/global_batch_size") return phase.path + "/global_batch_size";
  return phase.path + path;
}

}  // namespace

Scenario phase_scenario(const Scenario& base, const PhaseSpec& phase, std::int64_t batch) {
  try {
    return parse_scenario(phase_json(base, phase, batch), base.file);
  } catch (const InputError& e) {
    throw InputError(e.file(), phase_path(phase, e.json_path()), e.value(),
                     fmt::format("{} (phase \"{}\" at batch {}, seq_len {})", e.expected(), phase.name, batch,
                                 phase.seq_len));
  }
}

std::int64_t accepted_batch(const Scenario& base, const PhaseSpec& phase, std::int64_t target) {
  const Json par = phase_parallelism(base_json(base)["parallelism"], phase);
  const model::ParallelPlan plan = parse_parallelism(par, base.file, phase.path + "/parallelism");
  const std::int64_t q = static_cast<std::int64_t>(plan.dp) * plan.micro_batch_size;
  auto accepts = [&](std::int64_t m) {
    if (m < 1 || m > (1 << 24)) return false;
    try {
      model::make_schedule(plan.schedule, plan.pp, static_cast<int>(m), plan.virtual_stages);
      return true;
    } catch (const std::invalid_argument&) {
      return false;
    }
  };
  // The nearest accepted micro-batch count at or below target / q, and at or above.
  std::int64_t below = target / q, above = (target + q - 1) / q;
  while (below >= 1 && !accepts(below)) --below;
  while (above <= (1 << 24) && !accepts(above)) ++above;
  const bool has_below = below >= 1, has_above = above <= (1 << 24);
  if (has_above && (!has_below || above * q - target <= target - below * q)) return above * q;  // ties: larger
  if (has_below) return below * q;
  throw InputError(base.file, phase.path + "/global_batch_size", std::to_string(target),
                   fmt::format("a batch the layout accepts: none found near it ({} schedule, pp {}, dp x "
                               "micro_batch_size = {})",
                               model::to_string(plan.schedule), plan.pp, q));
}

namespace {

// The batch sizes a phase simulates: (requested, simulated, token weight).
std::vector<BatchPoint> phase_points(const Scenario& base, const PhaseSpec& phase) {
  std::vector<BatchPoint> pts;
  if (!phase.ramp) {
    pts.push_back({phase.global_batch_size, phase.global_batch_size, phase.tokens, 0, 0, 0});
    return pts;
  }
  const BatchRamp& r = *phase.ramp;
  const double span = r.over_tokens / r.segments;
  for (int k = 0; k <= r.segments; ++k) {
    BatchPoint p;
    p.requested = std::llround(static_cast<double>(r.from) +
                               static_cast<double>(r.to - r.from) * k / r.segments);
    p.simulated = accepted_batch(base, phase, p.requested);
    // Trapezoid weights; the constant stretch after the ramp goes to the last point.
    p.tokens = (k == 0 || k == r.segments) ? span / 2 : span;
    if (k == r.segments) p.tokens += phase.tokens - r.over_tokens;
    pts.push_back(p);
  }
  return pts;
}

}  // namespace

void check_phases(const Scenario& base) {
  for (const auto& ph : base.phases)
    for (const auto& p : phase_points(base, ph)) phase_scenario(base, ph, p.simulated);
}

std::vector<PhaseSpec> run_phases(const Scenario& s) {
  if (!s.phases.empty()) return s.phases;
  PhaseSpec ph;
  ph.name = "pre-training";
  ph.kind = PhaseKind::Pretraining;
  ph.path = "/training";
  ph.seq_len = s.training.seq_len;
  ph.global_batch_size = s.training.global_batch_size;
  ph.tokens = s.training.tokens;
  return {ph};
}

void PhaseBreakdown::add(const model::StepResult& st, double steps) {
  const auto& b = st.breakdown;
  const double parts[] = {b.compute.to_seconds(),         b.exposed_ep.ep_dispatch.to_seconds(),
                          b.exposed_ep.ep_combine.to_seconds(), b.exposed_ep.tp.to_seconds(),
                          b.exposed_pp.to_seconds(),      b.dp_sync.to_seconds(),
                          b.bubble.to_seconds(),          b.optimizer.to_seconds()};
  double* mine[] = {&compute, &ep_dispatch, &ep_combine, &tensor_parallel, &pipeline_p2p, &data_parallel, &bubble, &optimizer};
  double sum = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    *mine[i] += parts[i] * steps;
    sum += parts[i];
  }
  other += (st.step_time.to_seconds() - sum) * steps;
}

void PhaseBreakdown::add(const PhaseBreakdown& o) {
  compute += o.compute;
  ep_dispatch += o.ep_dispatch;
  ep_combine += o.ep_combine;
  tensor_parallel += o.tensor_parallel;
  pipeline_p2p += o.pipeline_p2p;
  data_parallel += o.data_parallel;
  bubble += o.bubble;
  optimizer += o.optimizer;
  other += o.other;
}

nlohmann::json PhaseBreakdown::to_json() const {
  const double h = 3600;
  return {{"compute_h", compute / h},
          {"exposed_communication_h",
           {{"ep_dispatch", ep_dispatch / h},
            {"ep_combine", ep_combine / h},
            {"tensor_parallel", tensor_parallel / h},
            {"pipeline_p2p", pipeline_p2p / h},
            {"data_parallel", data_parallel / h}}},
          {"pipeline_bubble_h", bubble / h},
          {"optimizer_h", optimizer / h},
          {"other_h", other / h},
          {"note", "wall-clock hours of the phase on the pipeline rank that ends each step, by part; they add up "
                   "to the phase's failure-free hours"}};
}

namespace {

// A step simulated once per distinct phase scenario (the key is its JSON
// without the run length).
class StepCache {
 public:
  StepCache(const Simulation& base, const SimulateOptions& opt) : options_(opt) {
    options_.record = false;  // traces are of the base step only
    sims_.emplace(key(base.scenario), base);
  }
  const Simulation& get(const Scenario& s) {
    const std::string k = key(s);
    auto it = sims_.find(k);
    if (it == sims_.end()) it = sims_.emplace(k, simulate(s, options_)).first;
    return it->second;
  }

 private:
  static std::string key(const Scenario& s) {
    Json j = base_json(s);
    j["training"].erase("tokens");
    return j.dump();
  }
  SimulateOptions options_;
  std::map<std::string, Simulation> sims_;
};

// Memory of an explicit phase must fit: a phase that does not is an input
// error naming it (the numbers say by how much).
void check_fits(const Scenario& sc, const PhaseSpec& ph, const Simulation& sim, std::int64_t batch) {
  const auto& m = sim.step.peak_memory;
  const double cap = sc.cluster.gpu.hbm_capacity.value();
  if (m.total_bytes() <= cap) return;
  throw InputError(sc.file, ph.path,
                   fmt::format("a layout that needs {:.1f} GiB per GPU at batch {}, seq_len {} (pipeline rank {}: "
                               "weights {:.1f}, gradients {:.1f}, optimizer {:.1f}, activations {:.1f} GiB for {} "
                               "micro-batches in flight)",
                               m.total_bytes() / kGiB, batch, ph.seq_len, m.rank, m.weights_bytes / kGiB,
                               m.gradients_bytes / kGiB, m.optimizer_bytes / kGiB, m.activations_bytes / kGiB,
                               m.activation_chunks_peak),
                   fmt::format("a phase that fits the {:.1f} GiB of a {}: override its parallelism (recompute, "
                               "schedule, tp, pp)",
                               cap / kGiB, sc.cluster.gpu.name));
}

PhaseResult evaluate_phase(const Scenario& base, const PhaseSpec& ph, bool must_fit, StepCache& cache) {
  PhaseResult r;
  r.spec = ph;
  r.gpus = base.cluster.total_gpus();
  r.usd_per_gpu_hour = base.usd_per_gpu_hour;
  r.capacity_gib = base.cluster.gpu.hbm_capacity.value() / kGiB;
  r.points = phase_points(base, ph);
  std::vector<double> per_token;  // seconds per token at each point
  for (auto& p : r.points) {
    const Scenario sc = ph.path == "/training" ? base : phase_scenario(base, ph, p.simulated);
    const Simulation& sim = cache.get(sc);
    if (must_fit) check_fits(sc, ph, sim, p.simulated);
    const double step_tokens = static_cast<double>(p.simulated) * static_cast<double>(ph.seq_len);
    p.step_s = sim.step.step_time.to_seconds();
    p.steps = p.tokens / step_tokens;
    p.peak_gib = sim.step.peak_memory.total_bytes() / kGiB;
    per_token.push_back(p.step_s / step_tokens);
    r.tokens += p.tokens;
    r.steps += p.steps;
    r.seconds += p.steps * p.step_s;
    r.peak_gib = std::max(r.peak_gib, p.peak_gib);
    r.breakdown.add(sim.step, p.steps);
    if (r.layout.is_null()) r.layout = {{"parallelism", to_json(sc)["parallelism"]}, {"precision", to_json(sc)["precision"]}};
  }
  if (ph.steps) r.steps = static_cast<double>(*ph.steps);  // exact, as written
  // Half the spread between left and right Riemann sums (see the header).
  if (ph.ramp)
    for (std::size_t k = 0; k + 1 < per_token.size(); ++k)
      r.discretisation_bound_s += ph.ramp->over_tokens / ph.ramp->segments * std::abs(per_token[k] - per_token[k + 1]) / 2;
  return r;
}

}  // namespace

RunResult evaluate_run(const Simulation& base_sim, const SimulateOptions& options) {
  const Scenario& base = base_sim.scenario;
  RunResult run;
  run.explicit_phases = !base.phases.empty();
  run.reliability = base.reliability;
  run.failures.mtbf_s = std::numeric_limits<double>::infinity();
  if (base.reliability) run.failures = failure_model(*base.reliability, base.cluster.total_gpus(), base.cluster.nodes);
  StepCache cache(base_sim, options);
  for (const auto& ph : run_phases(base)) {
    run.phases.push_back(evaluate_phase(base, ph, run.explicit_phases, cache));
    run.phases.back().goodput = expected_goodput(run.phases.back().seconds, run.failures);
  }
  return run;
}

// ---- the report's `run` block ------------------------------------------------

namespace {

struct Totals {
  double tokens = 0, steps = 0, seconds = 0, wall_s = 0, interruptions = 0, bound_s = 0;
  PhaseBreakdown breakdown;
  void add(const PhaseResult& p) {
    tokens += p.tokens;
    steps += p.steps;
    seconds += p.seconds;
    wall_s += p.goodput.wall_s;
    interruptions += p.goodput.interruptions;
    bound_s += p.discretisation_bound_s;
    breakdown.add(p.breakdown);
  }
};

nlohmann::json money(double seconds, int gpus, double usd) {
  const double gh = seconds * gpus / 3600;
  return {{"gpu_hours", gh}, {"cost_usd", gh * usd}, {"days", seconds / 86400}};
}

nlohmann::json goodput_json(const Goodput& g, int gpus, double usd) {
  nlohmann::json j = money(g.wall_s, gpus, usd);
  j["goodput"] = g.goodput();
  j["interruptions"] = g.interruptions;
  j["checkpoint_interval_s"] = g.interval_s;
  j["checkpoints"] = g.checkpoints;
  j["checkpoint_write_h"] = g.checkpoint_write_s / 3600;
  j["restart_h"] = g.restart_total_s / 3600;
  j["lost_work_h"] = g.lost_work_s / 3600;
  return j;
}

nlohmann::json phase_json(const PhaseResult& p, bool failures) {
  nlohmann::json j = {{"name", p.spec.name}, {"kind", to_string(p.spec.kind)}, {"source", p.spec.source},
                      {"seq_len", p.spec.seq_len},
                      {"gpus", p.gpus},      {"tokens", p.tokens},             {"steps", p.steps},
                      {"mean_step_time_s", p.steps > 0 ? p.seconds / p.steps : 0.0}};
  j.update(money(p.seconds, p.gpus, p.usd_per_gpu_hour));
  j["tokens_per_second"] = p.seconds > 0 ? p.tokens / p.seconds : 0.0;
  j["breakdown"] = p.breakdown.to_json();
  j["peak_memory_gib"] = p.peak_gib;
  j["capacity_gib"] = p.capacity_gib;
  j["layout"] = p.layout;
  nlohmann::json pts = nlohmann::json::array();
  for (const auto& b : p.points)
    pts.push_back({{"requested_batch", b.requested}, {"simulated_batch", b.simulated}, {"tokens", b.tokens},
                   {"steps", b.steps}, {"step_time_s", b.step_s}, {"peak_memory_gib", b.peak_gib}});
  j["batches"] = pts;
  if (p.spec.ramp) j["discretisation_bound_gpu_hours"] = p.discretisation_bound_s * p.gpus / 3600;
  if (failures) j["with_failures"] = goodput_json(p.goodput, p.gpus, p.usd_per_gpu_hour);
  return j;
}

nlohmann::json totals_json(const Totals& t, int gpus, double usd, bool failures) {
  nlohmann::json j = {{"tokens", t.tokens}, {"steps", t.steps}};
  j.update(money(t.seconds, gpus, usd));
  j["breakdown"] = t.breakdown.to_json();
  if (t.bound_s > 0) j["discretisation_bound_gpu_hours"] = t.bound_s * gpus / 3600;
  if (failures) {
    j["with_failures"] = money(t.wall_s, gpus, usd);
    j["with_failures"]["goodput"] = t.wall_s > 0 ? t.seconds / t.wall_s : 1.0;
    j["with_failures"]["interruptions"] = t.interruptions;
  }
  return j;
}

nlohmann::json reliability_json(const RunResult& run) {
  if (!run.reliability) return nullptr;
  const auto& r = *run.reliability;
  const auto& f = run.failures;
  const bool fails = std::isfinite(f.mtbf_s);
  auto finite = [](double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); };
  return {{"gpu_failures_per_1000_gpu_days", r.gpu_failures_per_1000_gpu_days},
          {"node_failures_per_1000_node_days", r.node_failures_per_1000_node_days},
          {"job_mtbf_hours", finite(f.mtbf_s / 3600)},
          {"checkpoint_size_gib", r.checkpoint_size_gib},
          {"checkpoint_write_GBps", r.checkpoint_write_GBps},
          {"checkpoint_write_s", f.checkpoint_s},
          {"restart_s", r.restart_s},
          {"young_interval_s", finite(young_interval_s(f.checkpoint_s, f.mtbf_s))},
          {"daly_interval_s", finite(daly_interval_s(f.checkpoint_s, f.mtbf_s))},
          {"checkpoint_interval_s",
           f.interval_s ? nlohmann::json(*f.interval_s)
                        : fails ? finite(daly_interval_s(f.checkpoint_s, f.mtbf_s)) : nlohmann::json(nullptr)},
          {"note", "failures as a Poisson process at GPUs/gpu_mtbf + nodes/node_mtbf; blocking checkpoints every "
                   "checkpoint_interval_s of work (Daly's optimum unless given; none without failures); expected wall time by "
                   "Daly (2006); null: infinite (no failures)"}};
}

}  // namespace

nlohmann::json run_to_json(const RunResult& run) {
  const bool failures = run.reliability.has_value();
  nlohmann::json phases = nlohmann::json::array();
  std::map<std::string, Totals> by_kind;
  Totals all;
  for (const auto& p : run.phases) {
    phases.push_back(phase_json(p, failures));
    by_kind[to_string(p.spec.kind)].add(p);
    all.add(p);
  }
  const int gpus = run.phases.empty() ? 0 : run.phases.front().gpus;
  const double usd = run.phases.empty() ? 0 : run.phases.front().usd_per_gpu_hour;
  nlohmann::json kinds = nlohmann::json::object();
  for (const auto& [k, t] : by_kind) kinds[k] = totals_json(t, gpus, usd, failures);
  return {{"explicit_phases", run.explicit_phases},
          {"phases", phases},
          {"by_kind", kinds},
          {"totals", totals_json(all, gpus, usd, failures)},
          {"reliability", reliability_json(run)}};
}

}  // namespace trainsim::app
