#pragma once
// CUDA FP8 GEMM with DeepSeek-V3's fine-grained scaling and FP32 promotion,
// on Hopper's FP8 warpgroup MMA (wgmma). No CUDA headers needed here.
//
// What it computes
//   C[M, N] = A[M, K] * B_nk[N, K]^T ("TN": both operands K-major, as FP8
//   wgmma requires), with
//    * A: E4M3 codes with 1 x 128 scale tiles (quantize_activations: one FP32
//      scale per row per 128 elements of K),
//    * B_nk: E4M3 codes with 128 x 128 scale blocks (quantize_weights on the
//      N x K weight, i.e. nn.Linear's layout),
//    * output FP32, or BF16 (Fp8GemmCudaOutput::bf16: rounded to nearest even
//      on the device, returned widened to float).
//   Accumulation is the V3 scheme (report §3.3.2; the "promoted" mode of
//   gemm_fp8 in fp8_gemm.hpp): for each 128-wide block of K the tensor cores
//   accumulate the raw code products (4 wgmma.m64n128k32.f32.e4m3.e4m3, the
//   first with scale-d = false so the partial restarts from zero), then the
//   CUDA cores promote: acc32 += (a_scale[row, kb] * b_scale[nb, kb]) *
//   partial, in separate FP32 registers. So N_C = 128 = one scale block.
//
// Kernel shape (kernels/src/cuda/fp8_gemm_cuda.cu; validation and device
// choice in kernels/src/fp8_gemm_cuda_host.cpp)
//   One CTA = two warpgroups (256 threads) computing a 128 x 128 tile of C;
//   each warpgroup owns 64 rows (64 partial + 64 promoted FP32 registers per
//   thread). K advances 128 per stage through a 3-stage cp.async ring in
//   dynamic shared memory (32 KiB per stage: A 128 x 128 B, B 128 x 128 B),
//   stored in the canonical K-major 128-byte-swizzle layout (16-byte chunk c of
//   row r at chunk c ^ (r % 8)), read by wgmma through shared-memory matrix
//   descriptors (SBO = 1024 B, swizzle mode 128B; the k32 sub-steps advance
//   the start address by 32 B). Ordering: cp.async.wait_group, then
//   fence.proxy.async.shared::cta (generic-proxy writes -> async-proxy wgmma
//   reads) and a CTA barrier; wgmma.fence before the MMAs,
//   wgmma.commit_group + wgmma.wait_group 0 before the promotion reads the
//   partial sums. Scales: A's are transposed on the host to [K/128][M] so the
//   per-row loads are coalesced; B's stay [N/128][K/128] (one per CTA per
//   K block). No TMA, no warp specialisation, no persistent scheduling, no
//   split-K: a plain, readable kernel, far from DeepGEMM's speed.
//
// Supported shapes: M % 128 == 0, N % 128 == 0, K % 128 == 0 (all > 0),
//   A tiles 1 x 128, B tiles 128 x 128, both E4M3. fp8_gemm_cuda_check()
//   says why anything else is refused; fp8_gemm_cuda() then returns
//   ran = false with that reason (it never throws for bad input or CUDA
//   errors). The device must be compute capability 9.0 (sm_90a code only).
//
// Build: the kernel's .cu is compiled for sm_90a only
//   (-gencode=arch=compute_90a,code=sm_90a). The build also writes its PTX and
//   ptxas's -v resource report into the build tree (see
//   kernels/CMakeLists.txt); tests check that the PTX contains e4m3 wgmma
//   instructions and that ptxas reports no spills. With TRAINSIM_CUDA=OFF (or
//   no nvcc) the same API exists and fp8_gemm_cuda() returns ran = false,
//   "built without CUDA".
//
// UNVERIFIED: the development machine has the CUDA toolkit but no GPU and no
// driver, so this kernel has been compiled, its PTX inspected and its ptxas
// report checked, but it has NEVER BEEN RUN. Its numerical agreement with the
// CPU reference (tests/kernels/test_fp8_gemm_cuda.cpp, "gpu" suite) and its
// timing are untested until someone runs the gpu tests on an H100/H800/H200.
// In particular the descriptor encoding, the swizzle, and the accumulator
// fragment layout (row = 16 * warp + lane / 4 + 8 * ((i / 2) % 2),
// col = 8 * (i / 4) + 2 * (lane % 4) + i % 2 for register i) are taken from
// NVIDIA's PTX ISA documentation and public Hopper GEMMs, not from a run.
//
// Timing: one warm-up launch, then `repeats` launches each timed with CUDA
// events; `seconds` is the median. Host<->device copies and allocation are
// not timed.
#include <string>
#include <vector>

#include "trainsim/kernels/block_quant.hpp"

namespace trainsim::kernels {

inline constexpr int kFp8GemmCudaTileM = 128;
inline constexpr int kFp8GemmCudaTileN = 128;
inline constexpr int kFp8GemmCudaTileK = 128;  // = N_C, the promotion interval

enum class Fp8GemmCudaOutput { f32, bf16 };

struct Fp8GemmCudaResult {
  bool ran = false;      // true when the kernel ran and `c` holds its output
  std::string message;   // what ran (device, shape), or why nothing did
  std::vector<float> c;  // M x N row-major when ran (BF16 outputs widened)
  double seconds = 0.0;  // median kernel time over `repeats` launches
};

// Empty when fp8_gemm_cuda supports (a, b_nk), else the reason. A is M x K
// with 1 x 128 tiles, b_nk is N x K with 128 x 128 blocks, both E4M3, with
// M, N, K positive multiples of 128 and consistent code/scale vector sizes.
std::string fp8_gemm_cuda_check(const QuantizedMatrix& a, const QuantizedMatrix& b_nk);

// C = A * B_nk^T on CUDA device 0 (see above). repeats >= 1.
Fp8GemmCudaResult fp8_gemm_cuda(const QuantizedMatrix& a, const QuantizedMatrix& b_nk, int repeats,
                                Fp8GemmCudaOutput output = Fp8GemmCudaOutput::f32);

}  // namespace trainsim::kernels
