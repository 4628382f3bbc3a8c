#pragma once
// The MoE expert path of kernels/moe.hpp, forward only, on a CUDA GPU: what
// calibration needs to time the dispatch, the grouped expert GEMMs and the
// combine as the contiguous expert layout gives them. No CUDA headers here.
//
// What it computes (kernels/src/cuda/moe_cuda.cu)
//  * Routing is an input (MoeRouting from route_tokens on the CPU, or any
//    selected/weights arrays): the router GEMM, the sigmoid and the
//    group-limited top-k are not run on the device.
//  * Dispatch, a counting sort of the tokens x topk (token, slot) pairs by
//    expert: a histogram (atomics), an exclusive scan (one block), a scatter
//    giving every pair its row in its expert's contiguous block (row -> token,
//    row -> routing weight, (token, slot) -> row), and a gather of the token
//    rows into that order. The block offsets are copied to the host, because
//  * the grouped expert GEMMs are a loop of cuBLAS BF16 GEMMs (FP32
//    accumulation), one per non-empty expert block: up = x_perm [W1; W3]^T
//    (W1 and W3 stacked per expert into one 2F x H operand), then the SwiGLU
//    kernel act = w * silu(up1) * up3 with the routing weight w applied BEFORE
//    the down projection (as moe.hpp does), then y_perm = act W2^T.
//  * Combine: y[t] = sum over the token's slots of y_perm[row_of[t, k]] in
//    FP32, plus the shared expert (a SwiGLU MLP on every token, same GEMM
//    path) when shared_ffn > 0. y is returned in FP32.
//  * Timing: one warm-up forward, then `repeats` forwards bracketed by CUDA
//    events; medians of the total, the dispatch (including the offsets copy),
//    the routed expert GEMMs (up + down) and the shared expert. Uploads and
//    allocation are not timed.
//
// Numerics: inputs, weights and every intermediate (x_perm, up, act, y_perm)
// are BF16; accumulation is FP32. Against the FP32 CPU reference
// (moe_forward) expect relative errors of a few 1e-3 (BF16 has 8 significant
// bits: 2^-9 ~ 2e-3 per rounding, a handful of roundings in sequence); the GPU
// test allows 1e-2 relative (Frobenius).
//
// What it ignores: the backward pass; FP8 expert GEMMs (the FP8 kernel in
// fp8_gemm_cuda.hpp needs multiples of 128 rows per block, which ragged
// expert blocks do not give without padding); a single grouped-GEMM launch
// (cuBLAS grouped batched GEMM or a CUTLASS grouped kernel: the loop pays one
// launch per expert); fusing the gather into the GEMM prologue or the combine
// into the epilogue; expert parallelism and all-to-all communication;
// capacity limits (none are applied, as in V3).
//
// UNVERIFIED: compiled only; NEVER RUN (no GPU on the development machine).
// tests/kernels/test_moe_cuda.cpp (suite "gpu") compares with moe_forward when
// a device is present and skips otherwise. Without CUDA every call returns
// ran = false, "built without CUDA".
#include <string>
#include <vector>

#include "trainsim/kernels/moe.hpp"

namespace trainsim::kernels {

struct MoeCudaResult {
  bool ran = false;
  std::string message;      // what ran and how long it took, or why nothing did
  std::vector<float> y;     // tokens x hidden (empty when not requested)
  std::vector<int> counts;  // experts: rows per expert from the device histogram
  double seconds = 0.0;           // median forward
  double dispatch_seconds = 0.0;  // histogram + scan + scatter + gather + offsets copy
  double expert_gemm_seconds = 0.0;  // routed expert up + down GEMMs
  double shared_seconds = 0.0;       // shared expert (0 without one)
};

// Forward with the given weights and routing (e.g. route_tokens(cfg, w, x,
// tokens)); x is tokens x hidden. repeats >= 1; device: CUDA device index.
MoeCudaResult moe_forward_cuda(const MoeConfig& cfg, const MoeWeights& w, const float* x, int tokens,
                               const MoeRouting& routing, int repeats, int device = 0);

// Timing only: weights and activations are random values generated on the
// device (no host copies of multi-GB expert weights); routing is given as
// selected / weights (tokens x topk). y is not copied back.
MoeCudaResult moe_forward_cuda_timing(const MoeConfig& cfg, int tokens, const std::vector<int>& selected,
                                      const std::vector<float>& weights, int repeats, int device = 0);

// Balanced routing for timing: token t's slot k goes to expert
// (t * topk + k) % experts (distinct experts per token when topk <= experts),
// weight route_scale / topk. Every expert gets tokens * topk / experts rows
// (+-1).
MoeRouting balanced_routing(const MoeConfig& cfg, int tokens);

}  // namespace trainsim::kernels
