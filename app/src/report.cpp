#include "trainsim/app/report.hpp"

#include "trainsim/app/run_cost.hpp"
#include "trainsim/common/progress.hpp"

#include <fmt/format.h>

#include "trainsim/common/error.hpp"

#include <cmath>
#include <map>
#include <tuple>

namespace trainsim::app {

using model::ChunkOpType;

std::vector<std::string> symmetry_breakers(const Scenario& scenario) {
  std::vector<std::string> why;
  if (!scenario.stragglers.gpus.empty() || scenario.stragglers.spread_sigma > 0) why.push_back("stragglers");
  if (scenario.stragglers.link_sigma > 0) why.push_back("drawn link speeds");
  if (scenario.routing.kind != model::RoutingKind::Balanced)
    why.push_back(fmt::format("{} expert routing", model::to_string(scenario.routing.kind)));
  if (!scenario.cluster.network.faults.empty()) why.push_back("network faults or degradations");
  return why;
}

namespace {

// The fidelity to run at, and why.
std::pair<model::Fidelity, std::string> choose_fidelity(const Scenario& sc, FidelityChoice choice,
                                                        const std::string& option) {
  const std::vector<std::string> why = symmetry_breakers(sc);
  std::string list;
  for (const auto& w : why) list += (list.empty() ? "" : ", ") + w;
  switch (choice) {
    case FidelityChoice::Full: return {model::Fidelity::Full, "asked for (--fidelity full)"};
    case FidelityChoice::Collapsed:
      if (!why.empty())
        throw InputError(sc.file, "", fmt::format("{} collapsed with {}", option, list),
                         "full or auto fidelity: the replicas of a pipeline rank are not identical");
      return {model::Fidelity::Collapsed, "asked for (--fidelity collapsed)"};
    case FidelityChoice::Auto: break;
  }
  if (!why.empty()) return {model::Fidelity::Full, "the scenario breaks the symmetry between replicas: " + list};
  const std::string reason =
      "every replica of a pipeline rank has the same work, speed and routing: one replica per rank is simulated, "
      "collectives still carry their whole group's traffic; the other replicas' own transfers and groups are not "
      "simulated, so their contention on shared switch links is left out (equal to full on DeepSeek-V3 at 2,048 "
      "GPUs; within 1.2% at 4,096-16,384 GPUs and 2.4% on a single-plane fat-tree: docs/VALIDATION.md, "
      "docs/PERFORMANCE.md); --fidelity full gives the exact figure";
  return {model::Fidelity::Collapsed, reason};
}

}  // namespace

hw::CalibrationProfile load_scenario_profile(const Scenario& scenario) {
  try {
    return hw::load_profile(scenario.calibration);
  } catch (const InputError& e) {
    throw InputError(scenario.file, "/calibration", fmt::format("\"{}\"", scenario.calibration),
                     fmt::format("a calibration profile that loads ({})", e.what()));
  }
}

Simulation simulate(const Scenario& scenario, const SimulateOptions& options, const std::string& option) {
  if (options.record && scenario.trace_size() > kMaxTraceSize)
    throw InputError(scenario.file, "/training/global_batch_size",
                     fmt::format("{} micro-batches per pipeline x {} layers and modules = {} with --trace",
                                 scenario.microbatches_per_step(), scenario.trace_size() / scenario.microbatches_per_step(),
                                 scenario.trace_size()),
                     fmt::format("at most {} for a trace (it records every kernel: about 14 events each, 1M in all); "
                                 "simulate without --trace, or trace a smaller batch", kMaxTraceSize));
  Simulation sim{scenario, load_scenario_profile(scenario), {}, {}};
  const auto [fidelity, reason] = choose_fidelity(scenario, options.fidelity, option);
  sim.fidelity_reason = reason;
  model::StepInputs in;
  in.arch = &sim.scenario.arch;
  in.cluster = &sim.scenario.cluster;
  in.plan = &sim.scenario.plan;
  in.precision = sim.scenario.gemm_precision;
  in.seq_len = sim.scenario.training.seq_len;
  in.microbatches = sim.scenario.microbatches_per_step();
  in.profile = &sim.profile;
  in.fidelity = fidelity;
  in.slowdown = scenario.stragglers.factors(scenario.cluster.total_gpus());
  in.link_sigma = scenario.stragglers.link_sigma;
  in.link_seed = scenario.stragglers.link_seed;
  in.routing = scenario.routing;
  in.routing_states = scenario.routing_states;
  in.record = options.record;
  in.estimate_only = options.estimate_only;
  // Progress in simulated time against the estimated step (capped below the
  // end: the estimate leaves out contention, so the run may go past it).
  Progress bar(fmt::format("simulating {} GPUs", fidelity == model::Fidelity::Full ? scenario.cluster.total_gpus()
                                                                                : scenario.plan.pp),
               1000, options.progress);
  if (bar.active())
    in.progress = [&bar](double f) { bar.update(static_cast<std::uint64_t>(std::clamp(f, 0.0, 0.999) * 1000)); };
  try {
    sim.step = model::simulate_step(in);
  } catch (const TimeOverflow&) {
    throw InputError(scenario.file, "/training", fmt::format("seq_len {} with {} micro-batches per pipeline",
                                                            in.seq_len, in.microbatches),
                     "a step that fits in the 106 days of simulated time int64 picoseconds hold (a shorter "
                     "seq_len, fewer micro-batches or a smaller model)");
  }
  bar.finish();
  return sim;
}

namespace {

double gib(double bytes) { return bytes / kGiB; }

nlohmann::json layer_list(const std::vector<model::LayerKind>& layers) {
  nlohmann::json j = nlohmann::json::array();
  for (auto k : layers) j.push_back(model::to_string(k));
  return j;
}

// How the step was executed on the cluster, and what bounded it.
// How the layers were cut into stages: every candidate with its estimated
// step, and the chosen partition's device loads. The spread of the loads is
// the granularity the step pays because layers are indivisible.
nlohmann::json partition_json(const model::PartitionChoice& p) {
  nlohmann::json cands = nlohmann::json::array();
  for (std::size_t i = 0; i < p.candidates.size(); ++i) {
    const auto& c = p.candidates[i];
    cands.push_back({{"method", c.method},
                     {"layers_per_stage", c.counts},
                     {"estimated_step_s", c.estimate.to_seconds()},
                     {"chosen", static_cast<int>(i) == p.chosen}});
  }
  double mx = 0, sum = 0;
  for (double l : p.device_load_s) {
    mx = std::max(mx, l);
    sum += l;
  }
  const double mean = p.device_load_s.empty() ? 0 : sum / static_cast<double>(p.device_load_s.size());
  nlohmann::json out;
  out["candidates"] = cands;
  out["device_load_ms_per_microbatch"] = nlohmann::json::array();
  for (double l : p.device_load_s) out["device_load_ms_per_microbatch"].push_back(l * 1e3);
  out["device_load_max_over_mean"] = mean > 0 ? mx / mean : 1.0;
  return out;
}

nlohmann::json cluster_block(const Simulation& sim) {
  const model::StepResult& st = sim.step;
  const Scenario& sc = sim.scenario;
  const int per_rank = sc.plan.dp * sc.plan.tp;
  nlohmann::json c;
  c["fidelity"] = model::to_string(st.fidelity);
  c["fidelity_reason"] = sim.fidelity_reason;
  c["simulated_gpus"] = st.simulated_gpus;
  c["events"] = st.events;
  c["flows"] = st.flows;
  c["collectives"] = st.collectives;
  const int g = st.critical_gpu;
  c["critical_gpu"] = {{"gpu", g},
                       {"node", g / sc.cluster.gpus_per_node},
                       {"pipeline_rank", g / per_rank},
                       {"replica", g % per_rank},
                       {"note", "the GPU whose optimizer step ends last: it ends the step"}};
  if (!st.critical_link.empty())
    c["critical_link"] = {{"link", st.critical_link},
                          {"bounded_s", st.critical_link_time.to_seconds()},
                          {"note", "the link that bounded flows for the longest: summed lives of the flows whose "
                                   "bottleneck it was (every simulated flow)"}};
  const model::GroupStats& cg = st.critical_group;
  if (cg.instances > 0) {
    c["critical_group"] = {
        {"kind", model::to_string(cg.kind)},
        {"group", cg.group},
        {"members", st.critical_group_members},
        {"collectives", cg.instances},
        {"total_s", cg.total.to_seconds()},
        {"waiting_for_last_member_s", cg.waiting.to_seconds()},
        {"slowest_member", cg.slowest_member >= 0 ? nlohmann::json(cg.slowest_member) : nlohmann::json(nullptr)},
        {"note", "the expert- or tensor-parallel group whose collectives took longest in all (first arrival to "
                 "end), and the member the others waited for most"}};
  }
  return c;
}

}  // namespace

nlohmann::json make_report(const Simulation& sim) {
  const Scenario& sc = sim.scenario;
  const model::StepResult& st = sim.step;
  const int gpus = sc.cluster.total_gpus();
  const double step_s = st.step_time.to_seconds();
  const double tokens_step = static_cast<double>(sc.tokens_per_step());
  const double tps = tokens_step / step_s;
  const double tps_gpu = tps / gpus;
  const double model_tflops_gpu = st.model_flops_per_step / step_s / gpus / 1e12;
  const double peak_bf16 = sc.cluster.gpu.peak_bf16.value() / 1e12;
  const double run_seconds = sc.training.tokens / tps;
  const double total_gpu_hours = run_seconds * gpus / 3600.0;

  nlohmann::json r;
  r["schema_version"] = kReportSchemaVersion;
  r["scenario_name"] = sc.name;
  r["step_time_s"] = step_s;
  r["tokens_per_step"] = tokens_step;
  r["tokens_per_second"] = tps;
  r["tokens_per_second_per_gpu"] = tps_gpu;
  r["model_tflops_per_gpu"] = model_tflops_gpu;
  r["executed_tflops_per_gpu"] = st.executed_flops_per_step / step_s / gpus / 1e12;
  r["mfu"] = model_tflops_gpu / peak_bf16;
  r["model_flops_per_token"] = st.model_flops_per_step / tokens_step;
  r["gpu_hours_per_trillion_tokens"] = 1e12 / tps * gpus / 3600.0;
  r["total_gpu_hours"] = total_gpu_hours;
  r["total_cost_usd"] = total_gpu_hours * sc.usd_per_gpu_hour;
  r["wall_clock_days"] = run_seconds / 86400.0;
  r["gpus"] = gpus;

  const auto& bd = st.breakdown;
  nlohmann::json b;
  b["rank"] = bd.rank;
  b["compute_s"] = bd.compute.to_seconds();
  b["exposed_communication_s"] = {{"ep_dispatch", bd.exposed_ep.ep_dispatch.to_seconds()},
                                  {"ep_combine", bd.exposed_ep.ep_combine.to_seconds()},
                                  {"tensor_parallel", bd.exposed_ep.tp.to_seconds()},
                                  {"pipeline_p2p", bd.exposed_pp.to_seconds()},
                                  {"data_parallel", bd.dp_sync.to_seconds()}};
  b["pipeline_bubble_s"] = bd.bubble.to_seconds();
  b["optimizer_s"] = bd.optimizer.to_seconds();
  const double accounted = bd.compute.to_seconds() + bd.exposed_ep.total().to_seconds() + bd.exposed_pp.to_seconds() +
                           bd.dp_sync.to_seconds() + bd.bubble.to_seconds() + bd.optimizer.to_seconds();
  // Chunk durations are whole picoseconds of overlapped streams; what is left
  // is the scheduling slack inside overlapped F&B pairs (both streams idle).
  b["other_s"] = step_s - accounted;
  b["note"] = "seconds per step on the pipeline rank that ends the step; compute + exposed communication + bubble + optimizer + other = step_time_s";
  r["breakdown"] = b;

  r["cluster_simulation"] = cluster_block(sim);

  const auto& pm = st.peak_memory;
  nlohmann::json mem;
  mem["peak_gib_per_gpu"] = gib(pm.total_bytes());
  mem["capacity_gib"] = gib(sc.cluster.gpu.hbm_capacity.value());
  mem["fits"] = pm.total_bytes() <= sc.cluster.gpu.hbm_capacity.value();
  mem["rank"] = pm.rank;
  mem["weights_gib"] = gib(pm.weights_bytes);
  mem["gradients_gib"] = gib(pm.gradients_bytes);
  mem["optimizer_gib"] = gib(pm.optimizer_bytes);
  mem["activations_gib"] = gib(pm.activations_bytes);
  mem["activation_microbatches_in_flight"] = pm.activation_chunks_peak;
  mem["transient_gib"] = gib(pm.transient_bytes);
  nlohmann::json per_rank = nlohmann::json::array();
  for (const auto& m : st.memory)
    per_rank.push_back({{"rank", m.rank},
                        {"total_gib", gib(m.total_bytes())},
                        {"weights_gib", gib(m.weights_bytes)},
                        {"gradients_gib", gib(m.gradients_bytes)},
                        {"optimizer_gib", gib(m.optimizer_bytes)},
                        {"activations_gib", gib(m.activations_bytes)},
                        {"transient_gib", gib(m.transient_bytes)},
                        {"activation_microbatches_in_flight", m.activation_chunks_peak}});
  mem["per_rank"] = per_rank;
  r["memory"] = mem;

  nlohmann::json pipe;
  pipe["schedule"] = model::to_string(sc.plan.schedule);
  pipe["microbatches_per_step"] = sc.microbatches_per_step();
  pipe["makespan_s"] = st.makespan.to_seconds();
  pipe["p2p_transfer_s"] = st.p2p_seconds;
  nlohmann::json stages = nlohmann::json::array();
  for (std::size_t s = 0; s < st.stages.size(); ++s) {
    const auto& c = st.stages[s];
    stages.push_back({{"stage", s},
                      {"layers", layer_list(c.layers)},
                      {"forward_ms", c.forward.to_ms()},
                      {"backward_input_ms", c.backward_input.to_ms()},
                      {"backward_weight_ms", c.backward_weight.to_ms()},
                      {"backward_full_ms", c.backward_full.to_ms()},
                      {"params_per_gpu", c.params_per_gpu},
                      {"activations_gib_per_microbatch", gib(c.activations_per_microbatch.value())}});
  }
  pipe["stages"] = stages;
  pipe["partition"] = partition_json(st.partition);
  // Every operation of each layer kind, as timed: the basis of every number above.
  nlohmann::json kinds = nlohmann::json::object();
  for (const auto& lk : st.layer_kinds) {
    nlohmann::json ops = nlohmann::json::array();
    nlohmann::json by = nlohmann::json::object();
    for (const auto& t : lk.ops) {
      const double ms = t.duration.to_ms();
      nlohmann::json o = {{"name", t.op.name},
                          {"pass", model::to_string(t.op.pass)},
                          {"kind", model::to_string(t.op.kind)},
                          {"ms", ms}};
      if (t.op.kind == model::OpKind::Comm) {
        o["comm_bytes"] = t.op.comm.bytes.value();
      } else if (t.op.kind == model::OpKind::Memory) {
        o["hbm_bytes"] = t.op.hbm_bytes.value();
      } else {
        o["flops"] = t.op.flops.value();
        o["achieved_tflops"] = ms > 0 ? t.op.flops.value() / (ms * 1e-3) / 1e12 : 0.0;
      }
      if (t.op.recompute) o["recompute"] = true;
      ops.push_back(o);
      const std::string key = std::string(model::to_string(t.op.pass)) + "." + model::to_string(t.op.kind);
      by[key] = by.value(key, 0.0) + ms;
    }
    kinds[model::to_string(lk.kind)] = {{"ms_by_pass_and_kind", by}, {"ops", ops}};
  }
  pipe["layer_kinds"] = kinds;
  nlohmann::json pairs = nlohmann::json::array();
  for (const auto& p : st.pairs)
    pairs.push_back({{"forward_stage", p.forward_stage},
                     {"backward_stage", p.backward_stage},
                     {"duration_ms", p.duration.to_ms()},
                     {"compute_busy_ms", p.compute_busy.to_ms()},
                     {"comm_busy_ms", p.comm_busy.to_ms()}});
  pipe["overlapped_pairs"] = pairs;
  nlohmann::json bubbles = nlohmann::json::array();
  for (const auto& t : st.exec.bubble_per_rank) bubbles.push_back(t.to_seconds());
  pipe["bubble_per_rank_s"] = bubbles;
  r["pipeline"] = pipe;

  r["scenario"] = to_json(sc);
  r["calibration"] = hw::to_json(sim.profile);
  r["calibration"]["applied_to"] = sc.cluster.gpu.name;
  r["calibration"]["transferred"] = sim.profile.gpu != sc.cluster.gpu.name;
  r["calibration"]["compute_sms"] = st.compute_sms;

  nlohmann::json as = nlohmann::json::array();
  as.push_back(st.fidelity == model::Fidelity::Full
                   ? "Every GPU of the cluster is simulated, each running its pipeline rank's schedule kernel by kernel on a compute and a communication stream."
                   : "One replica per pipeline rank is simulated (the others are its exact copies: same work, speed, routing and routes); every collective still carries its whole group's traffic.");
  as.push_back(sc.routing.kind == model::RoutingKind::Balanced
                   ? "Expert routing is balanced: the expected traffic of uniform node-limited top-k routing, the same for every layer and micro-batch."
                   : fmt::format("Expert routing is {}: a pool of {} drawn routing states, one picked per (EP group, layer, micro-batch); expert GEMMs are re-timed from each GPU's mean rows per local expert.",
                                 model::to_string(sc.routing.kind), sc.routing_states));
  as.push_back("MoE dispatch/combine move as DeepEP's normal kernels do (one InfiniBand copy per target node to the same local rank, NVLink forwarding; FP8 dispatch, BF16 combine), timed as flows on the fabric at achievable link rates (data/network/efficiency.json); DeepEP's published bandwidths are validation data only.");
  as.push_back("A collective starts when every member has reached it and runs as one bundled flow on the fabric (max-min fair sharing with all other flows; no congestion-control dynamics, no per-transfer unfairness inside a bundle).");
  as.push_back("Within a chunk, kernels run as a chain; communication overlaps computation by pairing a forward and a backward chunk (DualPipe F&B, in one static order of collectives on every GPU) and, with tp_comm_overlap, tensor-parallel collectives with their GEMMs.");
  if (sc.plan.zero_stage >= 3)
    as.push_back("ZeRO-3, as FSDP runs it with one layer per unit: every chunk all-gathers each layer's BF16 parameters before the layer (one layer of prefetch) and every backward reduce-scatters each layer's FP32 gradients after it, on a data-parallel stream beside the chunk's kernels, as ring bundles over the data-parallel group; the first layer of each chunk is gathered when its op starts (no prefetch across ops), and the SMs those collectives use are not charged.");
  else if (sc.plan.overlap_grad_reduce)
    as.push_back(fmt::format("Data-parallel gradients (FP32) are {} layer by layer during each stage's last backward on a GPU, on a data-parallel stream per stage beside its kernels (overlap_grad_reduce), as ring bundles over the data-parallel group; {}the SMs those collectives use are not charged.",
                             sc.plan.zero_stage == 0 ? "all-reduced" : "reduce-scattered",
                             sc.plan.zero_stage == 0 ? "" : "the parameter all-gather (BF16) runs after the GPU's last pipeline op; "));
  else
    as.push_back("Data-parallel gradient reduce-scatter (FP32) and parameter all-gather (BF16) run after each GPU's last pipeline op, as ring bundles over its data-parallel group, not overlapped with the backward.");
  as.push_back("Pipeline transfers are flows on the same fabric as every collective.");
  as.push_back("Layers are split into contiguous stages: candidate partitions balance stages or devices (a device may hold several stages) by the time a layer takes as the schedule runs it; each is estimated by executing the pipeline schedule with its simulated chunk times plus the gradient sync, and the best is simulated (pipeline.partition lists them).");
  as.push_back("AdamW with FP32 master weights and BF16 moments; gradients FP32; weights BF16.");
  as.push_back("Whole-run figures assume every step runs at the simulated speed: no failures, restarts, checkpoints, evaluation or batch-size warm-up.");
  if (sim.profile.gpu != sc.cluster.gpu.name)
    as.push_back(fmt::format("The calibration profile was measured on {}; it is transferred to {} by datasheet peak ratios, not measured.",
                             sim.profile.gpu, sc.cluster.gpu.name));
  r["assumptions"] = as;
  return r;
}

// ---- the whole run (phases, failures): run_cost.hpp ----

nlohmann::json make_report(const Simulation& sim, const RunResult& run) {
  nlohmann::json r = make_report(sim);
  r["run"] = run_to_json(run);
  if (run.reliability)
    for (auto& a : r["assumptions"])
      if (a.get<std::string>().rfind("Whole-run figures assume", 0) == 0)
        a = "Top-level whole-run figures assume every step runs at the simulated speed; the run block's with_failures "
            "figures add expected failures, restarts and checkpoints (reliability); evaluation is not modelled.";
  if (!run.explicit_phases) return r;
  const auto& t = r["run"]["totals"];
  r["total_gpu_hours"] = t["gpu_hours"];
  r["total_cost_usd"] = t["cost_usd"];
  r["wall_clock_days"] = t["days"];
  r["assumptions"].push_back(
      "The scenario lists phases: total_gpu_hours, total_cost_usd and wall_clock_days are the sum of its phases (run "
      "block), each simulated with its own sequence length, batch and layout; the other top-level figures are the "
      "step of `training`.");
  return r;
}

namespace {

// The per-phase table and the failure summary of a report's `run` block.
std::string run_text(const nlohmann::json& run) {
  std::string s;
  const bool failures = !run.at("reliability").is_null();
  s += fmt::format("{:<22}{:>10}{:>9}{:>10}{:>13}{:>8}{:>9}{}\n", "run by phase", "steps", "tokens", "step s",
                   "GPU-hours", "days", "$M", failures ? "   with failures: GPU-hours, days (goodput)" : "");
  auto row = [&](const std::string& name, const nlohmann::json& p, double step_s) {
    s += fmt::format("  {:<20}{:>10.0f}{:>8.1f}B{:>10}{:>13.0f}{:>8.2f}{:>9.3f}", name, p.at("steps").get<double>(),
                     p.at("tokens").get<double>() / 1e9, step_s > 0 ? fmt::format("{:.2f}", step_s) : "",
                     p.at("gpu_hours").get<double>(), p.at("days").get<double>(), p.at("cost_usd").get<double>() / 1e6);
    if (failures) {
      const auto& w = p.at("with_failures");
      s += fmt::format("   {:.0f}, {:.2f} ({:.1f}%)", w.at("gpu_hours").get<double>(), w.at("days").get<double>(),
                       100 * w.at("goodput").get<double>());
    }
    s += "\n";
  };
  for (const auto& p : run.at("phases")) row(p.at("name").get<std::string>(), p, p.at("mean_step_time_s").get<double>());
  for (const char* kind : {"pretraining", "context_extension", "post_training"})
    if (run.at("by_kind").contains(kind)) row(std::string("all ") + kind, run.at("by_kind").at(kind), 0);
  row("total", run.at("totals"), 0);
  const auto& rel = run.at("reliability");
  if (failures && rel.at("job_mtbf_hours").is_null()) {
    s += "failures            none (failure rates 0): figures with failures equal the failure-free ones\n";
  } else if (failures) {
    const auto& r = rel;
    s += fmt::format("failures            job MTBF {:.1f} h; checkpoint {:.0f} GiB in {:.0f} s every {:.0f} s of work "
                     "(Young {:.0f} s, Daly {:.0f} s); restart {:.0f} s; {:.1f} interruptions expected\n",
                     r.at("job_mtbf_hours").get<double>(), r.at("checkpoint_size_gib").get<double>(),
                     r.at("checkpoint_write_s").get<double>(), r.value("checkpoint_interval_s", 0.0),
                     r.at("young_interval_s").get<double>(), r.at("daly_interval_s").get<double>(),
                     r.at("restart_s").get<double>(),
                     run.at("totals").at("with_failures").at("interruptions").get<double>());
  }
  return s;
}

// "stage partition     [6, 4, ..., 2] layers; busiest device 1.06x the mean
// (layers are indivisible)": the granularity a step pays.
std::string partition_line(const nlohmann::json& p) {
  std::string counts;
  for (const auto& c : p.at("candidates"))
    if (c.at("chosen").get<bool>()) counts = c.at("layers_per_stage").dump();
  return fmt::format("stage partition     {} layers per stage ({} candidate{} estimated); busiest device {:.2f}x the mean load (layers are indivisible)\n",
                     counts, p.at("candidates").size(), p.at("candidates").size() == 1 ? "" : "s", p.at("device_load_max_over_mean").get<double>());
}

}  // namespace

std::string summary_text(const nlohmann::json& r) {
  std::string s;
  auto num = [&](const char* k) { return r.at(k).get<double>(); };
  const auto& b = r.at("breakdown");
  const auto& e = b.at("exposed_communication_s");
  const auto& m = r.at("memory");
  s += fmt::format("scenario            {}\n", r.at("scenario_name").get<std::string>());
  s += fmt::format("GPUs                {}\n", r.at("gpus").get<int>());
  s += fmt::format("step time           {:.3f} s\n", num("step_time_s"));
  s += fmt::format("throughput          {:.0f} tokens/s ({:.0f} per GPU)\n", num("tokens_per_second"),
                   num("tokens_per_second_per_gpu"));
  s += fmt::format("model TFLOPS/GPU    {:.1f} (MFU {:.1f}% of BF16 peak)\n", num("model_tflops_per_gpu"), 100 * num("mfu"));
  s += fmt::format("GPU-hours / 1T tok  {:.0f}\n", num("gpu_hours_per_trillion_tokens"));
  s += fmt::format("whole run           {:.0f} GPU-hours, {:.1f} days, ${:.2f}M\n", num("total_gpu_hours"),
                   num("wall_clock_days"), num("total_cost_usd") / 1e6);
  const auto& cs = r.at("cluster_simulation");
  s += fmt::format("simulated           {} of {} GPUs ({}): {}\n", cs.at("simulated_gpus").get<int>(),
                   r.at("gpus").get<int>(), cs.at("fidelity").get<std::string>(),
                   cs.at("fidelity_reason").get<std::string>());
  s += fmt::format("critical GPU        {} (node {}, pipeline rank {})\n", cs.at("critical_gpu").at("gpu").get<int>(),
                   cs.at("critical_gpu").at("node").get<int>(), cs.at("critical_gpu").at("pipeline_rank").get<int>());
  if (cs.contains("critical_group")) {
    const auto& g = cs.at("critical_group");
    const auto& m = g.at("members");
    const auto& slow = g.at("slowest_member");
    s += fmt::format("critical group      {} group {} (GPUs {}..{}): {:.3f} s in collectives, {:.3f} s waiting for {}\n",
                     g.at("kind").get<std::string>(), g.at("group").get<int>(), m.front().get<int>(),
                     m.back().get<int>(), g.at("total_s").get<double>(), g.at("waiting_for_last_member_s").get<double>(),
                     slow.is_null() ? std::string("no member") : fmt::format("GPU {} most", slow.get<int>()));
  }
  if (cs.contains("critical_link"))
    s += fmt::format("critical link       {}: bounded flows for {:.3f} s in all\n",
                     cs.at("critical_link").at("link").get<std::string>(),
                     cs.at("critical_link").at("bounded_s").get<double>());
  s += fmt::format("step breakdown (pipeline rank {}, the one that ends the step):\n", b.at("rank").get<int>());
  s += fmt::format("  compute           {:.3f} s\n", b.at("compute_s").get<double>());
  s += fmt::format("  exposed comm      dispatch {:.3f} s, combine {:.3f} s, TP {:.3f} s, PP {:.3f} s, DP {:.3f} s\n",
                   e.at("ep_dispatch").get<double>(), e.at("ep_combine").get<double>(),
                   e.at("tensor_parallel").get<double>(), e.at("pipeline_p2p").get<double>(),
                   e.at("data_parallel").get<double>());
  s += fmt::format("  pipeline bubble   {:.3f} s\n", b.at("pipeline_bubble_s").get<double>());
  s += fmt::format("  optimizer         {:.3f} s\n", b.at("optimizer_s").get<double>());
  s += partition_line(r.at("pipeline").at("partition"));
  s += fmt::format("memory per GPU      {:.1f} GiB of {:.1f} GiB ({}): weights {:.1f}, grads {:.1f}, optimizer {:.1f}, activations {:.1f} ({} micro-batches), transient {:.1f}\n",
                   m.at("peak_gib_per_gpu").get<double>(), m.at("capacity_gib").get<double>(),
                   m.at("fits").get<bool>() ? "fits" : "DOES NOT FIT", m.at("weights_gib").get<double>(),
                   m.at("gradients_gib").get<double>(), m.at("optimizer_gib").get<double>(),
                   m.at("activations_gib").get<double>(), m.at("activation_microbatches_in_flight").get<int>(),
                   m.at("transient_gib").get<double>());
  if (r.contains("run") && (r.at("run").at("explicit_phases").get<bool>() || !r.at("run").at("reliability").is_null()))
    s += run_text(r.at("run"));
  return s;
}

namespace {

double us_of(Time t) { return static_cast<double>(t.count_ps()) / 1e6; }

// The kernels of replica 0 of every pipeline rank as the cluster execution
// ran them: every kernel on the rank that ends the step, one "busy" event per
// gapless stretch on the others (keeps the trace small enough to open and
// still shows where a stream waits).
void stream_events(const Simulation& sim, nlohmann::json& events) {
  const auto& st = sim.step;
  std::vector<std::vector<const model::KernelRecord*>> per(static_cast<std::size_t>(st.schedule.ranks * 2));
  for (const auto& k : st.kernels)
    per[static_cast<std::size_t>(k.rank * 2 + (k.stream == model::Stream::Comm ? 1 : 0))].push_back(&k);
  for (int rk = 0; rk < st.schedule.ranks; ++rk) {
    const bool detailed = rk == st.breakdown.rank;
    for (int stream = 0; stream < 2; ++stream) {
      const char* what = stream == 0 ? "compute stream" : "communication stream";
      events.push_back({{"ph", "M"}, {"name", "thread_name"}, {"pid", rk}, {"tid", stream + 1},
                        {"args", {{"name", fmt::format("{} ({})", what, detailed ? "kernels" : "busy stretches")}}}});
      auto& list = per[static_cast<std::size_t>(rk * 2 + stream)];
      std::stable_sort(list.begin(), list.end(), [](auto* x, auto* y) { return x->start < y->start; });
      const auto& ops = st.schedule.per_rank[static_cast<std::size_t>(rk)];
      for (std::size_t i = 0; i < list.size();) {
        const model::KernelRecord& k = *list[i];
        std::size_t j = i + 1;
        Time end = k.end;
        if (!detailed)
          while (j < list.size() && list[j]->start == end) end = list[j++]->end;
        nlohmann::json e{{"ph", "X"}, {"pid", rk}, {"tid", stream + 1}, {"ts", us_of(k.start)}, {"dur", us_of(end - k.start)}};
        if (detailed) {
          const model::ScheduleOp& op = ops[static_cast<std::size_t>(k.op)];
          const bool fwd = op.type == ChunkOpType::F || (op.type == ChunkOpType::FB && k.role == 0);
          const int stage = fwd ? op.fwd.stage : op.bwd.stage;
          const model::ChunkProgram* prog =
              fwd ? &st.program_f[static_cast<std::size_t>(stage)]
                  : op.type == ChunkOpType::B ? &st.program_b[static_cast<std::size_t>(stage)]
                  : op.type == ChunkOpType::W ? &st.program_w[static_cast<std::size_t>(stage)]
                                              : &st.program_bw[static_cast<std::size_t>(stage)];
          const model::TimedOp& top = prog->ops[static_cast<std::size_t>(k.kernel)];
          e["name"] = top.op.name;
          e["cat"] = model::to_string(top.op.pass);
          e["args"] = {{"layer", top.layer}, {"kind", model::to_string(top.op.kind)}, {"stage", stage}};
        } else {
          e["name"] = "busy";
          e["args"] = {{"kernels", j - i}};
        }
        events.push_back(std::move(e));
        i = j;
      }
    }
  }
}

// Flows of replica 0 of every rank: its collectives' bundles and the
// pipeline transfers it sends, each with the link that bounded it.
void flow_events(const Simulation& sim, nlohmann::json& events) {
  const auto& st = sim.step;
  for (int rk = 0; rk < st.schedule.ranks; ++rk)
    events.push_back({{"ph", "M"}, {"name", "thread_name"}, {"pid", rk}, {"tid", 3},
                      {"args", {{"name", "network flows (bounding link)"}}}});
  for (const auto& t : st.transfers) {
    const std::string link = t.bottleneck >= 0 ? st.link_names[static_cast<std::size_t>(t.bottleneck)] : "none";
    const std::string name = t.kind == model::CommKind::None ? fmt::format("p2p to rank {}", t.peer_rank)
                                                             : std::string(model::to_string(t.kind));
    events.push_back({{"ph", "X"},
                      {"name", name},
                      {"cat", "flow"},
                      {"pid", t.rank},
                      {"tid", 3},
                      {"ts", us_of(t.start)},
                      {"dur", us_of(t.end - t.start)},
                      {"args", {{"bytes", t.bytes}, {"bounded_by", link}}}});
  }
}

}  // namespace

nlohmann::json chrome_trace(const Simulation& sim) {
  const auto& st = sim.step;
  nlohmann::json events = nlohmann::json::array();
  auto us = [](Time t) { return static_cast<double>(t.count_ps()) / 1e6; };
  for (int rk = 0; rk < st.schedule.ranks; ++rk) {
    events.push_back({{"ph", "M"}, {"name", "process_name"}, {"pid", rk}, {"args", {{"name", fmt::format("pipeline rank {} (GPU)", rk)}}}});
    events.push_back({{"ph", "M"}, {"name", "thread_name"}, {"pid", rk}, {"tid", 0}, {"args", {{"name", "pipeline chunks"}}}});
    const auto& ops = st.schedule.per_rank[static_cast<std::size_t>(rk)];
    for (const auto& t : st.exec.timeline[static_cast<std::size_t>(rk)]) {
      const auto& op = ops[static_cast<std::size_t>(t.index)];
      events.push_back({{"ph", "X"},
                        {"name", model::describe(op)},
                        {"cat", model::to_string(op.type)},
                        {"pid", rk},
                        {"tid", 0},
                        {"ts", us(t.start)},
                        {"dur", us(t.end - t.start)},
                        {"args", {{"phase", op.phase}}}});
    }
  }
  stream_events(sim, events);
  flow_events(sim, events);
  nlohmann::json j;
  j["traceEvents"] = events;
  j["displayTimeUnit"] = "ms";
  j["otherData"] = {{"scenario", sim.scenario.name}, {"generator", "trainsim"}};
  return j;
}

}  // namespace trainsim::app
