#pragma once
// CUDA causal attention in MLA's training form (the core of attention.hpp),
// forward and backward, BF16 inputs with FP32 accumulation. No CUDA headers
// needed here.
//
// What it computes
//  * The same function as attention_forward / attention_backward in
//    attention.hpp, with the same layouts (Q, K: seq x heads x dqk; V, O, dO:
//    seq x heads x dv; LSE: heads x seq, natural log, scale included), but
//    with Q, K, V and dO rounded to BF16 (nearest even) on the host before
//    they are copied to the device, as a BF16 training step would hold them.
//    Every product and sum runs in FP32 on the device.
//  * Forward: O = softmax(scale * Q K^T + causal mask) V with FlashAttention's
//    online softmax (running row max m and row sum l per query row, rescaling
//    the O accumulator by exp(m_old - m_new) as each block of keys arrives),
//    and LSE = m + log(l). O is written in FP32, or rounded to BF16 on the
//    device (AttentionCudaOutput::bf16; returned widened to float); the
//    backward then reads that BF16 O, as a BF16 training step would.
//  * Backward, FlashAttention-2's two-kernel scheme with P rebuilt from the
//    LSE: (1) a preprocess kernel computes D_i = rowsum(dO_i * O_i) per query
//    row and head; (2) one CTA per (block of 32 keys, head) keeps its K and V
//    block and its dK, dV accumulators on chip, walks over the query blocks
//    that can see it (causal: from its own block on), recomputes
//    S = scale * Q K^T, P = exp(S - LSE), dP = dO V^T, dS = P * (dP - D),
//    accumulates dV += P^T dO and dK += scale * dS^T Q, and adds
//    dQ += scale * dS K into an FP32 dQ with atomicAdd (so dQ's summation
//    order, and its last bits, vary between runs; dK and dV are
//    deterministic).
//
// Kernel shape (kernels/src/cuda/attention_cuda.cu; validation, BF16
// rounding, device choice and messages in kernels/src/attention_cuda_host.cpp)
//   Blocks of 32 query rows x 32 keys, 256 threads per CTA: 8 threads share
//   a row (scores of keys lane, lane + 8, ...; output columns lane, lane + 8,
//   ...), row maxima and sums reduce over those 8 lanes with warp shuffles.
//   Tiles are held in shared memory as FP32 (rows padded to an odd stride,
//   so column walks are free of bank conflicts); dynamic shared memory is
//   about 4 * 32 * (dqk + dv) bytes forward and 4 * 32 * 2 * (dqk + dv)
//   backward (~68 KB and ~130 KB at 192/128). The arithmetic is plain FP32
//   FMA loops on the CUDA cores: no tensor cores (no mma.sync / wgmma), no
//   cp.async / TMA pipelining, no warp specialisation.
//   THIS IS A BASELINE, NOT FLASHATTENTION-3 OR FLASHMLA: it is written for
//   clarity and checkability and will be one to two orders of magnitude
//   slower than those on an H100/H800; its timings must not be read as what
//   MLA attention costs on Hopper, only as an upper bound.
//
// Supported shapes (attention_cuda_check says why anything else is refused;
// attention_cuda then returns ran = false with that reason, never throws):
//   seq >= 1, heads >= 1, 1 <= dqk <= 256, 1 <= dv <= 256
//   (kAttentionCudaMaxHeadDim: per-thread accumulator arrays are sized for
//   256 / 8 columns), scale finite and non-zero, causal or not, and
//   seq * heads * max(dqk, dv) < 2^31. Vector sizes must match the shape.
//   The device must be compute capability 9.0: like the FP8 GEMM, the .cu is
//   compiled for sm_90a only (-gencode=arch=compute_90a,code=sm_90a), though
//   nothing in it is Hopper-specific (plain FP32 FMAs, BF16 handled as bits).
//
// UNVERIFIED: the development machine has the CUDA toolkit but no GPU and no
// driver. These kernels have been compiled (ptxas -v report in the build
// tree, see kernels/CMakeLists.txt) but they have NEVER RUN. Their agreement
// with the CPU reference (tests/kernels/test_attention_cuda.cpp, "gpu" suite)
// and their timings are untested until someone runs the gpu tests on a GPU.
// Partial evidence: during development the kernel bodies (unchanged source)
// were executed on the CPU under a throwaway emulation of the CUDA subset
// they use (one std::thread per CUDA thread, std::barrier for __syncthreads
// and for warp shuffles, shared memory pre-filled with NaNs, atomic float
// adds), on the gpu test's shapes plus a few more: O, dQ, dK, dV within
// 4e-7 relative and LSE within 5e-7 of the CPU reference. That checks the
// indexing, tiling, masking and softmax/gradient algebra; it says nothing
// about the GPU memory model, launch configuration, shared-memory limits or
// speed. ptxas (CUDA 13.0, sm_90a): forward 64 registers, backward 170,
// preprocess 30-31, no spills, no stack.
//
// Timing: the whole forward and backward run once as a warm-up, then
// `repeats` times; forward_seconds is the median forward-kernel time and
// backward_seconds the median of (dQ zeroing + preprocess + dK/dV/dQ kernel),
// each timed with CUDA events. Allocation and host<->device copies are not
// timed.
#include <string>
#include <vector>

#include "trainsim/kernels/attention.hpp"

namespace trainsim::kernels {

inline constexpr int kAttentionCudaMaxHeadDim = 256;
inline constexpr int kAttentionCudaBlockQ = 32;   // query rows per block
inline constexpr int kAttentionCudaBlockKV = 32;  // keys per block

enum class AttentionCudaOutput { f32, bf16 };

struct AttentionCudaResult {
  bool ran = false;               // true when the kernels ran and the vectors hold their outputs
  std::string message;            // what ran (device, shape, times), or why nothing did
  std::vector<float> o, lse;      // seq x heads x dv, heads x seq
  std::vector<float> dq, dk, dv;  // seq x heads x dqk (twice), seq x heads x dv; empty if dO was empty
  double forward_seconds = 0.0;   // median over `repeats`
  double backward_seconds = 0.0;  // median over `repeats`; 0 without dO
};

// FP32 -> BF16 -> FP32, rounding to nearest even (NaN stays NaN). What the
// host does to every input before copying it to the device; tests apply it
// to the CPU reference's inputs.
float attention_cuda_round_bf16(float x);

// Empty when attention_cuda supports the shape, else the reason.
std::string attention_cuda_check(const AttentionShape& s);

// Forward (and, when d_o is non-empty, backward) on CUDA device 0; see above.
// q, k: seq x heads x dqk; v, d_o: seq x heads x dv; repeats >= 1.
AttentionCudaResult attention_cuda(const AttentionShape& s, const std::vector<float>& q, const std::vector<float>& k,
                                   const std::vector<float>& v, const std::vector<float>& d_o, int repeats,
                                   AttentionCudaOutput output = AttentionCudaOutput::f32);

}  // namespace trainsim::kernels
