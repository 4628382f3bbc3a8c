// calibrate_cuda (calibrate/cuda.hpp). The unit suite runs here: without a
// usable device calibrate_cuda throws std::runtime_error naming the reason
// (query_cuda_devices()'s message). The gpu suite (skipped with TRAINSIM_SKIP
// without a device) runs a --quick calibration and checks the profile loads.
// UNVERIFIED: the gpu suite has never run (no GPU on the development machine).
#include <doctest/doctest.h>

#include "../support/skip.hpp"

#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "trainsim/calibrate/cuda.hpp"
#include "trainsim/hardware/calibration.hpp"

using namespace trainsim;

TEST_SUITE("unit") {
TEST_CASE("calibrate_cuda without a device throws and names the reason") {
  std::string message;
  if (calibrate::cuda_device_count(&message) > 0) {
    MESSAGE("a CUDA device is present (" << message << "); the gpu suite calibrates it");
    return;
  }
  calibrate::CudaCalibrationOptions opt;
  opt.quick = true;
  std::string what;
  try {
    (void)calibrate::calibrate_cuda(opt);
  } catch (const std::runtime_error& e) {
    what = e.what();
  }
  REQUIRE_FALSE(what.empty());
  CHECK(what.find("no usable CUDA device") != std::string::npos);
  CHECK(what.find(message) != std::string::npos);
  MESSAGE(what);
}

TEST_CASE("calibrate_cuda rejects a device index that does not exist") {
  calibrate::CudaCalibrationOptions opt;
  opt.device = 1000;
  CHECK_THROWS_AS((void)calibrate::calibrate_cuda(opt), std::runtime_error);
}
}

TEST_SUITE("gpu") {
TEST_CASE("calibrate_cuda --quick produces a profile that loads") {
  std::string message;
  if (calibrate::cuda_device_count(&message) == 0) {
    TRAINSIM_SKIP("calibrate_cuda: " << message);
  }
  calibrate::CudaCalibrationOptions opt;
  opt.quick = true;
  opt.progress = [](const std::string& m) { MESSAGE("calibrate: " << m); };
  const nlohmann::json profile = calibrate::calibrate_cuda(opt);
  const hw::CalibrationProfile p = hw::parse_profile(profile, "calibrate_cuda");
  CHECK(p.gemm_fp8.points_fitted >= 8);
  CHECK(p.gemm_fp8.beta_s > 0);
  CHECK(p.hbm_efficiency > 0.3);
  MESSAGE("origin: " << p.origin);
  MESSAGE("gemm_fp8 fit: mean |error| " << p.gemm_fp8.mean_abs_rel_error << ", max " << p.gemm_fp8.max_abs_rel_error);
  MESSAGE("fitted_points: " << profile["fitted_points"]["asymptotic_TFLOPS"].dump() << " grouped "
                            << profile["fitted_points"]["grouped"].dump());
}
}
