// trainsim command-line interface. Thin: parsing of arguments, error
// reporting and output files. Everything else lives in the libraries.
//
// One error path: every failure, command-line errors included, is one line
// `trainsim: error: ...` on stderr (printable: control characters escaped,
// long parts cut); exit 2 for bad input, 1 only for an internal fault (a bug).
// Outputs are all-or-nothing: each command declares its output files in an
// app::OutputSet before any work and commits them together at the end.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <iostream>
#include <optional>
#include <stdexcept>

#include "trainsim/app/chakra_export.hpp"
#include "trainsim/app/collective_study.hpp"
#include "trainsim/app/fabric_study.hpp"
#include "trainsim/app/html_report.hpp"
#include "trainsim/app/hf_config.hpp"
#include "trainsim/app/plan.hpp"
#include "trainsim/common/progress.hpp"
#ifdef TRAINSIM_HAVE_MPI
#include "plan_mpi.hpp"
#endif
#include "trainsim/app/output_set.hpp"
#include "trainsim/app/report.hpp"
#include "trainsim/app/run_cost.hpp"
#include "trainsim/app/scenario.hpp"
#include "trainsim/app/schedule_study.hpp"
#include "trainsim/hardware/calibration.hpp"
#include "trainsim/calibrate/cpu.hpp"
#include "trainsim/calibrate/cuda.hpp"
#include "trainsim/calibrate/import.hpp"
#include "trainsim/calibrate/numerics.hpp"
#include "trainsim/calibrate/replay.hpp"
#include "trainsim/kernels/cuda_device.hpp"
#include "trainsim/common/error.hpp"
#include "trainsim/common/json_reader.hpp"
#include "trainsim/common/progress.hpp"
#include "trainsim/hardware/gpu.hpp"
#include "trainsim/model/architecture.hpp"

namespace {

int input_error(const std::string& message) {
  std::cerr << "trainsim: error: " << trainsim::printable(message, 2000) << '\n';
  return 2;
}

int internal_error(const std::string& message) {
  std::cerr << "trainsim: error: internal error (a bug, please report it): " << trainsim::printable(message, 2000)
            << '\n';
  return 1;
}

// A calibration profile's "warnings" (fits whose data cannot determine a
// parameter, or poorly conditioned ones), one stderr line each.
void print_fit_warnings(const nlohmann::json& profile) {
  for (const auto& w : profile.value("warnings", nlohmann::json::array()))
    std::cerr << "trainsim: warning: " << w.get<std::string>() << '\n';
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"trainsim: simulate and plan large-scale LLM training runs"};
  app.require_subcommand(1);

  std::string scenario_file, report_file, trace_file;
  bool quiet = false;
  auto* simulate = app.add_subcommand("simulate", "simulate one optimizer step of a scenario and predict the whole run");
  simulate->add_option("scenario", scenario_file, "scenario JSON file")->required();
  simulate->add_option("--report", report_file, "write the JSON report to this file");
  simulate->add_option("--trace", trace_file, "write a Chrome/Perfetto trace of one step to this file");
  std::string calibration_override;
  simulate->add_option("--calibration", calibration_override,
                       "calibration profile to use instead of the scenario's (a name in data/calibration or a file)");
  simulate->add_flag("--quiet", quiet, "do not print the summary");
  std::string html_file;
  simulate->add_option("--html", html_file,
                       "write the report as one self-contained HTML page (timeline, breakdown, memory, cost)");
  std::string chakra_dir;
  simulate->add_option("--chakra", chakra_dir,
                       "write the step as MLCommons Chakra execution traces (one file per GPU, for ASTRA-sim) into "
                       "this directory");
  std::string fidelity = "auto";
  simulate->add_option("--fidelity", fidelity,
                       "auto | full | collapsed: simulate every GPU (full), or one replica per pipeline rank "
                       "(collapsed; refused when replicas differ: stragglers, skewed routing, faults); auto collapses "
                       "unless the replicas differ, and the report says when collapsing is approximate")
      ->check(CLI::IsMember({"auto", "full", "collapsed"}));

