#pragma once
// Calibrating the CPU this runs on (`trainsim calibrate --device cpu`).
//
// Procedure: microbenchmark the CPU kernels (kernels/cpu_gemm.hpp,
// kernels/attention.hpp) on a grid of shapes, time each properly (one
// warm-up, then the median of several repeats, steady clock), and fit the
// same functional forms the simulator uses for GPUs:
//  * GEMM: the wave model t = t0 + tiles * (alpha + beta * K) with one
//    "SM" (the single thread) and the kernel's 64 x 64 output tiles;
//  * attention forward and backward: t = t0 + FLOPs / rate;
//  * memory-bound kernels: t = t0 + bytes / bandwidth (a stream triad).
// The profile records the device (as a GPU-like spec: 1 SM = 1 thread, all
// formats at the FP32 rate, "HBM" = the fitted memory bandwidth), the raw
// points and every fit with its residuals. The replay (`trainsim replay`)
// then checks the fit on shapes that are not on the grid.
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace trainsim::calibrate {

struct CpuCalibrationOptions {
  bool quick = false;  // fewer shapes and repeats
  // Progress messages (one line per phase); may be empty.
  std::function<void(const std::string&)> progress;
};

// Runs the microbenchmarks and returns the profile JSON (hw::parse_profile).
nlohmann::json calibrate_cpu(const CpuCalibrationOptions& options);

// Wall time of `fn`: one warm-up call, then the median of `repeats` calls.
double time_median_s(const std::function<void()>& fn, int repeats);

}  // namespace trainsim::calibrate
