// MoE expert path forward on CUDA: dispatch by counting sort, grouped expert
// GEMMs (a loop of cuBLAS BF16 GEMMs over the contiguous expert blocks),
// SwiGLU with the routing weight, combine. Host side: kernels/src/moe_cuda.cpp;
// API and the full description: kernels/include/trainsim/kernels/moe_cuda.hpp.
//
// Storage is BF16 (inputs, weights, every intermediate), accumulation FP32
// (cuBLAS CUBLAS_COMPUTE_32F; the SwiGLU and the combine compute in FP32);
// the output y is FP32.
//
// UNVERIFIED: compiled only; never run (no GPU on the development machine).
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "cublas_util.cuh"
#include "cuda_host_util.cuh"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "moe_cuda_launch.hpp"

namespace trainsim::kernels::detail {
namespace {

using cuda_util::CurrentDevice;
using cuda_util::DeviceBuffer;
using cuda_util::describe;
using cuda_util::Event;


using bf16 = __nv_bfloat16;


struct BlasHandle {
  cublasHandle_t h = nullptr;
  ~BlasHandle() {
    if (h != nullptr) (void)cublasDestroy(h);
  }
};

std::size_t sz(long long v) { return static_cast<std::size_t>(v); }

unsigned grid_for(std::size_t n) {
  const std::size_t blocks = (n + 255) / 256;
  return static_cast<unsigned>(std::max<std::size_t>(1, std::min<std::size_t>(blocks, 65535u * 8u)));
}

__device__ __forceinline__ float hash_uniform(std::uint64_t i, std::uint32_t seed) {
  std::uint64_t z = i * 0x9E3779B97F4A7C15ull + seed;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) * (2.0f / 16777216.0f) - 1.0f;  // [-1, 1)
}

#define GRID_STRIDE(i, n)                                                                       \
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < (n); \
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x)

// out[i] = bf16(src[i]) or bf16(scale * uniform(-1, 1)).
__global__ void to_bf16(bf16* out, std::size_t n, const float* src, float scale, std::uint32_t seed) {
  GRID_STRIDE(i, n) { out[i] = __float2bfloat16(src != nullptr ? src[i] : scale * hash_uniform(i, seed)); }
}

// counts[e] = number of (token, slot) pairs routed to expert e.
__global__ void histogram(const int* selected, std::size_t n, int* counts) {
  GRID_STRIDE(i, n) { atomicAdd(&counts[selected[i]], 1); }
}

// offsets[0..n] = exclusive prefix sum of counts[0..n), offsets[n] = total.
// One block of 1024 threads (a power of two), Hillis-Steele per chunk with a
// running carry: the expert count is small (hundreds).
__global__ void exclusive_scan(const int* counts, int n, int* offsets) {
  __shared__ int buf[1024];
  __shared__ int carry;
  if (threadIdx.x == 0) carry = 0;
  __syncthreads();
  for (int base = 0; base < n; base += blockDim.x) {
    const int i = base + static_cast<int>(threadIdx.x);
    const int v = i < n ? counts[i] : 0;
    buf[threadIdx.x] = v;
    __syncthreads();
    for (unsigned off = 1; off < blockDim.x; off *= 2) {
      const int add = threadIdx.x >= off ? buf[threadIdx.x - off] : 0;
      __syncthreads();
      buf[threadIdx.x] += add;
      __syncthreads();
    }
    if (i < n) offsets[i] = carry + buf[threadIdx.x] - v;
    __syncthreads();
    if (threadIdx.x == blockDim.x - 1) carry += buf[threadIdx.x];
    __syncthreads();
  }
  if (threadIdx.x == 0) offsets[n] = carry;
}

// Row of each (token, slot) inside its expert's block. The order inside a
// block depends on atomics (not the CPU's token order); results do not: every
// row is an independent GEMM row and the combine sums a token's rows in slot
// order through row_of.
__global__ void scatter(const int* selected, const float* weights, std::size_t n, int topk, const int* offsets,
                        int* cursor, int* row_token, float* row_weight, int* row_of) {
  GRID_STRIDE(i, n) {
    const int e = selected[i];
    const int r = offsets[e] + atomicAdd(&cursor[e], 1);
    row_token[r] = static_cast<int>(i / static_cast<std::size_t>(topk));
    row_weight[r] = weights[i];
    row_of[i] = r;
  }
}

