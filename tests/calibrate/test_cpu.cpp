#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "trainsim/calibrate/cpu.hpp"
#include "trainsim/calibrate/replay.hpp"
#include "trainsim/common/json_reader.hpp"
#include "trainsim/hardware/calibration.hpp"
#include "trainsim/hardware/gpu.hpp"
#include "trainsim/model/accounting.hpp"
#include "trainsim/model/architecture.hpp"

using namespace trainsim;

namespace {

// One quick CPU profile shared by the tests of this file.
const nlohmann::json& quick_profile() {
  static const nlohmann::json p = [] {
    calibrate::CpuCalibrationOptions o;
    o.quick = true;
    return calibrate::calibrate_cpu(o);
  }();
  return p;
}

model::Architecture mini_moe() {
  Json j = parse_json_file(std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/cpu-mini-moe.json");
  JsonObject o(j["model"], "cpu-mini-moe.json", "/model");
  return model::parse_architecture(o);
}

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("CPU calibration writes a loadable profile with the device, the points and the fits") {
  const auto& j = quick_profile();
  const hw::CalibrationProfile p = hw::parse_profile(j, "cpu.json");
  CHECK(p.gpu == "cpu");
  CHECK(p.device.name == "cpu");
  CHECK(p.device.sms == 1);
  CHECK(p.ref_gemm_precision == Precision::FP32);
  // 2 x 2 x 2 GEMM shapes in quick mode, each with measured and predicted times.
  CHECK(j["gemm_fp8"]["fit"]["points"].get<int>() == 8);
  CHECK(j["gemm_fp8"]["fit"]["residuals"].size() == 8);
  CHECK(p.gemm_fp8.beta_s > 0);
  CHECK(p.attn_fwd_flops_per_sm > 0);
  CHECK(p.attn_bwd_flops_per_sm > 0);
  CHECK(p.device.hbm_bandwidth.value() > 0);
  // The device's peaks are the fitted GEMM rate in every format: the timer's
  // per-SM scaling is exactly 1 on the measured device.
  CHECK(p.device.peak(Precision::BF16).value() == doctest::Approx(p.ref_peak_gemm_flops));
}

TEST_CASE("CPU calibration reports every measured point, done of total, in order (progress bar)") {
  calibrate::CpuCalibrationOptions o;
  o.quick = true;
  o.gemm_shapes = {{32, 32, 32}, {32, 64, 32}};
  o.attention_seqs = {16, 32};
  std::vector<std::pair<std::size_t, std::size_t>> calls;
  o.measured = [&](std::size_t done, std::size_t total) { calls.emplace_back(done, total); };
  calibrate::calibrate_cpu(o);
  // 2 GEMM shapes + 2 sequence lengths + 2 memory sizes (quick) = 6 points.
  REQUIRE(calls.size() == 6);
  for (std::size_t i = 0; i < calls.size(); ++i) {
    CHECK(calls[i].first == i + 1);
    CHECK(calls[i].second == 6);
  }
}

TEST_CASE("a profile measured in an instrumented build (below 1 GFLOP/s) still loads") {
  // Under ASan the single-thread CPU GEMM measures about 0.3 GFLOP/s and the
  // stream triad about 1 GB/s: slow but true, so the profile must load (the
  // parser's 1 GFLOP/s bound is for datasheets, gpu.hpp DeviceBounds).
  nlohmann::json j = quick_profile();
  for (const char* k : {"bf16_dense_TFLOPS", "fp16_dense_TFLOPS", "fp8_dense_TFLOPS", "fp32_simt_TFLOPS"})
    j["device"][k] = 3e-4;
  j["device"]["hbm_TBps"] = 5e-4;
  j["reference"]["peak_gemm_TFLOPS"] = 3e-4;
  j["reference"]["peak_attention_TFLOPS"] = 3e-4;
  j["gemm_fp8"]["beta_ns_per_k"] = 2.0 * 64 * 64 / 3e8 * 1e9;  // 2*64*64 FLOPs per K at 0.3 GFLOP/s
  const hw::CalibrationProfile p = hw::parse_profile(j, "asan-cpu.json");
  CHECK(p.device.peak(Precision::FP32).value() == doctest::Approx(3e8));
}

TEST_CASE("replay runs every operation of a dense and a MoE layer and predicts each from the profile") {
  const hw::CalibrationProfile p = hw::parse_profile(quick_profile(), "cpu.json");
  const model::Architecture arch = mini_moe();
  hw::ClusterSpec cluster;
  cluster.gpu = p.device;
  cluster.gpus_per_node = 1;
  model::ParallelPlan plan;
  plan.recompute = model::Recompute::Selective;
  calibrate::ReplayInputs in{&arch, &cluster, &plan, Precision::BF16, 128, &p};
  const auto r = calibrate::replay_cpu(in);
  CHECK(r["layers"] == nlohmann::json::array({"dense", "moe"}));
  for (const char* k : {"gemm", "grouped_gemm", "attention.forward", "attention.backward", "memory"}) {
    CAPTURE(k);
    REQUIRE(r["by_kind"].contains(k));
    CHECK(r["by_kind"][k]["measured_s"].get<double>() > 0);
    CHECK(r["by_kind"][k]["predicted_s"].get<double>() > 0);
  }
  CHECK(r["ops_executed"].get<int>() > 50);
  CHECK(r["ops_skipped"].get<int>() == 0);
  CHECK(r["predicted_s"].get<double>() > 0);
}

TEST_CASE("replay refuses a profile without a measured device") {
  const hw::CalibrationProfile h800 = hw::load_profile("h800");
  const model::Architecture arch = mini_moe();
  hw::ClusterSpec cluster;
  cluster.gpu = hw::gpu_preset("H800");
  model::ParallelPlan plan;
  calibrate::ReplayInputs in{&arch, &cluster, &plan, Precision::BF16, 128, &h800};
  CHECK_THROWS_AS(calibrate::replay_cpu(in), std::invalid_argument);
}
}

TEST_SUITE("golden") {
TEST_CASE("CLI: calibrate --device cuda without a GPU fails with exit code 2 and writes nothing") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(TRAINSIM_BINARY_DIR) / "cli-calibrate";
  fs::create_directories(dir);
  const fs::path out = dir / "p.json";
  fs::remove(out);
  const std::string cmd = std::string(TRAINSIM_BINARY_DIR) + "/trainsim calibrate --device cuda --out " +
                          out.string() + " 2>" + (dir / "err.txt").string();
  const int status = std::system(cmd.c_str());
  REQUIRE(status != -1);
  CHECK(WEXITSTATUS(status) == 2);
  CHECK_FALSE(fs::exists(out));
  std::ifstream err(dir / "err.txt");
  const std::string msg((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
  CHECK(msg.find("--device") != std::string::npos);
}
}

TEST_SUITE("unit") {
TEST_CASE("a model's calibration grid surrounds its GEMM shapes without containing them") {
  const model::Architecture arch = mini_moe();
  model::OpContext ctx;
  ctx.seq_len = 512;
  ctx.recompute = model::Recompute::Selective;
  const auto grid = calibrate::grid_for_model(arch, ctx);
  std::set<std::array<int, 3>> own;
  for (auto k : {model::LayerKind::Dense, model::LayerKind::Moe})
    for (const auto& op : model::layer_ops(arch, k, ctx))
      if (op.kind == model::OpKind::Gemm || op.kind == model::OpKind::GroupedGemm)
        own.insert({static_cast<int>(op.gemm.m), static_cast<int>(op.gemm.n), static_cast<int>(op.gemm.k)});
  REQUIRE(!grid.gemm_shapes.empty());
  CHECK(grid.gemm_shapes.size() <= 2 * own.size());
  for (const auto& s : grid.gemm_shapes) {
    CHECK_FALSE(own.count(s));
    CHECK(s[0] % 16 == 0);
  }
  // Attention at 3/4 and 5/4 of the sequence: 384 and 640 around 512.
  CHECK(grid.attention_seqs == std::vector<int>{384, 640});
}
}
