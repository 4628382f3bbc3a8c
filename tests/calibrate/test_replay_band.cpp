// The closed loop in CTest: calibrate this CPU (--quick), replay one
// micro-batch chunk of scenarios/cpu-mini-moe.json for real and check that the
// simulator's prediction of the same operations is within a factor of 2 of
// the measurement. The tight figure (0.93-0.99 on an idle machine) is a
// measurement in docs/VALIDATION.md, not a test.
//
// Why 0.5..2: the test must pass on a shared 2-core CI machine under load and
// in sanitizer and debug builds, yet fail when the model is broken. Both
// sides are timed in thread CPU time (calibrate/cpu.hpp ThreadCpuClock), so
// time slicing by other jobs cancels, but cache and memory-bandwidth
// contention from them does not: under load the GEMM-dominated total has
// been seen to drop to 0.8 with wall time (docs/VALIDATION.md), and the quick
// calibration (8 GEMM shapes, 3 repeats) extrapolates to the replay's larger
// shapes. A broken model misses by more: a GEMM FLOP count off by 2 (the
// unit the wave model is fitted in), a dropped backward pass (2/3 of the
// work), or a unit slip (1e3) all leave the band.
#include <doctest/doctest.h>

#include <string>

#include "trainsim/calibrate/cpu.hpp"
#include "trainsim/calibrate/replay.hpp"
#include "trainsim/common/json_reader.hpp"
#include "trainsim/hardware/calibration.hpp"
#include "trainsim/model/architecture.hpp"

using namespace trainsim;

TEST_SUITE("validation") {
TEST_CASE("closed loop: the replay of cpu-mini-moe is predicted within a factor of 2 of its measurement") {
  calibrate::CpuCalibrationOptions opt;
  opt.quick = true;
  const hw::CalibrationProfile profile = hw::parse_profile(calibrate::calibrate_cpu(opt), "quick-cpu.json");
  // What `trainsim replay scenarios/cpu-mini-moe.json` runs: its model, one
  // device (the measured CPU), micro-batch 1, selective recompute, BF16
  // GEMMs, 512 tokens (the scenario's parallelism, precision and training).
  const Json j = parse_json_file(std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/cpu-mini-moe.json");
  JsonObject mo(j["model"], "cpu-mini-moe.json", "/model");
  const model::Architecture arch = model::parse_architecture(mo);
  hw::ClusterSpec cluster;
  cluster.gpu = profile.device;
  cluster.gpus_per_node = 1;
  model::ParallelPlan plan;
  plan.micro_batch_size = 1;
  plan.recompute = model::Recompute::Selective;
  REQUIRE(j["training"]["seq_len"] == 512);
  REQUIRE(j["precision"]["gemm"] == "bf16");
  const calibrate::ReplayInputs in{&arch, &cluster, &plan, Precision::BF16, 512, &profile};
  const nlohmann::json r = calibrate::replay_cpu(in);
  const double ratio = r["ratio"].get<double>();
  MESSAGE("replay of cpu-mini-moe: measured " << r["measured_s"].get<double>() << " s, predicted "
                                               << r["predicted_s"].get<double>() << " s, predicted/measured " << ratio);
  CHECK(r["ops_skipped"].get<int>() == 0);
  CHECK(ratio > 0.5);
  CHECK(ratio < 2.0);
}
}