// x_perm[r] = x[row_token[r]].
__global__ void gather_rows(const bf16* x, const int* row_token, std::size_t rows, int width, bf16* x_perm) {
  GRID_STRIDE(i, rows * static_cast<std::size_t>(width)) {
    const std::size_t r = i / static_cast<std::size_t>(width), j = i % static_cast<std::size_t>(width);
    x_perm[i] = x[static_cast<std::size_t>(row_token[r]) * static_cast<std::size_t>(width) + j];
  }
}

// act[r, j] = w[r] * silu(up[r, j]) * up[r, F + j]; up is rows x 2F (W1 then W3).
__global__ void swiglu(const bf16* up, const float* row_weight, std::size_t rows, int ffn, bf16* act) {
  GRID_STRIDE(i, rows * static_cast<std::size_t>(ffn)) {
    const std::size_t r = i / static_cast<std::size_t>(ffn), j = i % static_cast<std::size_t>(ffn);
    const float u1 = __bfloat162float(up[r * 2 * static_cast<std::size_t>(ffn) + j]);
    const float u3 = __bfloat162float(up[r * 2 * static_cast<std::size_t>(ffn) + static_cast<std::size_t>(ffn) + j]);
    const float g = row_weight != nullptr ? row_weight[r] : 1.0f;
    act[i] = __float2bfloat16(g * (u1 / (1.0f + __expf(-u1))) * u3);
  }
}

// y[t, j] = sum_k y_perm[row_of[t, k], j] (+ shared[t, j]), FP32.
__global__ void combine(const bf16* y_perm, const int* row_of, std::size_t tokens, int topk, int width,
                        const bf16* shared, float* y) {
  GRID_STRIDE(i, tokens * static_cast<std::size_t>(width)) {
    const std::size_t t = i / static_cast<std::size_t>(width), j = i % static_cast<std::size_t>(width);
    float acc = shared != nullptr ? __bfloat162float(shared[i]) : 0.0f;
    for (int k = 0; k < topk; ++k) {
      const std::size_t r = static_cast<std::size_t>(row_of[t * static_cast<std::size_t>(topk) + k]);
      acc += __bfloat162float(y_perm[r * static_cast<std::size_t>(width) + j]);
    }
    y[i] = acc;
  }
}

