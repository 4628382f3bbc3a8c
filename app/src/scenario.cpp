#include "trainsim/app/scenario.hpp"

#include "trainsim/app/run_cost.hpp"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>

#include "trainsim/app/hf_config.hpp"
#include "trainsim/common/json_reader.hpp"
#include "trainsim/common/random.hpp"
#include "trainsim/hardware/gpu.hpp"
#include "trainsim/model/schedule.hpp"

namespace trainsim::app {

std::int64_t Scenario::trace_size() const {
  return microbatches_per_step() * (arch.layers + 2 + arch.mtp_depth);
}

std::int64_t Scenario::microbatches_per_step() const {
  return training.global_batch_size / (static_cast<std::int64_t>(plan.dp) * plan.micro_batch_size);
}

namespace {

// /model as {"hf_config": path}: a Hugging Face config.json, the path relative
// to the scenario file (app/hf_config.hpp). Sets `ref` to "hf_config:path".
model::Architecture hf_model(const Json& m, const std::string& file, std::string& ref) {
  JsonObject mo(m, file, "/model");
  const std::string rel = mo.string("hf_config");
  mo.finish();
  const std::filesystem::path p(rel);
  const std::string path = p.is_absolute() ? rel : (std::filesystem::path(file).parent_path() / p).string();
  ref = "hf_config:" + rel;
  return load_hf_config(path, rel).arch;
}

model::ParallelPlan parse_plan(JsonObject& p) {
  model::ParallelPlan plan;
  plan.tp = static_cast<int>(p.integer_or("tp", 1, 1, 1024));
  plan.pp = static_cast<int>(p.integer_or("pp", 1, 1, 4096));
  plan.ep = static_cast<int>(p.integer_or("ep", 1, 1, 1 << 20));
  plan.dp = static_cast<int>(p.integer("dp", 1, 1 << 24));
  plan.zero_stage = static_cast<int>(p.integer_or("zero_stage", 1, 0, 3));
  const std::string sched =
      p.choice_or("schedule", "1f1b", {"gpipe", "1f1b", "interleaved", "zb1p", "dualpipe", "dualpipev"});
  for (auto k : {model::ScheduleKind::GPipe, model::ScheduleKind::OneFOneB, model::ScheduleKind::Interleaved,
                 model::ScheduleKind::ZB1P, model::ScheduleKind::DualPipe, model::ScheduleKind::DualPipeV})
    if (sched == model::to_string(k)) plan.schedule = k;
  if (plan.zero_stage == 3 &&
      (plan.schedule == model::ScheduleKind::DualPipe || plan.schedule == model::ScheduleKind::DualPipeV))
    p.fail("zero_stage", fmt::format("0, 1 or 2 with schedule {} (ZeRO-3's per-layer parameter gathers are not "
                                     "modelled inside overlapped forward-backward pairs)", sched));
  plan.micro_batch_size = static_cast<int>(p.integer_or("micro_batch_size", 1, 1, 1 << 16));
  // Model chunks per rank of the interleaved schedule (2 unless given); 1 for
  // every other schedule.
  plan.virtual_stages = static_cast<int>(
      p.integer_or("virtual_stages", plan.schedule == model::ScheduleKind::Interleaved ? 2 : 1, 1, 64));
  const std::string rc = p.choice_or("recompute", "selective", {"none", "selective", "full"});
  plan.recompute = rc == "none" ? model::Recompute::None
                   : rc == "full" ? model::Recompute::Full
                                  : model::Recompute::Selective;
  plan.sequence_parallel = p.boolean_or("sequence_parallel", false);
  plan.tp_comm_overlap = p.boolean_or("tp_comm_overlap", false);
  if (plan.tp_comm_overlap && !plan.sequence_parallel)
    p.fail("tp_comm_overlap", "false without sequence_parallel (the overlap pipelines the sequence-parallel "
                              "all-gathers and reduce-scatters with their GEMMs)");
  plan.overlap_grad_reduce = p.boolean_or("overlap_grad_reduce", false);
  plan.comm_sms = static_cast<int>(p.integer_or("comm_sms", 0, 0, 4096));
  if (const Json* list = p.raw_optional("layers_per_stage")) {
    if (!list->is_array() || list->empty() || list->size() > 65536)
      p.fail("layers_per_stage", "a non-empty array of layer counts, one per pipeline stage");
    for (std::size_t i = 0; i < list->size(); ++i) {
      const Json& v = (*list)[i];
      if (!v.is_number_integer() || v.get<long long>() < 1 || v.get<long long>() > 1000000)
        p.fail(fmt::format("layers_per_stage/{}", i), "a positive whole number of layers");
      plan.layers_per_stage.push_back(static_cast<int>(v.get<long long>()));
    }
  }
  p.finish();
  return plan;
}

// /stragglers: {"gpus": [{"gpu": 17, "slowdown": 1.2}, ...],
//               "spread": {"sigma": 0.02, "seed": 1},
//               "links": {"sigma": 0.05, "seed": 2}}
StragglerSpec parse_stragglers(JsonObject& o, int gpus) {
  StragglerSpec s;
  if (const Json* list = o.raw_optional("gpus")) {
    if (!list->is_array()) o.fail("gpus", "an array of {\"gpu\": id, \"slowdown\": factor} objects");
    for (std::size_t i = 0; i < list->size(); ++i) {
      JsonObject g((*list)[i], o.file(), fmt::format("{}/{}", o.child_path("gpus"), i));
      StragglerSpec::Listed l;
      l.gpu = static_cast<int>(g.integer("gpu", 0, gpus - 1));
      l.slowdown = g.number("slowdown", 1.0, 100.0);
      g.finish();
      s.gpus.push_back(l);
    }
  }
  if (auto sp = o.object_optional("spread")) {
    s.spread_sigma = sp->number("sigma", 0.0, 1.0);
    s.seed = static_cast<std::uint64_t>(sp->integer_or("seed", 0, 0, (1LL << 53)));
    sp->finish();
  }
  if (auto li = o.object_optional("links")) {
    s.link_sigma = li->number("sigma", 0.0, 1.0);
    s.link_seed = static_cast<std::uint64_t>(li->integer_or("seed", 0, 0, (1LL << 53)));
    li->finish();
  }
  o.finish();
  return s;
}

// /moe_routing: {"model": "balanced" | "zipf" | "dirichlet" | "histogram",
//   "zipf_exponent", "dirichlet_alpha", "expert_load": [one weight per expert],
//   "seed", "states", "sampled_tokens", "replicas": [{"expert", "ep_rank"}]}
void parse_routing(JsonObject& o, Scenario& s) {
  model::RoutingModel& r = s.routing;
  const std::string kind = o.choice_or("model", "balanced", {"balanced", "zipf", "dirichlet", "histogram"});
  r.kind = kind == "zipf" ? model::RoutingKind::Zipf
           : kind == "dirichlet" ? model::RoutingKind::Dirichlet
           : kind == "histogram" ? model::RoutingKind::Histogram
                                 : model::RoutingKind::Balanced;
  // Each model's own parameter only: a key the model would ignore is an error.
  const auto only_for = [&](const char* key, model::RoutingKind k) {
    if (o.has(key) && r.kind != k) o.fail(key, fmt::format("no \"{}\" with the \"{}\" model", key, kind));
  };
  only_for("zipf_exponent", model::RoutingKind::Zipf);
  only_for("dirichlet_alpha", model::RoutingKind::Dirichlet);
  only_for("expert_load", model::RoutingKind::Histogram);
  r.zipf_exponent = o.number_or("zipf_exponent", 1.0, 0.0, 10.0);
  r.dirichlet_alpha = o.number_or("dirichlet_alpha", 1.0, 1e-3, 1e6);
  r.seed = static_cast<std::uint64_t>(o.integer_or("seed", 0, 0, 1LL << 53));
  r.max_sampled_tokens = static_cast<int>(o.integer_or("sampled_tokens", 1024, 1, 1 << 20));
  s.routing_states = static_cast<int>(o.integer_or("states", 16, 1, 4096));
  const int experts = s.arch.moe ? s.arch.moe->routed_experts : 0;
  if (const Json* load = o.raw_optional("expert_load")) {
    if (!load->is_array() || static_cast<int>(load->size()) != experts)
      o.fail("expert_load", fmt::format("an array of {} non-negative weights, one per routed expert", experts));
    for (std::size_t i = 0; i < load->size(); ++i) {
      const Json& v = (*load)[i];
      if (!v.is_number() || !(v.get<double>() >= 0) || !std::isfinite(v.get<double>()))
        throw InputError(o.file(), fmt::format("{}/{}", o.child_path("expert_load"), i), describe_json(v),
                         "a finite weight >= 0");
      r.expert_load.push_back(v.get<double>());
    }
  }
  double total = 0;
  for (double w : r.expert_load) total += w;
  if (r.kind == model::RoutingKind::Histogram && !(total > 0))
    o.fail("expert_load", "per-expert weights with a positive sum for the \"histogram\" model");
  if (const Json* reps = o.raw_optional("replicas")) {
    if (!reps->is_array()) o.fail("replicas", "an array of {\"expert\": e, \"ep_rank\": r} objects");
    for (std::size_t i = 0; i < reps->size(); ++i) {
      JsonObject e((*reps)[i], o.file(), fmt::format("{}/{}", o.child_path("replicas"), i));
      model::ExpertReplica x;
      x.expert = static_cast<int>(e.integer("expert", 0, std::max(0, experts - 1)));
      x.ep_rank = static_cast<int>(e.integer("ep_rank", 0, std::max(0, s.plan.ep - 1)));
      e.finish();
      r.replicas.push_back(x);
    }
    if (!r.replicas.empty() && r.kind == model::RoutingKind::Balanced)
      o.fail("replicas", "a skewed routing model (replicas of hot experts change nothing under balanced routing)");
  }
  if (r.kind != model::RoutingKind::Balanced && (!s.arch.moe || s.plan.ep <= 1))
    o.fail("model", "\"balanced\": the scenario has no expert-parallel MoE layers to route");
  o.finish();
}

// Layout checks that need the whole scenario. Each names the key to change.
void check_layout(Scenario& s, const std::string& file) {
  const auto& a = s.arch;
  const auto& pl = s.plan;
  auto fail = [&](const std::string& path, const std::string& value, const std::string& expected) {
    throw InputError(file, path, value, expected);
  };
  const int gpus = s.cluster.total_gpus();
  if (static_cast<long long>(pl.tp) * pl.pp * pl.dp != gpus)
    fail("/parallelism/dp", std::to_string(pl.dp),
         fmt::format("tp*pp*dp == GPUs in the cluster: tp={} x pp={} x dp={} = {}, but the cluster has {} GPUs ({} nodes x {})",
                     pl.tp, pl.pp, pl.dp, static_cast<long long>(pl.tp) * pl.pp * pl.dp, gpus, s.cluster.nodes,
                     s.cluster.gpus_per_node));
  if (pl.tp > s.cluster.gpus_per_node)
    fail("/parallelism/tp", std::to_string(pl.tp),
         fmt::format("tensor parallelism within one node (tp <= {} GPUs per node)", s.cluster.gpus_per_node));
  if (a.heads % pl.tp != 0)
    fail("/parallelism/tp", std::to_string(pl.tp), fmt::format("a divisor of the {} attention heads", a.heads));
  if (a.kv_heads % pl.tp != 0 && pl.tp % a.kv_heads != 0)
    fail("/parallelism/tp", std::to_string(pl.tp),
         fmt::format("a divisor or multiple of the {} key/value heads", a.kv_heads));
  if (a.moe) {
    if (a.moe->routed_experts % pl.ep != 0)
      fail("/parallelism/ep", std::to_string(pl.ep),
           fmt::format("a divisor of the {} routed experts", a.moe->routed_experts));
    if ((static_cast<long long>(pl.dp) * pl.tp) % pl.ep != 0)
      fail("/parallelism/ep", std::to_string(pl.ep),
           fmt::format("a divisor of dp*tp = {} (expert-parallel groups are drawn from the GPUs of one pipeline stage)",
                       static_cast<long long>(pl.dp) * pl.tp));
    if (pl.ep > s.cluster.gpus_per_node && pl.ep % s.cluster.gpus_per_node != 0)
      fail("/parallelism/ep", std::to_string(pl.ep),
           fmt::format("at most {} or a multiple of the GPUs per node", s.cluster.gpus_per_node));
  } else if (pl.ep != 1) {
    fail("/parallelism/ep", std::to_string(pl.ep), "1 for a model without experts");
  }
  const long long per_step = static_cast<long long>(pl.dp) * pl.micro_batch_size;
  if (s.training.global_batch_size % per_step != 0)
    fail("/training/global_batch_size", std::to_string(s.training.global_batch_size),
         fmt::format("a multiple of dp x micro_batch_size = {}", per_step));
  const long long mbs = s.training.global_batch_size / per_step;
  if (pl.virtual_stages != 1 && pl.schedule != model::ScheduleKind::Interleaved)
    fail("/parallelism/virtual_stages", std::to_string(pl.virtual_stages),
         fmt::format("1 for the {} schedule (virtual stages are for \"interleaved\")", model::to_string(pl.schedule)));
  // The step simulation is linear in micro-batches (the default scenario's 120
  // take ~1.5 s); 4,096 keeps a step under about a minute and is 30x what
  // published runs use.
  if (mbs > kMaxMicrobatches)
    fail("/training/global_batch_size", std::to_string(s.training.global_batch_size),
         fmt::format("at most {} micro-batches per pipeline per step, global_batch_size / (dp x micro_batch_size) "
                     "(it gives {})", kMaxMicrobatches, mbs));
  // The schedule's own preconditions (even ranks, enough micro-batches, ...)
  // are checked by building it; its message says what is wrong.
  int stages = 0;
  try {
    stages = model::make_schedule(pl.schedule, pl.pp, static_cast<int>(mbs), pl.virtual_stages).stages;
  } catch (const std::invalid_argument& e) {
    fail("/parallelism/schedule", fmt::format("\"{}\" with pp={}, {} micro-batches per pipeline (global_batch_size / (dp x micro_batch_size)){}",
                                              model::to_string(pl.schedule), pl.pp, mbs,
                                              pl.schedule == model::ScheduleKind::Interleaved
                                                  ? fmt::format(", virtual_stages={}", pl.virtual_stages)
                                                  : std::string()),
         std::string("a layout the schedule accepts: ") + e.what());
  }
  // Every stage needs at least one layer (decoder layers plus embedding, head
  // and MTP modules are distributed).
  const int distributable = a.layers + 2 + a.mtp_depth;
  if (stages > distributable)
    fail("/parallelism/pp", std::to_string(pl.pp),
         fmt::format("at most as many pipeline stages ({} with the {} schedule) as the model's {} layers and modules",
                     stages, model::to_string(pl.schedule), distributable));
  if (!pl.layers_per_stage.empty()) {
    long long sum = 0;
    for (int c : pl.layers_per_stage) sum += c;
    if (static_cast<int>(pl.layers_per_stage.size()) != stages || sum != distributable)
      fail("/parallelism/layers_per_stage", fmt::format("{} stages holding {} layers", pl.layers_per_stage.size(), sum),
           fmt::format("{} stages (the {} schedule with pp={}) holding the model's {} layers and modules "
                       "(embedding, {} decoder layers, head, {} MTP)",
                       stages, model::to_string(pl.schedule), pl.pp, distributable, a.layers, a.mtp_depth));
  }
  if (pl.comm_sms >= s.cluster.gpu.sms)
    fail("/parallelism/comm_sms", std::to_string(pl.comm_sms),
         fmt::format("fewer than the {} SMs of a {}", s.cluster.gpu.sms, s.cluster.gpu.name));
  if (a.moe && pl.ep > 1 && pl.comm_sms == 0)
    fail("/parallelism/comm_sms", "0",
         "a positive number of SMs for the expert-parallel all-to-all kernels (DeepSeek-V3 used 20)");
  if (!s.cluster.gpu.supports(s.gemm_precision))
    fail("/precision/gemm", fmt::format("\"{}\"", to_string(s.gemm_precision)),
         fmt::format("a format the {} supports in its tensor cores", s.cluster.gpu.name));
}

// ---- /phases and /reliability (whole runs; priced by run_cost.cpp) ----

// /phases/i/global_batch_size: an integer, or a ramp
// {"from": 3072, "to": 15360, "over_tokens": 469e9, "segments": 8}.
void parse_phase_batch(JsonObject& o, PhaseSpec& ph, std::int64_t fallback) {
  const Json* b = o.raw_optional("global_batch_size");
  if (!b) {
    ph.global_batch_size = fallback;
  } else if (b->is_object()) {
    JsonObject r(*b, o.file(), o.child_path("global_batch_size"));
    BatchRamp ramp;
    ramp.from = r.integer("from", 1, 1LL << 40);
    ramp.to = r.integer("to", 1, 1LL << 40);
    ramp.over_tokens = r.number("over_tokens", 1, 1e18);
    ramp.segments = static_cast<int>(r.integer_or("segments", 8, 1, 1024));
    r.finish();
    ph.global_batch_size = ramp.to;
    ph.ramp = ramp;
  } else {
    ph.global_batch_size = o.integer("global_batch_size", 1, 1LL << 40);
  }
}

// /phases/i: {"name", "kind", "source", "seq_len", "global_batch_size", "tokens" | "steps",
//             "parallelism": {partial}, "precision": {partial}}; what is not
// given comes from /training, /parallelism and /precision.
PhaseSpec parse_phase(JsonObject& o, const TrainingSpec& base) {
  PhaseSpec ph;
  ph.path = o.path();
  ph.name = o.string("name");
  const std::string kind = o.choice("kind", {"pretraining", "context_extension", "post_training"});
  ph.kind = kind == "context_extension" ? PhaseKind::ContextExtension
            : kind == "post_training"   ? PhaseKind::PostTraining
                                        : PhaseKind::Pretraining;
  ph.source = o.string_or("source", "");
  ph.seq_len = o.integer_or("seq_len", base.seq_len, 1, 1 << 24);
  parse_phase_batch(o, ph, base.global_batch_size);
  if (o.has("tokens") && o.has("steps")) o.fail("steps", "either \"tokens\" or \"steps\", not both");
  if (o.has("steps")) {
    if (ph.ramp) o.fail("steps", "the length in \"tokens\" for a phase with a batch ramp");
    ph.steps = o.integer("steps", 1, 1LL << 40);
    ph.tokens = static_cast<double>(*ph.steps) * static_cast<double>(ph.global_batch_size) *
                static_cast<double>(ph.seq_len);
  } else {
    ph.tokens = o.number_or("tokens", base.tokens, 1, 1e18);
  }
  if (ph.ramp && ph.ramp->over_tokens > ph.tokens)
    throw InputError(o.file(), o.child_path("global_batch_size") + "/over_tokens", fmt::format("{:g}", ph.ramp->over_tokens),
                     fmt::format("at most the phase's {:g} tokens", ph.tokens));
  for (const char* key : {"parallelism", "precision"})
    if (const Json* v = o.raw_optional(key)) {
      if (!v->is_object()) o.fail(key, "an object of the keys to change");
      ph.overrides[key] = *v;
    }
  o.finish();
  return ph;
}

void parse_phases(const Json& list, const std::string& file, Scenario& s) {
  if (!list.is_array() || list.empty())
    throw InputError(file, "/phases", describe_json(list), "a non-empty array of phase objects");
  for (std::size_t i = 0; i < list.size(); ++i) {
    JsonObject o(list[i], file, fmt::format("/phases/{}", i));
    s.phases.push_back(parse_phase(o, s.training));
    for (std::size_t k = 0; k + 1 < s.phases.size(); ++k)
      if (s.phases[k].name == s.phases.back().name) o.fail("name", "a name no other phase has");
  }
}

// /reliability: every key optional; defaults in run_cost.cpp (with sources).
ReliabilitySpec parse_reliability(JsonObject& o, const Scenario& s) {
  const ReliabilitySpec d = default_reliability(s);
  ReliabilitySpec r;
  r.gpu_failures_per_1000_gpu_days =
      o.number_or("gpu_failures_per_1000_gpu_days", d.gpu_failures_per_1000_gpu_days, 0, 1e6);
  r.node_failures_per_1000_node_days =
      o.number_or("node_failures_per_1000_node_days", d.node_failures_per_1000_node_days, 0, 1e6);
  r.checkpoint_size_gib = o.number_or("checkpoint_size_gib", d.checkpoint_size_gib, 0, 1e12);
  r.checkpoint_write_GBps = o.number_or("checkpoint_write_GBps", d.checkpoint_write_GBps, 1e-6, 1e12);
  r.restart_s = o.number_or("restart_s", d.restart_s, 0, 1e9);
  r.checkpoint_interval_s = o.number_optional("checkpoint_interval_s", 1e-3, 1e12);
  o.finish();
  return r;
}

// The resolved /phases and /reliability of `s` into its JSON echo.
void add_run_keys(const Scenario& s, nlohmann::json& j) {
  if (!s.phases.empty()) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& ph : s.phases) {
      nlohmann::json p = {{"name", ph.name}, {"kind", to_string(ph.kind)}, {"seq_len", ph.seq_len}};
      if (ph.ramp)
        p["global_batch_size"] = {{"from", ph.ramp->from}, {"to", ph.ramp->to},
                                  {"over_tokens", ph.ramp->over_tokens}, {"segments", ph.ramp->segments}};
      else
        p["global_batch_size"] = ph.global_batch_size;
      if (!ph.source.empty()) p["source"] = ph.source;
      if (ph.steps) p["steps"] = *ph.steps;
      else p["tokens"] = ph.tokens;
      for (const auto& [k, v] : ph.overrides.items()) p[k] = v;
      list.push_back(p);
    }
    j["phases"] = list;
  }
  if (s.reliability) {
    const auto& r = *s.reliability;
    j["reliability"] = {{"gpu_failures_per_1000_gpu_days", r.gpu_failures_per_1000_gpu_days},
                        {"node_failures_per_1000_node_days", r.node_failures_per_1000_node_days},
                        {"checkpoint_size_gib", r.checkpoint_size_gib},
                        {"checkpoint_write_GBps", r.checkpoint_write_GBps},
                        {"restart_s", r.restart_s}};
    if (r.checkpoint_interval_s) j["reliability"]["checkpoint_interval_s"] = *r.checkpoint_interval_s;
  }
}

}  // namespace

