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
#include <array>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "trainsim/model/accounting.hpp"
#include "trainsim/model/architecture.hpp"

#include <nlohmann/json.hpp>

namespace trainsim::calibrate {

struct CpuCalibrationOptions {
  bool quick = false;  // fewer shapes and repeats
  // Progress messages (one line per phase); may be empty.
  std::function<void(const std::string&)> progress;
  // Called after each measured point (GEMM shape, sequence length, memory
  // size) with how many are done of how many in all; may be empty.
  std::function<void(std::size_t done, std::size_t total)> measured;
  // When not empty, the GEMM grid {m, n, k} and the attention sequence
  // lengths to measure instead of the default grid (see grid_for_model).
  std::vector<std::array<int, 3>> gemm_shapes;
  std::vector<int> attention_seqs;
};

// A calibration grid around the GEMM shapes and sequence length of a model's
// layers (one micro-batch; `trainsim calibrate --device cpu --scenario S`):
// for every distinct GEMM shape of the dense and MoE layers, two neighbours
// with M, N and K moved by -25%/+25% (multiples of 16, never a shape of the
// model itself), and attention at 3/4 and 5/4 of the sequence length. The
// model's own shapes are then interpolated, never looked up, by the replay.
struct CalibrationGrid {
  std::vector<std::array<int, 3>> gemm_shapes;
  std::vector<int> attention_seqs;
};
CalibrationGrid grid_for_model(const model::Architecture& arch, const model::OpContext& ctx);

// Runs the microbenchmarks and returns the profile JSON (hw::parse_profile).
nlohmann::json calibrate_cpu(const CpuCalibrationOptions& options);

// The calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID): what a
// single-threaded CPU kernel costs, without the time the thread waited for a
// core. On an idle machine it equals wall time; on a loaded one (other jobs
// on the same cores) wall time of the same kernel varies from run to run by
// the load, which would make calibration and replay disagree by the change
// in load between them. Cache and memory-bandwidth contention still count.
struct ThreadCpuClock {
  using duration = std::chrono::nanoseconds;
  using rep = duration::rep;
  using period = duration::period;
  using time_point = std::chrono::time_point<ThreadCpuClock>;
  static constexpr bool is_steady = true;
  static time_point now() noexcept;
};

// Thread CPU time of `fn`: one warm-up call, then the median of `repeats` calls.
double time_median_s(const std::function<void()>& fn, int repeats);

}  // namespace trainsim::calibrate