  std::string import_file, out_file, device = "auto";
  bool quick = false;
  auto* calibrate = app.add_subcommand("calibrate", "build a calibration profile (measure this machine, or --import measurements taken elsewhere)");
  auto* import_opt = calibrate->add_option("--import", import_file, "JSON tables of kernel measurements taken elsewhere");
  calibrate->add_option("--device", device, "auto | cpu | cuda[:N]: the device to measure (auto: a GPU if one is found, else the CPU)")
      ->excludes(import_opt);
  calibrate->add_flag("--quick", quick, "fewer shapes and repeats");
  std::string calib_scenario;
  calibrate->add_option("--scenario", calib_scenario,
                        "CPU: measure GEMM shapes and sequence lengths around this scenario's model");
  calibrate->add_option("--out", out_file, "profile JSON to write")->required();

  std::string replay_scenario, replay_device = "cpu", replay_profile;
  bool replay_json = false;
  auto* replay = app.add_subcommand(
      "replay", "run one micro-batch chunk of a scenario for real on this machine and compare with the prediction");
  replay->add_option("scenario", replay_scenario, "scenario JSON file")->required();
  replay->add_option("--device", replay_device, "cpu (cuda: not yet)");
  replay->add_option("--calibration", replay_profile, "profile from `trainsim calibrate` on this machine")->required();
  replay->add_flag("--json", replay_json, "print JSON");

  bool fp8_json = false;
  auto* fp8err = app.add_subcommand(
      "fp8-error", "relative error of DeepSeek-V3's FP8 GEMM scheme for V3's K, with and without FP32 promotion every 128");
  fp8err->add_flag("--json", fp8_json, "print JSON");

  auto* presets = app.add_subcommand("presets", "list the GPU and model presets");
  std::string from_hf;
  presets->add_option("--from-hf", from_hf,
                      "print the architecture resolved from a Hugging Face config.json (as an inline scenario model)");

  std::string fabric_scenario, dot_file;
  bool fabric_json_out = false, fabric_list = false;
  auto* fabric = app.add_subcommand(
      "fabric", "describe a scenario's scale-out fabric: switches, cables, bisection, faults (reads only its cluster)");
  fabric->add_option("scenario", fabric_scenario, "scenario JSON file")->required();
  auto* fabric_json_flag = fabric->add_flag("--json", fabric_json_out, "print JSON");
  fabric->add_flag("--list", fabric_list, "also print every switch and cable name (the names faults use)")
      ->excludes(fabric_json_flag);
  fabric->add_option("--dot", dot_file, "write a Graphviz drawing of the fabric (small fabrics only)");

  // `schedule`: one pipeline schedule with abstract per-chunk durations (any
  // unit; the output uses the same one).
  std::string sched_kind, svg_file;
  trainsim::app::StudyParams study;
  double fb_value = 0.0;
  bool study_json_out = false;
  auto* schedule = app.add_subcommand(
      "schedule", "simulate one pipeline schedule with given chunk durations, print its bubble, draw it");
  schedule->add_option("--kind", sched_kind, "schedule: " + trainsim::app::schedule_kind_cli_names())->required();
  schedule->add_option("--ranks", study.ranks, "devices along the pipeline (DualPipeV runs two stages on each)")
      ->required();
  schedule->add_option("--microbatches", study.microbatches, "micro-batches in the step (DualPipe: both directions)")
      ->required();
  schedule->add_option("--virtual-stages", study.virtual_stages,
                       "model chunks per rank of the interleaved schedule (default 2)")
      ->check(CLI::Range(1, 1024));
  schedule->add_option("--f", study.f, "forward time of one chunk")->capture_default_str();
  schedule->add_option("--b", study.b, "full backward time of one chunk (input + weight gradients)")
      ->capture_default_str();
  schedule->add_option("--w", study.w, "weight-gradient part of --b (the input backward takes b - w)")
      ->capture_default_str();
  auto* fb_opt =
      schedule->add_option("--fb", fb_value, "time of an overlapped forward + backward pair (default f + b)");
  schedule->add_option("--p2p", study.p2p, "transfer time between neighbouring stages on different devices")
      ->capture_default_str();
  schedule->add_flag("--json", study_json_out, "print the study as JSON instead of the text summary");
  schedule->add_option("--svg", svg_file, "draw the schedule into this SVG file");