Scenario parse_scenario(const nlohmann::json& j, const std::string& file) {
  Scenario s;
  s.file = file;
  JsonObject root(j, file, "");
  s.name = root.string("name");
  // Model: preset name or inline object.
  const Json& m = root.raw("model");
  if (m.is_string()) {
    s.model_ref = m.get<std::string>();
    s.arch = model::architecture_preset(s.model_ref, file, "/model");
  } else if (m.is_object() && m.contains("hf_config")) {
    s.arch = hf_model(m, file, s.model_ref);
  } else if (m.is_object()) {
    s.model_ref = "inline";
    JsonObject mo(m, file, "/model");
    s.arch = model::parse_architecture(mo);
  } else {
    root.fail("model", "a model preset name (string), an inline architecture object or {\"hf_config\": path}");
  }
  auto cluster = root.object("cluster");
  s.cluster = hw::parse_cluster(cluster);
  auto par = root.object("parallelism");
  s.plan = parse_plan(par);
  if (auto prec = root.object_optional("precision")) {
    const std::string g = prec->choice_or("gemm", "bf16", {"bf16", "fp16", "fp8"});
    s.gemm_precision = g == "fp8" ? Precision::FP8 : g == "fp16" ? Precision::FP16 : Precision::BF16;
    prec->finish();
  }
  auto tr = root.object("training");
  s.training.seq_len = tr.integer("seq_len", 1, 1 << 24);
  s.training.global_batch_size = tr.integer("global_batch_size", 1, 1LL << 40);
  s.training.tokens = tr.number("tokens", 1, 1e18);
  tr.finish();
  if (auto cost = root.object_optional("cost")) {
    s.usd_per_gpu_hour = cost->number("usd_per_gpu_hour", 0, 1e6);
    cost->finish();
  }
  s.calibration = root.string_or("calibration", "h800");
  if (auto st = root.object_optional("stragglers")) s.stragglers = parse_stragglers(*st, s.cluster.total_gpus());
  auto routing = root.object_optional("moe_routing");
  const Json* phases = root.raw_optional("phases");
  auto reliability = root.object_optional("reliability");
  root.finish();
  check_layout(s, file);
  if (routing) parse_routing(*routing, s);  // needs the model and the plan
  if (phases) parse_phases(*phases, file, s);
  if (reliability) s.reliability = parse_reliability(*reliability, s);
  if (!s.phases.empty()) check_phases(s);  // every phase's layout, as a scenario of its own
  return s;
}

