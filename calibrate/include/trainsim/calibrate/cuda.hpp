#pragma once
// Calibrating a CUDA GPU this process can see (`trainsim calibrate --device
// cuda[:N]`).
//
// What it captures. Microbenchmarks timed with CUDA events (one warm-up, then
// the median of several runs), fitted with the functional forms of
// hw::KernelTimer into the same profile format as calibrate_cpu:
//  * GEMM grid (M x N x K, all multiples of 128) in FP8 with the project's own
//    wgmma kernel (kernels/fp8_gemm_cuda.hpp: 1x128 / 128x128 block scales,
//    FP32 promotion) and, on the same shapes, cuBLASLt FP8 (per-tensor scales)
//    and cuBLASLt BF16 (kernels/cublas_gemm.hpp). Each series is fitted to the
//    wave model t = t0 + waves * (alpha + beta * K) with 128 x 128 output
//    tiles over all of the device's multiprocessors (none reserved). The
//    profile's gemm_fp8 is the wgmma kernel's fit (the cuBLASLt FP8 fit when
//    the wgmma kernel cannot run, e.g. not compute capability 9.0; the origin
//    says which); gemm_fp8_wgrad reuses it (one kernel serves all three GEMMs
//    of a linear layer here). The other fits and every raw point with its
//    residual are kept under fitted_points.
//  * Grouped GEMMs as the contiguous expert layout gives them: equal groups
//    of M tokens per expert for the V3 expert shapes (up: N = 2 x 2048,
//    K = 7168; down: N = 7168, K = 2048) as cuBLASLt strided batches (FP8 and
//    BF16), and the MoE expert path itself (kernels/moe_cuda.hpp, balanced
//    routing, BF16 cuBLAS GEMM loop); both are compared with what the fitted
//    models predict for `groups` GEMMs (out-of-sample checks, not fitted).
//  * Memory-bound kernel: a stream triad at several sizes, fitted to
//    t = t0 + bytes / bandwidth; hbm_efficiency = fitted bandwidth / the
//    datasheet (or attribute-derived) peak.
//  * The device: when its name and SM count match a GPU preset (data/gpus),
//    the profile names that preset and uses its datasheet peaks; otherwise it
//    carries a "device" spec estimated from the runtime's attributes (SM
//    count and clock with Hopper's per-SM tensor rates, memory clock x bus
//    width), with sources saying so.
//
//  * Attention: trainsim's CUDA baseline attention kernel (kernels/
//    attention_cuda.hpp; causal, 16 heads, 192/128) at 2-3 sequence lengths,
//    fitted to t = t0 + FLOPs / rate per pass. It is a plain FMA kernel, far
//    slower than FlashAttention-3, so a profile from it predicts a
//    framework that uses that kernel; if it cannot run, the BF16 GEMM's rate
//    per SM stands in (labelled in sources).
//
// What it ignores. The all-to-all section is
// copied from the shipped H800 profile (one GPU measures no communication).
// Clock/power state, other processes on the GPU, and L2 residency between
// repeats (inputs of small shapes stay in L2) are whatever the run meets.
//
// UNVERIFIED: written on a machine without a GPU: it compiles, and without a
// device it throws (tested), but no profile has ever been produced by it.
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

namespace trainsim::calibrate {

struct CudaCalibrationOptions {
  int device = 0;      // CUDA device index (cuda:N)
  bool quick = false;  // fewer shapes and repeats
  // Progress messages (one line per phase); may be empty.
  std::function<void(const std::string&)> progress;
};

// Runs the microbenchmarks and returns the profile JSON (hw::parse_profile).
// Throws std::runtime_error when no CUDA device is usable (the message is
// query_cuda_devices()'s reason), when options.device does not exist, or when
// no FP8 GEMM could be timed.
nlohmann::json calibrate_cuda(const CudaCalibrationOptions& options);

// Usable CUDA devices (kernels::query_cuda_devices()); `message` (optional)
// receives what was found or why nothing was. For callers that do not link
// trainsim::kernels themselves.
int cuda_device_count(std::string* message = nullptr);

}  // namespace trainsim::calibrate