  std::string coll_scenario, coll_op, coll_bytes;
  trainsim::app::CollectiveParams coll;
  double coll_tokens = 0;
  bool coll_json = false;
  auto* collective = app.add_subcommand(
      "collective", "time one collective on the first N GPUs of a scenario's cluster, nccl-tests style");
  collective->add_option("scenario", coll_scenario, "scenario JSON file")->required();
  collective->add_option("--op", coll_op, trainsim::app::collective_op_names())->required();
  collective->add_option("--group", coll.group, "N: the group is GPUs 0..N-1 (a divisor of the cluster's GPUs)")
      ->required();
  collective->add_option("--bytes", coll_bytes, "LOW:HIGH sizes, doubling (K, M, G = 1024^1..3), e.g. 1K:8G");
  auto* tokens_opt = collective->add_option("--tokens", coll_tokens,
                                            "moe ops: tokens per GPU (default: micro-batch x sequence / tp)");
  collective->add_flag("--json", coll_json, "print the rows as JSON");

  // `plan`: search layouts (app/plan.hpp); `plan merge`: combine --shard parts.
  std::string plan_scenario, plan_gpus, plan_objective = "cost", plan_out, plan_shard, plan_gpu_types;
  trainsim::app::PlanOptions plan_opt;
  bool plan_quiet = false;
  auto* plan = app.add_subcommand("plan", "search parallel layouts of a scenario's model and cluster, rank them");
#ifdef TRAINSIM_HAVE_MPI
  plan->footer("MPI: built in; under `mpirun -n N` the layouts are spread over the ranks (rank 0 writes)");
#endif
  plan->add_option("scenario", plan_scenario, "scenario JSON file");
  plan->add_option("--gpus", plan_gpus, "N, or A:B (doubling from A, B included): cluster sizes to search");
  plan->add_option("--objective", plan_objective, "cost | time | tokens-per-s")->capture_default_str();
  plan->add_option("--top", plan_opt.top, "best layouts to re-simulate exactly and report")->capture_default_str();
  plan->add_option("--out", plan_out, "write the plan JSON (or, with --shard, the part) to this file");
  plan->add_option("--shard", plan_shard, "i/N: evaluate only slice i of N (merge the parts with `plan merge`)");
  plan->add_option("--threads", plan_opt.threads, "worker threads (default: all cores)");
  plan->add_flag("--precisions", plan_opt.vary_precision, "also try bf16 and fp8 (where the GPU has it)");
  plan->add_flag("--comm-sms", plan_opt.vary_comm_sms, "also try the scenario's communication SMs -8 and +8");
  plan->add_option("--gpu-types", plan_gpu_types,
                   "GPU presets to compare, with prices: H800,H100=2.5,B200=4.1 (dollars per GPU-hour; the "
                   "scenario's price where none is given)");
  plan->add_option("--days", plan_opt.deadline_days,
                   "a deadline: the fewest GPUs and the cheapest layout finishing in time, and what a day is worth");
  plan->add_option("--screen", plan_opt.screen_fraction,
                   "share of each cluster size's feasible layouts (best by estimate) that the cluster execution "
                   "screens")
      ->capture_default_str();
  plan->add_flag("--quiet", plan_quiet, "no progress line and no table");
  std::vector<std::string> merge_parts;
  std::string merge_out;
  auto* plan_merge = plan->add_subcommand("merge", "combine the parts of a sharded plan");
  plan_merge->add_option("parts", merge_parts, "part files from `trainsim plan --shard i/N --out`")->required();
  plan_merge->add_option("--out", merge_out, "plan JSON to write")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    return input_error(fmt::format("command line: got {}; expected what `trainsim --help` lists", e.what()));
  }

  // Every output file of the command, declared before any work.
  trainsim::app::OutputSet outputs;
  try {
    if (*simulate) {
      outputs.add("--report", report_file, simulate->count("--report") > 0);
      outputs.add("--trace", trace_file, simulate->count("--trace") > 0);
      outputs.add("--html", html_file, simulate->count("--html") > 0);
      if (!chakra_dir.empty()) {
        if (!trainsim::app::chakra_available())
          throw trainsim::InputError("--chakra", "", "\"" + chakra_dir + "\"",
                                     "a trainsim built with protobuf (scripts/setup.sh installs it); this build has no "
                                     "Chakra export");
        const auto parent = std::filesystem::path(chakra_dir).parent_path();
        if (!parent.empty() && !std::filesystem::is_directory(parent))
          throw trainsim::InputError("--chakra", "", "\"" + chakra_dir + "\"", "a directory whose parent exists");
      }
      outputs.prepare();
      auto scenario = trainsim::app::load_scenario(scenario_file);
      if (!calibration_override.empty()) scenario.calibration = calibration_override;
      if (!chakra_dir.empty() && (scenario.plan.zero_stage >= 3 || scenario.plan.overlap_grad_reduce))
        throw trainsim::InputError("--chakra", "", "\"" + chakra_dir + "\"",
                                   "a scenario without per-layer data-parallel collectives: the Chakra export does not "
                                   "write those of zero_stage 3 or overlap_grad_reduce yet");
      trainsim::app::SimulateOptions opts;
      opts.fidelity = fidelity == "full"        ? trainsim::app::FidelityChoice::Full
                      : fidelity == "collapsed" ? trainsim::app::FidelityChoice::Collapsed
                                                : trainsim::app::FidelityChoice::Auto;
      opts.record = outputs.wanted("--trace") || outputs.wanted("--html") || !chakra_dir.empty();
      opts.progress = !quiet;
      const auto sim = trainsim::app::simulate(scenario, opts);
      const auto report = trainsim::app::make_report(sim, trainsim::app::evaluate_run(sim, opts));
      outputs.set("--report", report.dump(2) + "\n");
      if (outputs.wanted("--trace")) outputs.set("--trace", trainsim::app::chrome_trace(sim).dump() + "\n");
      if (outputs.wanted("--html")) outputs.set("--html", trainsim::app::simulate_html(report, sim));
      outputs.commit();
      std::optional<trainsim::app::ChakraSummary> chakra;
      if (!chakra_dir.empty()) chakra = trainsim::app::write_chakra(sim, chakra_dir);
      if (!quiet) std::cout << trainsim::app::summary_text(report);
      if (chakra && !quiet)
        std::cout << fmt::format("chakra traces       {} files ({} nodes, {:.1f} MB) and comm_group.json in {}\n",
                                 chakra->files, chakra->nodes, static_cast<double>(chakra->bytes) / 1e6, chakra_dir);
    } else if (*calibrate && import_file.empty()) {
      outputs.add("--out", out_file, true);
      outputs.prepare();
      bool cuda = device == "cuda" || device.rfind("cuda:", 0) == 0;
      if (!cuda && device != "cpu" && device != "auto")
        throw trainsim::InputError("--device", "", "\"" + device + "\"", "auto, cpu, cuda or cuda:N");
      const auto info = trainsim::kernels::query_cuda_devices();
      if (cuda && info.count == 0)
        throw trainsim::InputError("--device", "", "\"" + device + "\"",
                                   "a CUDA device, but none is usable: " + info.message);
      if (device == "auto") {
        if (info.count == 0)
          std::cerr << "trainsim: no CUDA device (" << info.message << "); calibrating the CPU instead\n";
        cuda = info.count > 0;
      }
      if (cuda) {
        int index = 0;  // cuda (= cuda:0) or cuda:N
        if (device.rfind("cuda:", 0) == 0) {
          const std::string n = device.substr(5);
          if (n.empty() || n.size() > 6 || n.find_first_not_of("0123456789") != std::string::npos)
            throw trainsim::InputError("--device", "", "\"" + device + "\"", "cuda:N with N a device index");
          index = std::stoi(n);
        }
        if (index >= info.count)
          throw trainsim::InputError("--device", "", "\"" + device + "\"",
                                     fmt::format("a device index below {} ({})", info.count, info.message));
        trainsim::calibrate::CudaCalibrationOptions copt;
        copt.device = index;
        copt.quick = quick;
        copt.progress = [](const std::string& m) { std::cerr << "calibrate: " << m << '\n'; };
        const auto profile = trainsim::calibrate::calibrate_cuda(copt);
        trainsim::hw::parse_profile(profile, out_file);  // what we write must load
        outputs.set("--out", profile.dump(1) + "\n");
        outputs.commit();
        print_fit_warnings(profile);
        std::cout << fmt::format("wrote {} (GPU FP8 GEMM fit over {} points: mean |error| {:.1f}%, max {:.1f}%)\n",
                                 out_file, profile["gemm_fp8"]["fit"]["points"].get<int>(),
                                 100 * profile["gemm_fp8"]["fit"]["mean_abs_rel_error"].get<double>(),
                                 100 * profile["gemm_fp8"]["fit"]["max_abs_rel_error"].get<double>());
        return 0;
      }
      trainsim::calibrate::CpuCalibrationOptions opt;
      opt.quick = quick;
      if (!calib_scenario.empty()) {
        const auto sc = trainsim::app::load_scenario(calib_scenario);
        trainsim::model::OpContext ctx;
        ctx.micro_batch_size = sc.plan.micro_batch_size;
        ctx.seq_len = sc.training.seq_len;
        ctx.gemm_precision = sc.gemm_precision;
        ctx.recompute = sc.plan.recompute;
        const auto grid = trainsim::calibrate::grid_for_model(sc.arch, ctx);
        opt.gemm_shapes = grid.gemm_shapes;
        opt.attention_seqs = grid.attention_seqs;
      }
      // A progress bar on a terminal (every measured point); quiet in pipes and CI.
      trainsim::Progress bar("calibrate: measuring CPU kernels", 0, true);
      opt.measured = [&bar](std::size_t, std::size_t total) {
        bar.set_total(total);
        bar.advance();
      };
      const auto profile = trainsim::calibrate::calibrate_cpu(opt);
      bar.finish();
      trainsim::hw::parse_profile(profile, out_file);  // what we write must load
      outputs.set("--out", profile.dump(1) + "\n");
      outputs.commit();
      print_fit_warnings(profile);
      std::cout << fmt::format("wrote {} (CPU GEMM fit over {} points: mean |error| {:.1f}%, max {:.1f}%)\n", out_file,
                               profile["gemm_fp8"]["fit"]["points"].get<int>(),
                               100 * profile["gemm_fp8"]["fit"]["mean_abs_rel_error"].get<double>(),
                               100 * profile["gemm_fp8"]["fit"]["max_abs_rel_error"].get<double>());
    } else if (*replay) {
      if (replay_device != "cpu")
        throw trainsim::InputError("--device", "", "\"" + replay_device + "\"", "cpu (the CUDA replay is not implemented yet)");
      const auto scenario = trainsim::app::load_scenario(replay_scenario);
      const auto profile = trainsim::hw::load_profile(replay_profile);
      if (profile.device.name.empty())
        throw trainsim::InputError(replay_profile, "/device", "a profile with no measured device (imported or published)",
                                   "a profile measured on this machine: trainsim calibrate --device cpu --out FILE");
      trainsim::calibrate::ReplayInputs in;
      in.arch = &scenario.arch;
      in.cluster = &scenario.cluster;
      in.plan = &scenario.plan;
      in.precision = scenario.gemm_precision;
      in.seq_len = scenario.training.seq_len;
      in.profile = &profile;
      auto r = trainsim::calibrate::replay_cpu(in);
      r["scenario"] = scenario.name;
      if (replay_json) {
        std::cout << r.dump(2) << '\n';
      } else {
        std::cout << fmt::format("replay of {} on {}: measured {:.4f} s, predicted {:.4f} s, predicted/measured {:.3f}\n",
                                 scenario.name, r["device"].get<std::string>(), r["measured_s"].get<double>(),
                                 r["predicted_s"].get<double>(), r["ratio"].get<double>());
        for (const auto& [k, v] : r["by_kind"].items())
          std::cout << fmt::format("  {:22s} measured {:.4f} s  predicted {:.4f} s  ratio {:.3f}  ({} ops)\n", k,
                                   v["measured_s"].get<double>(), v["predicted_s"].get<double>(),
                                   v["ratio"].get<double>(), v["ops"].get<int>());
      }
    } else if (*calibrate) {
      outputs.add("--out", out_file, true);
      outputs.prepare();
      const auto tables = trainsim::parse_json_file(import_file);
      const auto profile = trainsim::calibrate::import_published_tables(tables, import_file);
      outputs.set("--out", profile.dump(1) + "\n");
      outputs.commit();
      print_fit_warnings(profile);
      std::cout << fmt::format("wrote {} (GEMM fit over {} points: mean |error| {:.1f}%, max {:.1f}%)\n", out_file,
                               profile["gemm_fp8"]["fit"]["points"].get<int>(),
                               100 * profile["gemm_fp8"]["fit"]["mean_abs_rel_error"].get<double>(),
                               100 * profile["gemm_fp8"]["fit"]["max_abs_rel_error"].get<double>());
    } else if (*schedule) {
      const auto kind = trainsim::app::parse_schedule_kind(sched_kind);
      if (!kind)
        throw trainsim::InputError("--kind", "", "\"" + sched_kind + "\"",
                                   "one of " + trainsim::app::schedule_kind_cli_names());
      study.kind = *kind;
      if (fb_opt->count() > 0) study.fb = fb_value;
      outputs.add("--svg", svg_file, schedule->count("--svg") > 0);
      outputs.prepare();
      std::optional<trainsim::app::StudyResult> result;
      try {
        result = trainsim::app::run_study(study);
      } catch (const std::invalid_argument& e) {
        return input_error(fmt::format("command line: got {}; expected a schedule the options describe", e.what()));
      }
      const std::string out_text = study_json_out ? trainsim::app::study_json(*result).dump(1) + "\n"
                                                  : trainsim::app::study_text(*result);
      if (outputs.wanted("--svg")) outputs.set("--svg", trainsim::app::study_svg(*result));
      outputs.commit();
      std::cout << out_text;
    } else if (*fp8err) {
      const auto r = trainsim::calibrate::fp8_error_report(trainsim::calibrate::deepseek_v3_fp8_cases(), 64, 64, 1);
      if (fp8_json) {
        std::cout << r.dump(2) << '\n';
      } else {
        std::cout << "FP8 (E4M3, 1x128 / 128x128 scales) GEMM error vs float64, M = N = 64, Gaussian inputs, seed 1\n"
                  << "accumulator: " << r["accumulator"].get<std::string>() << "\n"
                  << fmt::format("{:>6}  {:>22}  {:>22}  {:>8}  {}\n", "K", "no promotion (max rel)",
                                 "promote/128 (max rel)", "factor", "layers");
        for (const auto& c : r["cases"])
          std::cout << fmt::format("{:>6}  {:>21.3f}%  {:>21.4f}%  {:>7.1f}x  {}\n", c["k"].get<int>(),
                                   100 * c["no_promotion"]["max_elementwise_relative_error"].get<double>(),
                                   100 * c["promotion_every_128"]["max_elementwise_relative_error"].get<double>(),
                                   c["improvement"].get<double>(), c["name"].get<std::string>());
      }
    } else if (*collective) {
      const auto op = trainsim::app::parse_collective_op(coll_op);
      if (!op)
        throw trainsim::InputError("--op", "", "\"" + coll_op + "\"",
                                   "one of " + trainsim::app::collective_op_names());
      coll.op = *op;
      if (!coll_bytes.empty()) coll.sizes = trainsim::app::parse_size_range(coll_bytes);
      if (tokens_opt->count() > 0) coll.tokens = coll_tokens;
      const auto scenario = trainsim::app::load_scenario(coll_scenario);
      const auto study = trainsim::app::run_collective_study(scenario, coll);
      std::cout << (coll_json ? trainsim::app::collective_json(study).dump(1) + "\n"
                              : trainsim::app::collective_text(study));
    } else if (*fabric) {
      outputs.add("--dot", dot_file, fabric->count("--dot") > 0);
      outputs.prepare();
      const auto study = trainsim::app::load_fabric(fabric_scenario);
      const auto report = trainsim::app::fabric_json(study);
      if (outputs.wanted("--dot")) outputs.set("--dot", trainsim::app::fabric_dot(study));
      std::string out_text = fabric_json_out ? report.dump(2) + "\n" : trainsim::app::fabric_text(report);
      if (fabric_list) out_text += trainsim::app::fabric_names(study);
      outputs.commit();
      std::cout << out_text;
    } else if (*presets && !from_hf.empty()) {
      std::cout << trainsim::model::to_json(trainsim::app::load_hf_config(from_hf, from_hf).arch).dump(2) << '\n';
    } else if (*plan_merge) {
      outputs.add("--out", merge_out, true);
      outputs.prepare();
      std::vector<nlohmann::json> parts;
      for (const auto& f : merge_parts) parts.push_back(trainsim::parse_json_file(f));
      const auto merged = trainsim::app::merge_plan_parts(parts, merge_parts);
      outputs.set("--out", merged.dump(1) + "\n");
      outputs.commit();
      if (!plan_quiet) std::cout << trainsim::app::plan_text(merged);
    } else if (*plan) {
      if (plan_scenario.empty()) throw trainsim::InputError("plan", "", "no scenario", "trainsim plan SCENARIO");
      outputs.add("--out", plan_out, !plan_out.empty());
      outputs.prepare();
      const auto scenario = trainsim::app::load_scenario(plan_scenario);
      plan_opt.objective = trainsim::app::parse_objective(plan_objective);
      if (plan->count("--days") && !(plan_opt.deadline_days > 0 && plan_opt.deadline_days <= 36500))
        throw trainsim::InputError("--days", "", fmt::format("{}", plan_opt.deadline_days), "days in (0, 36500]");
      // A deadline without cluster sizes: a quarter to four times the scenario's, doubling.
      if (plan_gpus.empty() && plan_opt.deadline_days > 0) {
        const int g = scenario.cluster.total_gpus(), per_node = scenario.cluster.gpus_per_node;
        plan_gpus = fmt::format("{}:{}", std::max(per_node, g / 4 / per_node * per_node), 4 * g);
      }
      if (!plan_gpus.empty()) trainsim::app::parse_gpu_option(plan_gpus, scenario.cluster.gpus_per_node, plan_opt);
      if (!plan_gpu_types.empty()) trainsim::app::parse_gpu_types_option(plan_gpu_types, plan_opt);
      if (!plan_shard.empty()) trainsim::app::parse_shard_option(plan_shard, plan_opt);
      if (plan_opt.top < 1) throw trainsim::InputError("--top", "", std::to_string(plan_opt.top), "at least 1");
      if (!(plan_opt.screen_fraction > 0 && plan_opt.screen_fraction <= 1))
        throw trainsim::InputError("--screen", "", fmt::format("{}", plan_opt.screen_fraction), "a share in (0, 1]");
      trainsim::Progress progress("plan", 0, !plan_quiet);
      const bool part = !plan_shard.empty();
#ifdef TRAINSIM_HAVE_MPI
      if (!part && trainsim::app::mpi_launched()) {
        const auto result = trainsim::app::run_plan_mpi(scenario, plan_opt, &progress);
        progress.finish();
        if (!result) return 0;  // a worker rank
        outputs.set("--out", result->dump(1) + "\n");
        outputs.commit();
        if (!plan_quiet) std::cout << trainsim::app::plan_text(*result);
        return 0;
      }
#endif
      const auto result = part ? trainsim::app::run_plan_part(scenario, plan_opt, &progress)
                               : trainsim::app::run_plan(scenario, plan_opt, &progress);
      progress.finish();
      outputs.set("--out", result.dump(1) + "\n");
      outputs.commit();
      if (!plan_quiet && !part) std::cout << trainsim::app::plan_text(result);
    } else if (*presets) {
      std::cout << "GPUs:";
      for (const auto& n : trainsim::hw::gpu_preset_names()) std::cout << ' ' << n;
      std::cout << "\nmodels:";
      for (const auto& n : trainsim::model::architecture_preset_names()) std::cout << ' ' << n;
      std::cout << '\n';
    }
  } catch (const trainsim::InputError& e) {
    return input_error(e.what());
  } catch (const trainsim::TimeOverflow&) {
    // Commands other than simulate (which names the scenario's keys).
    return input_error("command line: got inputs that need simulated time beyond the +-106 days int64 picoseconds "
                       "hold; expected smaller ones");
  } catch (const std::exception& e) {
    return internal_error(e.what());
  }
  return 0;
}
