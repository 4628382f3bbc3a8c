#pragma once
// Internal interface between cublas_gemm.cpp (C++20: validation, device
// choice, messages) and cuda/cublas_gemm.cu (C++17: cuBLASLt and CUDA runtime
// calls, fill and triad kernels). Plain types only.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace trainsim::kernels::detail {

struct CublasGemmLaunch {
  int m = 0, n = 0, k = 0;  // row-major C[m, n] = A[m, k] * B_nk[n, k]^T per group
  int groups = 1;           // strided batch: A, B_nk and C each `groups` back to back
  int repeats = 1;
  int device = 0;
  bool fp8 = false;  // e4m3 inputs with per-tensor FP32 scales; else BF16 inputs
  // Host inputs (groups * m * k and groups * n * k floats); null = uniform
  // random values generated on the device. They are rounded to BF16 (or
  // scaled by 1/scale and converted to e4m3) on the device.
  const float* a = nullptr;
  const float* b_nk = nullptr;
  float a_scale = 1.0f, b_scale = 1.0f;  // FP8 only: value = code * scale
  bool want_output = false;              // copy C back (BF16 widened to float)
};

// Runs warm-up + `repeats` timed matmuls; seconds = median. Returns "" on
// success, else the failing call.
std::string cublaslt_gemm_run(const CublasGemmLaunch& p, std::vector<float>& c, double& seconds);

// a[i] = b[i] + s * c[i] over n floats on `device`; median of `repeats`.
std::string stream_triad_run(std::size_t n, int repeats, int device, double& seconds);

// Clock and memory attributes of `device` (cudaDeviceGetAttribute).
struct CudaDeviceAttributes {
  int sm_clock_khz = 0;
  int memory_clock_khz = 0;
  int memory_bus_width_bits = 0;
  int multiprocessors = 0;
  int l2_bytes = 0;
};
std::string cuda_device_attributes_run(int device, CudaDeviceAttributes& out);

}  // namespace trainsim::kernels::detail
