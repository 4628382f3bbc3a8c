#pragma once
// Vendor baselines on a CUDA GPU, for calibration: cuBLASLt GEMMs in BF16 and
// FP8 (e4m3), a memory-bound stream triad, and the clock / memory attributes
// of a device. No CUDA headers needed here.
//
// What it captures
//  * cublaslt_gemm_bf16 / cublaslt_gemm_fp8: row-major C[M, N] =
//    A[M, K] * B_nk[N, K]^T (nn.Linear's weight layout) through cublasLtMatmul
//    with FP32 accumulation and a BF16 output, the algorithm cuBLASLt's
//    heuristic ranks first (32 MiB workspace). FP8 uses e4m3 for both operands
//    and per-tensor FP32 scales passed as device scale pointers
//    (CUBLASLT_MATMUL_DESC_A/B_SCALE_POINTER), the scaling every Hopper
//    cuBLASLt supports. groups > 1 runs a strided batch of equal GEMMs with
//    distinct A, B and C per group: the contiguous MoE expert layout when every
//    expert receives M tokens.
//  * Inputs are uniform random values generated on the device (FP8: spread
//    over the e4m3 range with scale 1), so large shapes cost no host work;
//    cublaslt_gemm_bf16_values takes host values instead (for validation).
//  * Timing: one warm-up matmul, then `repeats` matmuls each bracketed by CUDA
//    events; `seconds` is the median, `tflops` = 2 M N K groups / seconds.
//    Allocation, input generation and copies are not timed.
//  * cuda_stream_triad: a[i] = b[i] + s c[i] over n floats (12 n bytes moved),
//    median of `repeats` event-timed launches: the memory-bound kernel the
//    calibration fits the HBM model to.
//
// What it ignores
//  * cuBLASLt's DeepSeek-style block scaling modes (1x128 activations,
//    128x128 weights; CUBLASLT_MATMUL_MATRIX_SCALE_VEC128_32F /
//    BLK128x128_32F in recent toolkits), fast-accumulation mode, autotuning
//    over more than the first heuristic result, epilogues (bias, GELU), ragged
//    groups (cuBLAS grouped GEMM): the MoE path (moe_cuda.hpp) loops GEMMs
//    over ragged expert blocks instead.
//
// UNVERIFIED: the development machine has the CUDA toolkit but no GPU and no
// driver: this code compiles and links against cuBLASLt but has NEVER RUN.
// tests/kernels/test_cublas_gemm.cpp (suite "gpu") checks the BF16 result
// against a CPU reference when a device is present and skips otherwise.
// Without CUDA (TRAINSIM_CUDA=OFF or no nvcc) every function returns
// ran = false, "built without CUDA".
#include <cstddef>
#include <string>
#include <vector>

namespace trainsim::kernels {

struct GemmCudaResult {
  bool ran = false;      // true when the matmuls ran
  std::string message;   // what ran (device, shape, time), or why nothing did
  int m = 0, n = 0, k = 0, groups = 1;
  double seconds = 0.0;  // median time of one (batched) matmul
  double tflops = 0.0;   // 2 M N K groups / seconds / 1e12
  std::vector<float> c;  // cublaslt_gemm_bf16_values only: M x N row-major (BF16 widened)
};

// Random inputs on the device; repeats >= 1, groups >= 1. Shapes: positive;
// FP8 additionally needs M, N, K multiples of 16 (cuBLASLt's FP8 alignment).
GemmCudaResult cublaslt_gemm_bf16(int m, int n, int k, int repeats, int groups = 1, int device = 0);
GemmCudaResult cublaslt_gemm_fp8(int m, int n, int k, int repeats, int groups = 1, int device = 0);

// One BF16 GEMM on host values (a: M x K, b_nk: N x K, row-major, rounded to
// BF16 on the device); result in `c`. repeats >= 1.
GemmCudaResult cublaslt_gemm_bf16_values(int m, int n, int k, const std::vector<float>& a,
                                         const std::vector<float>& b_nk, int repeats = 1, int device = 0);

struct MemoryCudaResult {
  bool ran = false;
  std::string message;
  double bytes = 0.0;          // 12 n
  double seconds = 0.0;        // median
  double bandwidth_Bps = 0.0;  // bytes / seconds
};

// Stream triad over n floats per array (n >= 1) on `device`.
MemoryCudaResult cuda_stream_triad(std::size_t n, int repeats, int device = 0);

struct CudaDevicePeaks {
  bool ok = false;
  std::string message;  // why not, when !ok
  std::string name;
  int compute_major = 0, compute_minor = 0;
  int sms = 0;
  double sm_clock_mhz = 0.0;      // cudaDevAttrClockRate (maximum SM clock)
  double memory_clock_mhz = 0.0;  // cudaDevAttrMemoryClockRate
  int memory_bus_width_bits = 0;
  double hbm_peak_Bps = 0.0;      // 2 (DDR) * memory clock * bus width / 8
  double memory_bytes = 0.0;
  double l2_bytes = 0.0;
};

// Attributes of `device` (validated against query_cuda_devices()).
CudaDevicePeaks cuda_device_peaks(int device);

}  // namespace trainsim::kernels
