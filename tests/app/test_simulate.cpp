#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "trainsim/app/report.hpp"
#include "trainsim/app/scenario.hpp"
#include "trainsim/common/json_reader.hpp"

using namespace trainsim;

namespace {

Json default_json() {
  return parse_json_file(std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/deepseek-v3-pretrain.json");
}

// Llama-3-70B on 64 nodes of 8 H100 on a single-plane fat-tree, BF16.
Json llama_h100_json(const Json& parallelism, const Json& training) {
  Json j = default_json();
  j["model"] = "llama3-70b";
  j["cluster"]["gpu"] = "H100";
  j["cluster"]["nodes"] = 64;
  j["cluster"]["network"]["topology"] = "fat-tree";
  j["cluster"]["network"].erase("planes");
  j["parallelism"] = parallelism;
  j["precision"]["gemm"] = "bf16";
  j["training"] = training;
  return j;
}

Json report_of(const Json& scenario) {
  return app::make_report(app::simulate(app::parse_scenario(scenario, "test.json")));
}

}  // namespace

TEST_SUITE("validation") {
// DeepSeek-V3 Technical Report (arXiv 2412.19437) §1 / Table 1: pre-training
// cost 180K H800 GPU-hours per trillion tokens (2.664M GPU-hours for 14.8T
// tokens on 2048 H800). Tolerance 10% (issue acceptance). The prediction is
// built from kernel measurements only; nothing is fitted to this figure.
TEST_CASE("DeepSeek-V3 pre-training: GPU-hours per trillion tokens within 10% of 180K") {
  const Json r = report_of(default_json());
  const double gh = r["gpu_hours_per_trillion_tokens"].get<double>();
  MESSAGE("predicted GPU-hours per trillion tokens: " << gh);
  CHECK(gh > 180000.0 * 0.90);
  CHECK(gh < 180000.0 * 1.10);
  // 14.8T tokens x 180K GPU-h/T = 2.664M GPU-hours; same tolerance.
  CHECK(r["total_gpu_hours"].get<double>() == doctest::Approx(2.664e6).epsilon(0.10));
  CHECK(r["memory"]["fits"].get<bool>());
}

// deepseek-ai/profile-data train.json: one DualPipe forward+backward chunk
// pair of 4 MoE layers (EP64, 4K tokens, 20 communication SMs) spans 129.0 ms.
// The attention backward and weight-gradient kernels of the calibration come
// from this same trace, so this check is not independent of it for those
// kernels; the forward and input-gradient GEMMs, the attention forward, the
// memory-bound kernels, the all-to-all and the overlap are. Tolerance 10%.
TEST_CASE("overlapped F&B pair of a 4-MoE-layer stage within 10% of DeepSeek's published profile") {
  const auto sim = app::simulate(app::parse_scenario(default_json(), "test.json"));
  bool found = false;
  for (const auto& p : sim.step.pairs) {
    const auto& fs = sim.step.stages[static_cast<std::size_t>(p.forward_stage)];
    const auto& bs = sim.step.stages[static_cast<std::size_t>(p.backward_stage)];
    auto all_moe = [](const model::StageCost& s) {
      if (s.layers.size() != 4) return false;
      for (auto k : s.layers)
        if (k != model::LayerKind::Moe) return false;
      return true;
    };
    if (!all_moe(fs) || !all_moe(bs)) continue;
    found = true;
    MESSAGE("simulated pair: " << p.duration.to_ms() << " ms (published 129.0 ms)");
    CHECK(p.duration.to_ms() == doctest::Approx(129.0).epsilon(0.10));
    break;
  }
  CHECK(found);
}
}

TEST_SUITE("unit") {
TEST_CASE("the report has the documented keys and a consistent breakdown") {
  const Json r = report_of(default_json());
  for (const char* k : {"step_time_s", "tokens_per_second", "tokens_per_second_per_gpu", "model_tflops_per_gpu", "mfu",
                        "gpu_hours_per_trillion_tokens", "total_gpu_hours", "total_cost_usd", "wall_clock_days",
                        "breakdown", "memory", "scenario", "calibration", "assumptions"})
    CHECK_MESSAGE(r.contains(k), k);
  const double step = r["step_time_s"].get<double>();
  const auto& b = r["breakdown"];
  double sum = b["compute_s"].get<double>() + b["pipeline_bubble_s"].get<double>() + b["optimizer_s"].get<double>() +
               b["other_s"].get<double>();
  for (const auto& [k, v] : b["exposed_communication_s"].items()) sum += v.get<double>();
  CHECK(sum == doctest::Approx(step).epsilon(1e-9));
  CHECK(b["other_s"].get<double>() >= -1e-9);
  const double mfu = r["mfu"].get<double>();
  CHECK(mfu > 0.0);
  CHECK(mfu < 1.0);
  // Cost = GPU-hours x price; GPU-hours = tokens / throughput x GPUs.
  CHECK(r["total_cost_usd"].get<double>() == doctest::Approx(r["total_gpu_hours"].get<double>() * 2.0));
  CHECK(r["total_gpu_hours"].get<double>() ==
        doctest::Approx(14.8e12 / r["tokens_per_second"].get<double>() * 2048 / 3600.0));
}

TEST_CASE("the same scenario gives byte-identical reports") {
  CHECK(report_of(default_json()).dump() == report_of(default_json()).dump());
}

TEST_CASE("what-if: 1F1B instead of DualPipe is slower and exposes the all-to-all") {
  Json j = default_json();
  const Json base = report_of(j);
  j["parallelism"]["schedule"] = "1f1b";
  const Json r = report_of(j);
  CHECK(r["step_time_s"].get<double>() > base["step_time_s"].get<double>() * 1.05);
  const auto exposed = [](const Json& x) {
    return x["breakdown"]["exposed_communication_s"]["ep_dispatch"].get<double>() +
           x["breakdown"]["exposed_communication_s"]["ep_combine"].get<double>();
  };
  CHECK(exposed(r) > 2.0 * exposed(base));
  // 1F1B holds PP micro-batches of activations on its first rank, DualPipe PP+1.
  CHECK(r["memory"]["per_rank"][0]["activation_microbatches_in_flight"].get<int>() == 16);
  CHECK(base["memory"]["per_rank"][0]["activation_microbatches_in_flight"].get<int>() == 17);
}

TEST_CASE("what-if: BF16 GEMMs instead of FP8 are slower and need more activation memory") {
  Json j = default_json();
  const Json base = report_of(j);
  j["precision"]["gemm"] = "bf16";
  const Json r = report_of(j);
  CHECK(r["step_time_s"].get<double>() > base["step_time_s"].get<double>() * 1.15);
  CHECK(r["memory"]["activations_gib"].get<double>() > base["memory"]["activations_gib"].get<double>());
  // Same model, same tokens: model FLOPs per token do not depend on precision.
  CHECK(r["model_flops_per_token"].get<double>() == doctest::Approx(base["model_flops_per_token"].get<double>()));
}

TEST_CASE("what-if: half the InfiniBand bandwidth slows the all-to-all and the step") {
  Json j = default_json();
  const Json base = report_of(j);
  j["cluster"]["network"]["nic_Gbps"] = 200;
  const Json r = report_of(j);
  CHECK(r["step_time_s"].get<double>() > base["step_time_s"].get<double>() * 1.05);
  CHECK(r["pipeline"]["p2p_transfer_s"].get<double>() > base["pipeline"]["p2p_transfer_s"].get<double>() * 1.9);
}

TEST_CASE("what-if: a layout that does not fit is reported as not fitting, with the numbers") {
  Json j = default_json();
  j["parallelism"]["recompute"] = "none";
  j["parallelism"]["micro_batch_size"] = 2;
  const Json r = report_of(j);
  CHECK_FALSE(r["memory"]["fits"].get<bool>());
  CHECK(r["memory"]["peak_gib_per_gpu"].get<double>() > r["memory"]["capacity_gib"].get<double>());
  const double parts = r["memory"]["weights_gib"].get<double>() + r["memory"]["gradients_gib"].get<double>() +
                       r["memory"]["optimizer_gib"].get<double>() + r["memory"]["activations_gib"].get<double>() +
                       r["memory"]["transient_gib"].get<double>();
  CHECK(parts == doctest::Approx(r["memory"]["peak_gib_per_gpu"].get<double>()));
}

TEST_CASE("what-if: more nodes at the same layout per stage scale throughput, not per-GPU speed") {
  Json j = default_json();
  const Json base = report_of(j);
  j["cluster"]["nodes"] = 128;
  j["parallelism"]["dp"] = 64;
  j["training"]["global_batch_size"] = 7680;
  const Json r = report_of(j);
  // Same micro-batches per pipeline, half the replicas: about half the tokens/s.
  CHECK(r["tokens_per_second"].get<double>() ==
        doctest::Approx(base["tokens_per_second"].get<double>() / 2).epsilon(0.05));
}

TEST_CASE("a dense Llama-style model on H100 runs end to end with 1F1B and tensor parallelism") {
  const Json j = llama_h100_json({{"tp", 8}, {"pp", 4}, {"dp", 16}, {"schedule", "1f1b"}, {"micro_batch_size", 1},
                                   {"recompute", "selective"}, {"sequence_parallel", true}},
                                  {{"seq_len", 8192}, {"global_batch_size", 1024}, {"tokens", 15e12}});
  const Json r = report_of(j);
  const double mfu = r["mfu"].get<double>();
  MESSAGE("llama3-70b on 512 H100 (tp8 pp4 dp16): MFU " << mfu);
  CHECK(mfu > 0.15);
  CHECK(mfu < 0.75);
  CHECK(r["breakdown"]["exposed_communication_s"]["tensor_parallel"].get<double>() > 0.0);
  // The H800 profile is transferred to the H100 and the report says so.
  CHECK(r["calibration"]["transferred"].get<bool>());
}

TEST_CASE("ZeRO-3 charges per-layer parameter gathers and gradient scatters (FSDP-style, pp = 1)") {
  // Llama 3 8B on 2 nodes of 8 H100, pure data parallelism (dp 16), four
  // micro-batches of 8,192 tokens per GPU. ZeRO-2 syncs gradients once after
  // the last backward; ZeRO-3 gathers every layer's BF16 parameters before
  // each forward and backward and scatters its FP32 gradients after each
  // backward (6 bytes per parameter each way per micro-batch, 4 micro-
  // batches, against ZeRO-2's 6 once), so it is slower and exposes more
  // data-parallel time, with 1/16 of the weights resident.
  Json j = llama_h100_json({{"tp", 1}, {"pp", 1}, {"dp", 16}, {"zero_stage", 2}, {"schedule", "1f1b"}},
                           {{"seq_len", 8192}, {"global_batch_size", 64}, {"tokens", 1e12}});
  j["model"] = "llama3-8b";
  j["cluster"]["nodes"] = 2;
  const Json z2 = report_of(j);
  j["parallelism"]["zero_stage"] = 3;
  const Json z3 = report_of(j);
  const double t2 = z2["step_time_s"].get<double>(), t3 = z3["step_time_s"].get<double>();
  MESSAGE("llama3-8b dp16: ZeRO-2 " << t2 << " s, ZeRO-3 " << t3 << " s");
  CHECK(t3 > t2);
  const auto& e2 = z2["breakdown"]["exposed_communication_s"];
  const auto& e3 = z3["breakdown"]["exposed_communication_s"];
  CHECK(e3["data_parallel"].get<double>() > e2["data_parallel"].get<double>());
  // Weights: BF16 over 16 ranks.
  CHECK(z3["memory"]["weights_gib"].get<double>() ==
        doctest::Approx(z2["memory"]["weights_gib"].get<double>() / 16).epsilon(1e-12));
  // Transient: the gathered layers on top, two of the largest layer (the
  // head: final norm 4,096 + LM head 128,256 x 4,096 = 525,340,672
  // parameters) at 2 (BF16 parameters) + 4 (FP32 gradients) bytes:
  // 2 x 6 x 525,340,672 = 6,304,088,064 B.
  const double delta_b = (z3["memory"]["transient_gib"].get<double>() - z2["memory"]["transient_gib"].get<double>()) *
                         1024.0 * 1024.0 * 1024.0;
  CHECK(delta_b == doctest::Approx(6304088064.0).epsilon(1e-9));
  // The partition estimate times each layer's collectives alone and overlaps
  // them with the kernels by max(); the execution adds the stream's order and
  // link sharing. 10%: it was 2.5% under here when written.
  const double est = z3["pipeline"]["partition"]["candidates"][0]["estimated_step_s"].get<double>();
  CHECK(est == doctest::Approx(t3).epsilon(0.10));
  bool said = false;
  for (const auto& a : z3["assumptions"]) said = said || a.get<std::string>().find("ZeRO-3, as FSDP") == 0;
  CHECK(said);
}

TEST_CASE("overlap_grad_reduce hides gradient reduction behind the last backward (DDP and ZeRO-1)") {
  // Llama 3 8B on 16 H100 (dp 16, pp 1, 4 micro-batches): the FP32
  // gradients (32 GB per GPU) are reduced layer by layer during the last
  // micro-batch's backward instead of after it, so the step is shorter and
  // less data-parallel time is exposed; the pipeline's compute is the same.
  for (int zero : {0, 1}) {
    CAPTURE(zero);
    Json j = llama_h100_json({{"tp", 1}, {"pp", 1}, {"dp", 16}, {"zero_stage", zero}, {"schedule", "1f1b"}},
                             {{"seq_len", 8192}, {"global_batch_size", 64}, {"tokens", 1e12}});
    j["model"] = "llama3-8b";
    j["cluster"]["nodes"] = 2;
    const Json off = report_of(j);
    j["parallelism"]["overlap_grad_reduce"] = true;
    const Json on = report_of(j);
    MESSAGE("zero " << zero << ": " << off["step_time_s"].get<double>() << " s -> " << on["step_time_s"].get<double>()
                    << " s with overlap_grad_reduce");
    CHECK(on["step_time_s"].get<double>() < off["step_time_s"].get<double>());
    CHECK(on["breakdown"]["exposed_communication_s"]["data_parallel"].get<double>() <
          off["breakdown"]["exposed_communication_s"]["data_parallel"].get<double>());
    CHECK(on["breakdown"]["compute_s"].get<double>() == off["breakdown"]["compute_s"].get<double>());
    CHECK(on["scenario"]["parallelism"]["overlap_grad_reduce"].get<bool>());
  }
}
}

TEST_SUITE("golden") {
TEST_CASE("CLI: bad input exits with code 2 and writes nothing") {
  namespace fs = std::filesystem;
  const std::string bin = std::string(TRAINSIM_BINARY_DIR) + "/trainsim";
  const fs::path dir = fs::path(TRAINSIM_BINARY_DIR) / "cli-test";
  fs::create_directories(dir);
  const fs::path bad = dir / "bad.json";
  Json j = default_json();
  j["parallelism"]["ep"] = 48;
  std::ofstream(bad) << j.dump();
  const fs::path out = dir / "out.json";
  fs::remove(out);
  const std::string cmd = bin + " simulate " + bad.string() + " --report " + out.string() + " 2>" + (dir / "err.txt").string();
  const int status = std::system(cmd.c_str());
  REQUIRE(status != -1);
  CHECK(WEXITSTATUS(status) == 2);
  CHECK_FALSE(fs::exists(out));
  std::ifstream err(dir / "err.txt");
  const std::string msg((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
  CHECK(msg.find("bad.json") != std::string::npos);
  CHECK(msg.find("/parallelism/ep") != std::string::npos);
  CHECK(msg.find("48") != std::string::npos);
}

TEST_CASE("CLI: a good scenario writes the report and the trace") {
  namespace fs = std::filesystem;
  const std::string bin = std::string(TRAINSIM_BINARY_DIR) + "/trainsim";
  const fs::path dir = fs::path(TRAINSIM_BINARY_DIR) / "cli-test";
  fs::create_directories(dir);
  const fs::path rep = dir / "r.json", tr = dir / "t.json";
  const std::string cmd = bin + " simulate " + std::string(TRAINSIM_SOURCE_DIR) +
                          "/scenarios/deepseek-v3-pretrain.json --quiet --report " + rep.string() + " --trace " +
                          tr.string();
  const int status = std::system(cmd.c_str());
  REQUIRE(status != -1);
  CHECK(WEXITSTATUS(status) == 0);
  const Json r = parse_json_file(rep.string());
  CHECK(r.contains("gpu_hours_per_trillion_tokens"));
  const Json t = parse_json_file(tr.string());
  // --calibration overrides the scenario's profile; the report names it.
  const std::string cmd2 = bin + " simulate " + std::string(TRAINSIM_SOURCE_DIR) +
                           "/scenarios/deepseek-v3-pretrain.json --quiet --calibration " + std::string(TRAINSIM_SOURCE_DIR) +
                           "/data/calibration/h800.json --report " + rep.string();
  const int status2 = std::system(cmd2.c_str());
  REQUIRE(status2 != -1);
  CHECK(WEXITSTATUS(status2) == 0);
  const Json r2 = parse_json_file(rep.string());
  CHECK(r2["scenario"]["calibration"].get<std::string>().find("data/calibration/h800.json") != std::string::npos);
  CHECK(r2["calibration"]["name"] == "h800-published");
  // Every rank's chunks, plus the kernels of the busiest rank's chunks.
  CHECK(t["traceEvents"].size() > 16 * 100 + 240 * 50);
}
}

TEST_SUITE("unit") {
TEST_CASE("schedule family on DeepSeek-V3: cost ordering and memory follow the schedules") {
  auto run = [](const char* kind) {
    Json j = default_json();
    j["parallelism"]["schedule"] = kind;
    return report_of(j);
  };
  const Json gpipe = run("gpipe"), f1b1 = run("1f1b"), zb = run("zb1p"), dual = run("dualpipe"), dualv = run("dualpipev");
  const auto gh = [](const Json& r) { return r["gpu_hours_per_trillion_tokens"].get<double>(); };
  // ZB-H1 fills 1F1B's cool-down with deferred weight passes; DualPipe also
  // hides the all-to-all behind overlapped F&B pairs.
  CHECK(gh(zb) < gh(f1b1));
  CHECK(gh(dual) < gh(zb));
  CHECK(gh(dualv) < gh(f1b1));
  // GPipe keeps every micro-batch's activations until the backwards start.
  CHECK(gpipe["memory"]["activation_microbatches_in_flight"].get<int>() == 120);
  CHECK_FALSE(gpipe["memory"]["fits"].get<bool>());
  CHECK(f1b1["memory"]["fits"].get<bool>());
  // DualPipe holds two stages' parameters per rank; DualPipeV holds two
  // stages of a model cut into twice as many stages: no duplication.
  CHECK(dual["pipeline"]["stages"].size() == 16);
  CHECK(dualv["pipeline"]["stages"].size() == 32);
  double dual_params = 0, dualv_params = 0;
  for (const auto& s : dual["pipeline"]["stages"]) dual_params += s["params_per_gpu"].get<double>();
  for (const auto& s : dualv["pipeline"]["stages"]) dualv_params += s["params_per_gpu"].get<double>();
  // Same model, same per-GPU sharding: the stage parameters sum to the same total.
  CHECK(dual_params == doctest::Approx(dualv_params).epsilon(1e-9));
}

TEST_CASE("interleaved 1F1B shrinks the bubble of a dense model") {
  Json j = llama_h100_json({{"tp", 8}, {"pp", 8}, {"dp", 8}, {"schedule", "1f1b"}, {"micro_batch_size", 1},
                            {"recompute", "selective"}, {"sequence_parallel", true}},
                           {{"seq_len", 8192}, {"global_batch_size", 128}, {"tokens", 15e12}});
  const Json base = report_of(j);
  j["parallelism"]["schedule"] = "interleaved";
  j["parallelism"]["virtual_stages"] = 2;
  const Json il = report_of(j);
  // With equal stages the bubble would halve ((PP-1)(f+b) per chunk of half
  // the size); 80 layers plus embedding and head do not split into 16 equal
  // stages, and the slowest stage sets the pace, so expect less than that.
  const double b1 = base["breakdown"]["pipeline_bubble_s"].get<double>();
  const double b2 = il["breakdown"]["pipeline_bubble_s"].get<double>();
  MESSAGE("bubble 1F1B " << b1 << " s, interleaved v=2 " << b2 << " s");
  CHECK(b2 < 0.75 * b1);
  CHECK(il["step_time_s"].get<double>() < base["step_time_s"].get<double>());
}
}
