#include "trainsim/app/scenario.hpp"

#include <fmt/format.h>

#include <cmath>

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
  plan.comm_sms = static_cast<int>(p.integer_or("comm_sms", 0, 0, 4096));
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
  } else if (m.is_object()) {
    s.model_ref = "inline";
    JsonObject mo(m, file, "/model");
    s.arch = model::parse_architecture(mo);
  } else {
    root.fail("model", "a model preset name (string) or an inline architecture object");
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
  root.finish();
  check_layout(s, file);
  if (routing) parse_routing(*routing, s);  // needs the model and the plan
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
                      {"comm_sms", p.comm_sms}};
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
  return j;
}

}  // namespace trainsim::app