// Row-major out[rows x n] = in[rows x k] * w[n x k]^T (BF16, FP32 accumulate).
// Column-major view: out^T (n x rows) = w^T (op T on k x n) * in^T (k x rows).
cublasStatus_t gemm_nt(cublasHandle_t h, int rows, int n, int k, const bf16* in, const bf16* w, bf16* out) {
  const float alpha = 1.0f, beta = 0.0f;
  return cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n, rows, k, &alpha, w, CUDA_R_16BF, k, in, CUDA_R_16BF, k, &beta,
                      out, CUDA_R_16BF, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string forward(const MoeCudaLaunch& p, std::vector<float>& y_out, std::vector<int>& counts_out,
                     MoeCudaTimes& times) {
  CurrentDevice current;
  TS_CUDA(cudaGetDevice(&current.previous), "cudaGetDevice");
  TS_CUDA(cudaSetDevice(p.device), "cudaSetDevice");
  const int T = p.tokens, H = p.hidden, F = p.ffn, E = p.experts, K = p.topk, S = p.shared_ffn;
  const std::size_t TK = sz(T) * sz(K);

  // ---- uploads (not timed) ----
  DeviceBuffer staging;
  std::size_t staging_floats = 0;
  const auto stage = [&](std::size_t n) -> std::string {
    if (n <= staging_floats) return {};
    if (staging.p != nullptr) (void)cudaFree(staging.p);
    staging.p = nullptr;
    TS_CUDA(cudaMalloc(&staging.p, n * sizeof(float)), "cudaMalloc(staging)");
    staging_floats = n;
    return {};
  };
  // dst (n BF16) from one host array, or random values.
  const auto upload = [&](DeviceBuffer& dst, std::size_t n, const float* host, double fan_in,
                          std::uint32_t seed) -> std::string {
    TS_CUDA(cudaMalloc(&dst.p, n * sizeof(bf16)), "cudaMalloc(BF16 tensor)");
    const float* src = nullptr;
    if (host != nullptr) {
      if (std::string e = stage(n); !e.empty()) return e;
      TS_CUDA(cudaMemcpy(staging.p, host, n * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy(input)");
      src = staging.as<float>();
    }
    to_bf16<<<grid_for(n), 256>>>(dst.as<bf16>(), n, src, static_cast<float>(1.0 / std::sqrt(fan_in)), seed);
    TS_CUDA(cudaGetLastError(), "to_bf16 launch");
    TS_CUDA(cudaDeviceSynchronize(), "to_bf16");
    return {};
  };
  // dst (groups x 2 rows_each x cols BF16): per group, rows of a then rows of b.
  const auto upload_pair = [&](DeviceBuffer& dst, int groups, int rows_each, int cols, const float* a, const float* b,
                               double fan_in, std::uint32_t seed) -> std::string {
    const std::size_t block = sz(rows_each) * sz(cols), n = 2 * sz(groups) * block;
    if (a == nullptr || b == nullptr) return upload(dst, n, nullptr, fan_in, seed);
    TS_CUDA(cudaMalloc(&dst.p, n * sizeof(bf16)), "cudaMalloc(BF16 weights)");
    if (std::string e = stage(n); !e.empty()) return e;
    const std::size_t pitch = 2 * block * sizeof(float), width = block * sizeof(float);
    TS_CUDA(cudaMemcpy2D(staging.p, pitch, a, width, width, sz(groups), cudaMemcpyHostToDevice), "cudaMemcpy2D(W1)");
    TS_CUDA(cudaMemcpy2D(staging.as<float>() + block, pitch, b, width, width, sz(groups), cudaMemcpyHostToDevice),
            "cudaMemcpy2D(W3)");
    to_bf16<<<grid_for(n), 256>>>(dst.as<bf16>(), n, staging.as<float>(), 1.0f, seed);
    TS_CUDA(cudaGetLastError(), "to_bf16 launch");
    TS_CUDA(cudaDeviceSynchronize(), "to_bf16");
    return {};
  };

  DeviceBuffer x, w13, w2, sw13, sw2;
  if (std::string e = upload(x, sz(T) * sz(H), p.x, 1.0, 11u); !e.empty()) return e;
  if (std::string e = upload_pair(w13, E, F, H, p.w1, p.w3, H, 12u); !e.empty()) return e;
  if (std::string e = upload(w2, sz(E) * sz(H) * sz(F), p.w2, F, 13u); !e.empty()) return e;
  if (S > 0) {
    if (std::string e = upload_pair(sw13, 1, S, H, p.shared_w1, p.shared_w3, H, 14u); !e.empty()) return e;
    if (std::string e = upload(sw2, sz(H) * sz(S), p.shared_w2, S, 15u); !e.empty()) return e;
  }
  if (staging.p != nullptr) {
    (void)cudaFree(staging.p);
    staging.p = nullptr;
  }
  DeviceBuffer sel, wts;
  TS_CUDA(cudaMalloc(&sel.p, TK * sizeof(int)), "cudaMalloc(selected)");
  TS_CUDA(cudaMalloc(&wts.p, TK * sizeof(float)), "cudaMalloc(weights)");
  TS_CUDA(cudaMemcpy(sel.p, p.selected, TK * sizeof(int), cudaMemcpyHostToDevice), "cudaMemcpy(selected)");
  TS_CUDA(cudaMemcpy(wts.p, p.weights, TK * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy(weights)");

  // ---- work buffers ----
  DeviceBuffer counts, cursor, offsets, row_token, row_weight, row_of, x_perm, up, act, y_perm, y, s_up, s_act, s_y;
  TS_CUDA(cudaMalloc(&counts.p, sz(E) * sizeof(int)), "cudaMalloc(counts)");
  TS_CUDA(cudaMalloc(&cursor.p, sz(E) * sizeof(int)), "cudaMalloc(cursor)");
  TS_CUDA(cudaMalloc(&offsets.p, (sz(E) + 1) * sizeof(int)), "cudaMalloc(offsets)");
  TS_CUDA(cudaMalloc(&row_token.p, TK * sizeof(int)), "cudaMalloc(row_token)");
  TS_CUDA(cudaMalloc(&row_weight.p, TK * sizeof(float)), "cudaMalloc(row_weight)");
  TS_CUDA(cudaMalloc(&row_of.p, TK * sizeof(int)), "cudaMalloc(row_of)");
  TS_CUDA(cudaMalloc(&x_perm.p, TK * sz(H) * sizeof(bf16)), "cudaMalloc(x_perm)");
  TS_CUDA(cudaMalloc(&up.p, TK * 2 * sz(F) * sizeof(bf16)), "cudaMalloc(up)");
  TS_CUDA(cudaMalloc(&act.p, TK * sz(F) * sizeof(bf16)), "cudaMalloc(act)");
  TS_CUDA(cudaMalloc(&y_perm.p, TK * sz(H) * sizeof(bf16)), "cudaMalloc(y_perm)");
  TS_CUDA(cudaMalloc(&y.p, sz(T) * sz(H) * sizeof(float)), "cudaMalloc(y)");
  if (S > 0) {
    TS_CUDA(cudaMalloc(&s_up.p, sz(T) * 2 * sz(S) * sizeof(bf16)), "cudaMalloc(shared up)");
    TS_CUDA(cudaMalloc(&s_act.p, sz(T) * sz(S) * sizeof(bf16)), "cudaMalloc(shared act)");
    TS_CUDA(cudaMalloc(&s_y.p, sz(T) * sz(H) * sizeof(bf16)), "cudaMalloc(shared y)");
  }
  BlasHandle blas;
  TS_BLAS(cublasCreate(&blas.h), "cublasCreate");
  Event ev[7];
  for (Event& e : ev) TS_CUDA(cudaEventCreate(&e.e), "cudaEventCreate");
  std::vector<int> host_offsets(sz(E) + 1);

  const auto run_once = [&]() -> std::string {
    TS_CUDA(cudaEventRecord(ev[0].e), "cudaEventRecord");
    if (S > 0) {  // shared expert on every token
      TS_BLAS(gemm_nt(blas.h, T, 2 * S, H, x.as<bf16>(), sw13.as<bf16>(), s_up.as<bf16>()), "shared up GEMM");
      swiglu<<<grid_for(sz(T) * sz(S)), 256>>>(s_up.as<bf16>(), nullptr, sz(T), S, s_act.as<bf16>());
      TS_CUDA(cudaGetLastError(), "shared swiglu launch");
      TS_BLAS(gemm_nt(blas.h, T, H, S, s_act.as<bf16>(), sw2.as<bf16>(), s_y.as<bf16>()), "shared down GEMM");
    }
    TS_CUDA(cudaEventRecord(ev[1].e), "cudaEventRecord");
    // Dispatch: counting sort of the (token, slot) pairs by expert.
    TS_CUDA(cudaMemsetAsync(counts.p, 0, sz(E) * sizeof(int)), "cudaMemsetAsync(counts)");
    TS_CUDA(cudaMemsetAsync(cursor.p, 0, sz(E) * sizeof(int)), "cudaMemsetAsync(cursor)");
    histogram<<<grid_for(TK), 256>>>(sel.as<int>(), TK, counts.as<int>());
    exclusive_scan<<<1, 1024>>>(counts.as<int>(), E, offsets.as<int>());
    scatter<<<grid_for(TK), 256>>>(sel.as<int>(), wts.as<float>(), TK, K, offsets.as<int>(), cursor.as<int>(),
                                   row_token.as<int>(), row_weight.as<float>(), row_of.as<int>());
    gather_rows<<<grid_for(TK * sz(H)), 256>>>(x.as<bf16>(), row_token.as<int>(), TK, H, x_perm.as<bf16>());
    TS_CUDA(cudaGetLastError(), "dispatch launches");
    // The GEMM loop needs the block sizes on the host.
    TS_CUDA(cudaMemcpy(host_offsets.data(), offsets.p, (sz(E) + 1) * sizeof(int), cudaMemcpyDeviceToHost),
            "cudaMemcpy(offsets)");
    TS_CUDA(cudaEventRecord(ev[2].e), "cudaEventRecord");
    for (int e = 0; e < E; ++e) {
      const int r0 = host_offsets[sz(e)], n = host_offsets[sz(e) + 1] - r0;
      if (n == 0) continue;
      TS_BLAS(gemm_nt(blas.h, n, 2 * F, H, x_perm.as<bf16>() + sz(r0) * sz(H), w13.as<bf16>() + sz(e) * 2 * sz(F) * sz(H),
                      up.as<bf16>() + sz(r0) * 2 * sz(F)),
              "expert up GEMM");
    }
    TS_CUDA(cudaEventRecord(ev[3].e), "cudaEventRecord");
    swiglu<<<grid_for(TK * sz(F)), 256>>>(up.as<bf16>(), row_weight.as<float>(), TK, F, act.as<bf16>());
    TS_CUDA(cudaGetLastError(), "swiglu launch");
    TS_CUDA(cudaEventRecord(ev[4].e), "cudaEventRecord");
    for (int e = 0; e < E; ++e) {
      const int r0 = host_offsets[sz(e)], n = host_offsets[sz(e) + 1] - r0;
      if (n == 0) continue;
      TS_BLAS(gemm_nt(blas.h, n, H, F, act.as<bf16>() + sz(r0) * sz(F), w2.as<bf16>() + sz(e) * sz(H) * sz(F),
                      y_perm.as<bf16>() + sz(r0) * sz(H)),
              "expert down GEMM");
    }
    TS_CUDA(cudaEventRecord(ev[5].e), "cudaEventRecord");
    combine<<<grid_for(sz(T) * sz(H)), 256>>>(y_perm.as<bf16>(), row_of.as<int>(), sz(T), K, H,
                                              S > 0 ? s_y.as<bf16>() : nullptr, y.as<float>());
    TS_CUDA(cudaGetLastError(), "combine launch");
    TS_CUDA(cudaEventRecord(ev[6].e), "cudaEventRecord");
    TS_CUDA(cudaEventSynchronize(ev[6].e), "MoE forward");
    return {};
  };
  const auto elapsed = [&](int a, int b, double& s) -> std::string {
    float ms = 0.0f;
    TS_CUDA(cudaEventElapsedTime(&ms, ev[a].e, ev[b].e), "cudaEventElapsedTime");
    s = static_cast<double>(ms) * 1e-3;
    return {};
  };

  if (std::string e = run_once(); !e.empty()) return "warm-up: " + e;
  std::vector<double> total, dispatch, gemms, shared;
  for (int i = 0; i < p.repeats; ++i) {
    if (std::string e = run_once(); !e.empty()) return e;
    double t = 0, d = 0, g1 = 0, g2 = 0, s = 0;
    for (const std::string& e : {elapsed(0, 6, t), elapsed(1, 2, d), elapsed(2, 3, g1), elapsed(4, 5, g2),
                                 elapsed(0, 1, s)}) {
      if (!e.empty()) return e;
    }
    total.push_back(t);
    dispatch.push_back(d);
    gemms.push_back(g1 + g2);
    shared.push_back(s);
  }
  times.total = median(total);
  times.dispatch = median(dispatch);
  times.expert_gemms = median(gemms);
  times.shared = median(shared);

  counts_out.resize(sz(E));
  TS_CUDA(cudaMemcpy(counts_out.data(), counts.p, sz(E) * sizeof(int), cudaMemcpyDeviceToHost), "cudaMemcpy(counts)");
  if (p.want_output) {
    y_out.resize(sz(T) * sz(H));
    TS_CUDA(cudaMemcpy(y_out.data(), y.p, y_out.size() * sizeof(float), cudaMemcpyDeviceToHost), "cudaMemcpy(y)");
  }
  return {};
}

}  // namespace

std::string moe_forward_cuda_run(const MoeCudaLaunch& p, std::vector<float>& y, std::vector<int>& counts,
                                 MoeCudaTimes& times) {
  y.clear();
  counts.clear();
  times = MoeCudaTimes{};
  std::string err = forward(p, y, counts, times);
  if (!err.empty()) {
    (void)cudaGetLastError();
    y.clear();
    counts.clear();
    times = MoeCudaTimes{};
  }
  return err;
}

}  // namespace trainsim::kernels::detail
