#pragma once
// Internal interface between attention_cuda_host.cpp (C++20: validation, BF16
// rounding, device choice) and cuda/attention_cuda.cu (C++17 device code and
// CUDA runtime calls). Plain types only, so the .cu needs no project headers.
#include <cstdint>
#include <string>
#include <vector>

namespace trainsim::kernels::detail {

struct AttentionCudaLaunch {
  const std::uint16_t* q = nullptr;    // BF16 bits, seq x heads x dqk
  const std::uint16_t* k = nullptr;    // BF16 bits, seq x heads x dqk
  const std::uint16_t* v = nullptr;    // BF16 bits, seq x heads x dv
  const std::uint16_t* d_o = nullptr;  // BF16 bits, seq x heads x dv; nullptr: forward only
  int seq = 0, heads = 0, dqk = 0, dv = 0;  // validated: dqk, dv in [1, 256]
  float scale = 0.0f;
  bool causal = true;
  bool bf16_output = false;  // O rounded to BF16 on the device (the backward reads that O)
  int repeats = 1;           // >= 1
  int device = 0;            // CUDA device index (made current for the run)
};

struct AttentionCudaOutputs {
  std::vector<float> o, lse, dq, dk, dv;
  double forward_seconds = 0.0;
  double backward_seconds = 0.0;
};

// Runs forward (and backward when p.d_o) on p.device; returns "" on success,
// else the failing CUDA call.
std::string attention_cuda_run(const AttentionCudaLaunch& p, AttentionCudaOutputs& out);

}  // namespace trainsim::kernels::detail
