#pragma once
// Internal interface between moe_cuda.cpp (C++20: MoeConfig / MoeWeights /
// MoeRouting, validation, device choice) and cuda/moe_cuda.cu (C++17: the
// kernels, cuBLAS calls and CUDA runtime calls). Plain types only.
#include <string>
#include <vector>

namespace trainsim::kernels::detail {

struct MoeCudaLaunch {
  int tokens = 0, hidden = 0, ffn = 0, experts = 0, topk = 0, shared_ffn = 0;
  // Row-major FP32 host arrays, rounded to BF16 on upload; null = uniform
  // random values generated on the device (scaled by 1 / sqrt(fan_in)).
  const float* x = nullptr;          // tokens x hidden
  const float* w1 = nullptr;         // experts x ffn x hidden
  const float* w3 = nullptr;         // experts x ffn x hidden
  const float* w2 = nullptr;         // experts x hidden x ffn
  const float* shared_w1 = nullptr;  // shared_ffn x hidden
  const float* shared_w3 = nullptr;  // shared_ffn x hidden
  const float* shared_w2 = nullptr;  // hidden x shared_ffn
  // Routing (required, validated by the caller: ids in [0, experts)).
  const int* selected = nullptr;   // tokens x topk
  const float* weights = nullptr;  // tokens x topk
  int repeats = 1;
  int device = 0;
  bool want_output = true;
};

struct MoeCudaTimes {
  double total = 0.0;         // median forward (dispatch + GEMMs + SwiGLU + combine)
  double dispatch = 0.0;      // histogram, scan, scatter, gather, counts copy
  double expert_gemms = 0.0;  // routed expert up + down GEMMs
  double shared = 0.0;        // shared expert (GEMMs + SwiGLU)
};

// On success fills y (tokens x hidden, FP32) when want_output, counts
// (experts) and the median times, and returns ""; else the failing call.
std::string moe_forward_cuda_run(const MoeCudaLaunch& p, std::vector<float>& y, std::vector<int>& counts,
                                 MoeCudaTimes& times);

}  // namespace trainsim::kernels::detail
