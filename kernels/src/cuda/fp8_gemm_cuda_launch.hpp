#pragma once
// Internal interface between fp8_gemm_cuda_host.cpp (C++20: QuantizedMatrix,
// validation, device choice) and cuda/fp8_gemm_cuda.cu (C++17 device code and
// CUDA runtime calls). Plain types only, so the .cu needs no project headers.
#include <cstdint>
#include <string>
#include <vector>

namespace trainsim::kernels::detail {

struct Fp8GemmCudaLaunch {
  const std::uint8_t* a_codes = nullptr;  // M x K, row-major
  const float* a_scales = nullptr;        // M x (K / 128), row-major (1 x 128 tiles)
  const std::uint8_t* b_codes = nullptr;  // N x K, row-major
  const float* b_scales = nullptr;        // (N / 128) x (K / 128), row-major (128 x 128 blocks)
  int m = 0, n = 0, k = 0;                // validated: positive multiples of 128
  int repeats = 1;                        // >= 1
  int device = 0;                         // CUDA device index (made current for the run)
  bool bf16_output = false;
};

// Runs the GEMM on device p.device; on success fills c (M x N) and the
// median kernel time and returns "", else returns the failing CUDA call.
std::string fp8_gemm_cuda_run(const Fp8GemmCudaLaunch& p, std::vector<float>& c, double& seconds);

}  // namespace trainsim::kernels::detail