std::vector<double> StragglerSpec::factors(int n) const {
  if (!any()) return {};
  std::vector<double> f(static_cast<std::size_t>(n), 1.0);
  if (spread_sigma > 0)
    for (int g = 0; g < n; ++g)
      f[static_cast<std::size_t>(g)] = std::exp(spread_sigma * counter_half_normal(seed, static_cast<std::uint64_t>(g)));
  for (const auto& l : gpus) f[static_cast<std::size_t>(l.gpu)] *= l.slowdown;
  return f;
}

Scenario load_scenario(const std::string& file) { return parse_scenario(parse_json_file(file), file); }

model::ParallelPlan parse_parallelism(const nlohmann::json& j, const std::string& file, const std::string& path) {
  JsonObject p(j, file, path);
  return parse_plan(p);
}

nlohmann::json to_json(const Scenario& s) {
  nlohmann::json j;
  j["name"] = s.name;
  j["model"] = model::to_json(s.arch);
  j["cluster"] = hw::to_json(s.cluster);
  const auto& p = s.plan;
  j["parallelism"] = {{"tp", p.tp},
                      {"pp", p.pp},
                      {"ep", p.ep},
                      {"dp", p.dp},
                      {"zero_stage", p.zero_stage},
                      {"schedule", model::to_string(p.schedule)},
                      {"micro_batch_size", p.micro_batch_size},
                      {"virtual_stages", p.virtual_stages},
                      {"recompute", model::to_string(p.recompute)},
                      {"sequence_parallel", p.sequence_parallel},
                      {"tp_comm_overlap", p.tp_comm_overlap},
                      {"overlap_grad_reduce", p.overlap_grad_reduce},
                      {"comm_sms", p.comm_sms}};
  if (!p.layers_per_stage.empty()) j["parallelism"]["layers_per_stage"] = p.layers_per_stage;
  j["precision"] = {{"gemm", to_string(s.gemm_precision)}};
  j["training"] = {{"seq_len", s.training.seq_len},
                   {"global_batch_size", s.training.global_batch_size},
                   {"tokens", s.training.tokens}};
  j["cost"] = {{"usd_per_gpu_hour", s.usd_per_gpu_hour}};
  j["calibration"] = s.calibration;
  if (s.stragglers.any()) {
    nlohmann::json g = nlohmann::json::array();
    for (const auto& l : s.stragglers.gpus) g.push_back({{"gpu", l.gpu}, {"slowdown", l.slowdown}});
    j["stragglers"] = {{"gpus", g},
                       {"spread", {{"sigma", s.stragglers.spread_sigma}, {"seed", s.stragglers.seed}}},
                       {"links", {{"sigma", s.stragglers.link_sigma}, {"seed", s.stragglers.link_seed}}}};
  }
  if (s.routing.kind != model::RoutingKind::Balanced) {
    const auto& r = s.routing;
    nlohmann::json reps = nlohmann::json::array();
    for (const auto& x : r.replicas) reps.push_back({{"expert", x.expert}, {"ep_rank", x.ep_rank}});
    j["moe_routing"] = {{"model", model::to_string(r.kind)}, {"zipf_exponent", r.zipf_exponent},
                        {"dirichlet_alpha", r.dirichlet_alpha}, {"seed", r.seed},
                        {"sampled_tokens", r.max_sampled_tokens}, {"states", s.routing_states},
                        {"replicas", reps}};
    if (!r.expert_load.empty()) j["moe_routing"]["expert_load"] = r.expert_load;
  }
  add_run_keys(s, j);
  return j;
}

}  // namespace trainsim::app
