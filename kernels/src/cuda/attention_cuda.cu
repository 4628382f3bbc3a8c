// Causal attention (MLA training form), forward and backward, BF16 inputs,
// FP32 arithmetic: a plain tiled FlashAttention-style baseline on the CUDA
// cores. Design, limits and what is unverified: see
// include/trainsim/kernels/attention_cuda.hpp. Compiled as C++17 for sm_90a
// (nothing here needs Hopper; the project builds its kernels for sm_90a), no
// project headers beyond the plain-typed launch interface; links cudart only.
// Validation, BF16 rounding and device choice are in ../attention_cuda_host.cpp.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "cuda_host_util.cuh"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "attention_cuda_launch.hpp"

namespace trainsim::kernels::detail {
namespace {

using cuda_util::CurrentDevice;
using cuda_util::DeviceBuffer;
using cuda_util::describe;
using cuda_util::Event;


// Keep in step with kAttentionCuda{BlockQ,BlockKV,MaxHeadDim} in attention_cuda.hpp.
constexpr int kBlockQ = 32;                         // query rows per tile
constexpr int kBlockK = 32;                         // keys per tile
constexpr int kThreads = 256;                       // per CTA
constexpr int kLanesPerRow = 8;                     // threads sharing one row (aligned groups of 8 lanes)
constexpr int kMaxD = 256;                          // largest dqk / dv
constexpr int kColsPerThread = kMaxD / kLanesPerRow;  // register accumulators per thread (32)
constexpr int kKeysPerThread = kBlockK / kLanesPerRow;  // scores per thread and row (4)
constexpr int kLdP = kBlockK + 1;                   // padded row stride of the P / dS tiles

static_assert(kThreads == kBlockQ * kLanesPerRow && kThreads == kBlockK * kLanesPerRow,
              "one row of 8 lanes per query row and per key row");
static_assert(kBlockQ == kBlockK, "causal block skipping assumes aligned square tiles");
static_assert(32 % kLanesPerRow == 0, "row groups must not straddle warps");

constexpr float kNegInf = -INFINITY;

// Odd row stride: consecutive rows start in different banks, so 8 lanes
// walking 8 different rows at the same column do not conflict.
__host__ __device__ constexpr int padded(int d) { return d | 1; }

__device__ __forceinline__ float bf16_bits_to_float(std::uint16_t b) {
  return __uint_as_float(static_cast<unsigned>(b) << 16);  // exact
}

__device__ __forceinline__ std::size_t idx3(int row, int heads, int h, int d, int c) {
  return (static_cast<std::size_t>(row) * static_cast<std::size_t>(heads) + static_cast<std::size_t>(h)) *
             static_cast<std::size_t>(d) +
         static_cast<std::size_t>(c);
}

// Sum / max over the 8 lanes of a row group (lanes 8g .. 8g+7 of a warp).
__device__ __forceinline__ float row_sum(float v) {
#pragma unroll
  for (int off = kLanesPerRow / 2; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
  return v;
}
__device__ __forceinline__ float row_max(float v) {
#pragma unroll
  for (int off = kLanesPerRow / 2; off > 0; off /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
  return v;
}

// rows x d tile of a seq x heads x d BF16 tensor (rows from row0, head h)
// into FP32 shared memory with row stride ld; rows past seq become 0.
__device__ __forceinline__ void load_tile(float* dst, int ld, const std::uint16_t* src, int row0, int rows, int seq,
                                          int heads, int h, int d) {
  for (int i = threadIdx.x; i < rows * d; i += kThreads) {
    const int r = i / d, c = i % d;
    const int g = row0 + r;
    dst[r * ld + c] = g < seq ? bf16_bits_to_float(src[idx3(g, heads, h, d, c)]) : 0.0f;
  }
}

__device__ __forceinline__ bool key_visible(int query, int key, int seq, bool causal) {
  return key < seq && (!causal || key <= query);
}

template <typename T>
__device__ __forceinline__ float load_out(const T* p) {
  if constexpr (std::is_same_v<T, float>) {
    return *p;
  } else {
    return __bfloat162float(*p);
  }
}
template <typename T>
__device__ __forceinline__ void store_out(T* p, float v) {
  if constexpr (std::is_same_v<T, float>) {
    *p = v;
  } else {
    *p = __float2bfloat16_rn(v);
  }
}

// ---- forward ---------------------------------------------------------------
// grid (ceil(seq / 32), heads). Thread t owns query row t / 8 of the tile; its
// lane l = t % 8 computes the scores of keys l, l + 8, l + 16, l + 24 of each
// key tile and accumulates output columns l, l + 8, ... (< dv).
// Shared memory: Q [32][dqk|1], K [32][dqk|1], V [32][dv|1], P [32][33].
template <typename OutT>
__global__ void __launch_bounds__(kThreads)
    attention_forward_kernel(const std::uint16_t* __restrict__ q, const std::uint16_t* __restrict__ k,
                             const std::uint16_t* __restrict__ v, OutT* __restrict__ o, float* __restrict__ lse,
                             int seq, int heads, int dqk, int dv, float scale, bool causal) {
  extern __shared__ float smem[];
  const int ldq = padded(dqk), ldv = padded(dv);
  float* qs = smem;
  float* ks = qs + kBlockQ * ldq;
  float* vs = ks + kBlockK * ldq;
  float* ps = vs + kBlockK * ldv;

  const int h = blockIdx.y;
  const int q0 = blockIdx.x * kBlockQ;
  const int r = threadIdx.x / kLanesPerRow;
  const int lane = threadIdx.x % kLanesPerRow;
  const int qi = q0 + r;  // this thread's query row (may be >= seq: computed, never written)

  load_tile(qs, ldq, q, q0, kBlockQ, seq, heads, h, dqk);

  float m = kNegInf;  // running row max of the scaled scores
  float l = 0.0f;     // running row sum of exp(s - m)
  float acc[kColsPerThread];
#pragma unroll
  for (int t = 0; t < kColsPerThread; ++t) acc[t] = 0.0f;

  // Causal: key tiles past the query tile are fully masked and skipped.
  const int kv_end = causal ? min(seq, q0 + kBlockQ) : seq;
  for (int j0 = 0; j0 < kv_end; j0 += kBlockK) {
    __syncthreads();  // previous tile's K, V, P fully consumed (and Q loaded on the first pass)
    load_tile(ks, ldq, k, j0, kBlockK, seq, heads, h, dqk);
    load_tile(vs, ldv, v, j0, kBlockK, seq, heads, h, dv);
    __syncthreads();

    float s[kKeysPerThread];
    float tile_max = kNegInf;
#pragma unroll
    for (int u = 0; u < kKeysPerThread; ++u) {
      const int jl = lane + kLanesPerRow * u;
      float dot = 0.0f;
      for (int d = 0; d < dqk; ++d) dot = fmaf(qs[r * ldq + d], ks[jl * ldq + d], dot);
      s[u] = key_visible(qi, j0 + jl, seq, causal) ? scale * dot : kNegInf;
      tile_max = fmaxf(tile_max, s[u]);
    }
    tile_max = row_max(tile_max);
    const float m_new = fmaxf(m, tile_max);
    // Every row sees at least one key of every tile it visits (key j0 <= qi
    // for causal rows; rows past seq still see key j0 < seq), so m_new is
    // finite; the guard only keeps exp() away from (-inf) - (-inf).
    const float m_ref = m_new == kNegInf ? 0.0f : m_new;
    const float alpha = expf(m - m_ref);  // 0 on the first tile (m = -inf)
    float psum = 0.0f;
#pragma unroll
    for (int u = 0; u < kKeysPerThread; ++u) {
      const float p = expf(s[u] - m_ref);  // 0 for masked keys
      ps[r * kLdP + lane + kLanesPerRow * u] = p;
      psum += p;
    }
    l = l * alpha + row_sum(psum);
    m = m_new;
    __syncthreads();  // P row written by the 8 lanes of this row group (same warp; a CTA barrier for clarity)

#pragma unroll
    for (int t = 0; t < kColsPerThread; ++t) acc[t] *= alpha;
    const int nk = min(kBlockK, seq - j0);
    for (int j = 0; j < nk; ++j) {
      const float p = ps[r * kLdP + j];
#pragma unroll
      for (int t = 0; t < kColsPerThread; ++t) {
        const int c = lane + kLanesPerRow * t;
        if (c < dv) acc[t] = fmaf(p, vs[j * ldv + c], acc[t]);
      }
    }
  }

  if (qi < seq) {
    const float inv_l = 1.0f / l;
#pragma unroll
    for (int t = 0; t < kColsPerThread; ++t) {
      const int c = lane + kLanesPerRow * t;
      if (c < dv) store_out(o + idx3(qi, heads, h, dv, c), acc[t] * inv_l);
    }
    if (lane == 0) lse[static_cast<std::size_t>(h) * static_cast<std::size_t>(seq) + qi] = m + logf(l);
  }
}

// ---- backward --------------------------------------------------------------
// D[h][i] = sum_c dO[i,h,c] * O[i,h,c], one warp per (row, head).
template <typename OutT>
__global__ void __launch_bounds__(kThreads)
    attention_backward_preprocess_kernel(const OutT* __restrict__ o, const std::uint16_t* __restrict__ d_o,
                                         float* __restrict__ dsum, int seq, int heads, int dv) {
  const long long warp = (static_cast<long long>(blockIdx.x) * kThreads + threadIdx.x) / 32;
  const int lane = threadIdx.x % 32;
  if (warp >= static_cast<long long>(seq) * heads) return;
  const int i = static_cast<int>(warp / heads), h = static_cast<int>(warp % heads);
  float acc = 0.0f;
  for (int c = lane; c < dv; c += 32) {
    acc = fmaf(bf16_bits_to_float(d_o[idx3(i, heads, h, dv, c)]), load_out(o + idx3(i, heads, h, dv, c)), acc);
  }
#pragma unroll
  for (int off = 16; off > 0; off /= 2) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  if (lane == 0) dsum[static_cast<std::size_t>(h) * static_cast<std::size_t>(seq) + i] = acc;
}

// grid (ceil(seq / 32), heads): CTA (b, h) owns keys [32b, 32b + 32) of head
// h. Thread t owns key row t / 8 for dK / dV (columns lane, lane + 8, ...)
// and query row t / 8 when computing P, dS and dQ.
// Shared memory: K [32][dqk|1], V [32][dv|1], Q [32][dqk|1], dO [32][dv|1],
// P [32][33], dS [32][33], LSE [32], D [32].
__global__ void __launch_bounds__(kThreads)
    attention_backward_kernel(const std::uint16_t* __restrict__ q, const std::uint16_t* __restrict__ k,
                              const std::uint16_t* __restrict__ v, const std::uint16_t* __restrict__ d_o,
                              const float* __restrict__ lse, const float* __restrict__ dsum, float* __restrict__ dq,
                              float* __restrict__ dk, float* __restrict__ dv_out, int seq, int heads, int dqk,
                              int dv, float scale, bool causal) {
  extern __shared__ float smem[];
  const int ldq = padded(dqk), ldv = padded(dv);
  float* ks = smem;
  float* vs = ks + kBlockK * ldq;
  float* qs = vs + kBlockK * ldv;
  float* dos = qs + kBlockQ * ldq;
  float* ps = dos + kBlockQ * ldv;
  float* dss = ps + kBlockQ * kLdP;
  float* lse_s = dss + kBlockQ * kLdP;
  float* d_s = lse_s + kBlockQ;

  const int h = blockIdx.y;
  const int j0 = blockIdx.x * kBlockK;
  const int row = threadIdx.x / kLanesPerRow;  // key row (dK, dV) or query row (P, dS, dQ)
  const int lane = threadIdx.x % kLanesPerRow;

  load_tile(ks, ldq, k, j0, kBlockK, seq, heads, h, dqk);
  load_tile(vs, ldv, v, j0, kBlockK, seq, heads, h, dv);

  float dk_acc[kColsPerThread], dv_acc[kColsPerThread];
#pragma unroll
  for (int t = 0; t < kColsPerThread; ++t) dk_acc[t] = dv_acc[t] = 0.0f;

  // Causal: query tiles before this key tile cannot see it.
  for (int q0 = causal ? j0 : 0; q0 < seq; q0 += kBlockQ) {
    __syncthreads();  // previous query tile fully consumed (K, V loaded on the first pass)
    load_tile(qs, ldq, q, q0, kBlockQ, seq, heads, h, dqk);
    load_tile(dos, ldv, d_o, q0, kBlockQ, seq, heads, h, dv);
    if (threadIdx.x < kBlockQ) {
      const int i = q0 + threadIdx.x;
      const std::size_t at = static_cast<std::size_t>(h) * static_cast<std::size_t>(seq) + i;
      lse_s[threadIdx.x] = i < seq ? lse[at] : 0.0f;
      d_s[threadIdx.x] = i < seq ? dsum[at] : 0.0f;
    }
    __syncthreads();

    // P = exp(scale * Q K^T - LSE), dP = dO V^T, dS = P * (dP - D).
    const int qi = q0 + row;
#pragma unroll
    for (int u = 0; u < kKeysPerThread; ++u) {
      const int jl = lane + kLanesPerRow * u;
      float p = 0.0f, ds = 0.0f;
      if (qi < seq && key_visible(qi, j0 + jl, seq, causal)) {
        float s = 0.0f;
        for (int d = 0; d < dqk; ++d) s = fmaf(qs[row * ldq + d], ks[jl * ldq + d], s);
        float dp = 0.0f;
        for (int d = 0; d < dv; ++d) dp = fmaf(dos[row * ldv + d], vs[jl * ldv + d], dp);
        p = expf(scale * s - lse_s[row]);
        ds = p * (dp - d_s[row]);
      }
      ps[row * kLdP + jl] = p;
      dss[row * kLdP + jl] = ds;
    }
    __syncthreads();

    // dV[j] += sum_i P[i][j] dO[i];  dK[j] += sum_i dS[i][j] Q[i] (scaled at the end).
    const int nq = min(kBlockQ, seq - q0);
    for (int i = 0; i < nq; ++i) {
      const float p = ps[i * kLdP + row];
      const float ds = dss[i * kLdP + row];
#pragma unroll
      for (int t = 0; t < kColsPerThread; ++t) {
        const int c = lane + kLanesPerRow * t;
        if (c < dv) dv_acc[t] = fmaf(p, dos[i * ldv + c], dv_acc[t]);
        if (c < dqk) dk_acc[t] = fmaf(ds, qs[i * ldq + c], dk_acc[t]);
      }
    }

    // dQ[i] += scale * sum_j dS[i][j] K[j], added to global FP32 dQ (other
    // key tiles add to the same rows concurrently).
    if (qi < seq) {
      const int nk = min(kBlockK, seq - j0);
      for (int c = lane; c < dqk; c += kLanesPerRow) {
        float acc = 0.0f;
        for (int j = 0; j < nk; ++j) acc = fmaf(dss[row * kLdP + j], ks[j * ldq + c], acc);
        atomicAdd(dq + idx3(qi, heads, h, dqk, c), scale * acc);
      }
    }
  }

  const int kj = j0 + row;
  if (kj < seq) {
#pragma unroll
    for (int t = 0; t < kColsPerThread; ++t) {
      const int c = lane + kLanesPerRow * t;
      if (c < dqk) dk[idx3(kj, heads, h, dqk, c)] = scale * dk_acc[t];
      if (c < dv) dv_out[idx3(kj, heads, h, dv, c)] = dv_acc[t];
    }
  }
}

// ---- host side -------------------------------------------------------------

std::size_t forward_smem_bytes(int dqk, int dv) {
  return sizeof(float) * static_cast<std::size_t>((kBlockQ + kBlockK) * padded(dqk) + kBlockK * padded(dv) +
                                                  kBlockQ * kLdP);
}
std::size_t backward_smem_bytes(int dqk, int dv) {
  return sizeof(float) * static_cast<std::size_t>((kBlockK + kBlockQ) * (padded(dqk) + padded(dv)) +
                                                  2 * kBlockQ * kLdP + 2 * kBlockQ);
}





double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

cudaError_t copy_to_host(std::vector<float>& dst, const DeviceBuffer& src, std::size_t count) {
  dst.resize(count);
  return cudaMemcpy(dst.data(), src.p, count * sizeof(float), cudaMemcpyDeviceToHost);
}

template <typename OutT>
std::string run(const AttentionCudaLaunch& p, AttentionCudaOutputs& out) {
  CurrentDevice current;
  cudaError_t e = cudaSuccess;
  if ((e = cudaGetDevice(&current.previous)) != cudaSuccess) return describe("cudaGetDevice", e);
  if ((e = cudaSetDevice(p.device)) != cudaSuccess) return describe("cudaSetDevice", e);

  const bool backward = p.d_o != nullptr;
  const std::size_t rows = static_cast<std::size_t>(p.seq) * static_cast<std::size_t>(p.heads);
  const std::size_t nqk = rows * static_cast<std::size_t>(p.dqk);
  const std::size_t nv = rows * static_cast<std::size_t>(p.dv);

  DeviceBuffer dq_in, dk_in, dv_in, ddo, d_out, dlse, dsum, ddq, ddk, ddv;
  const auto alloc = [&](DeviceBuffer& b, std::size_t bytes) { return cudaMalloc(&b.p, bytes); };
  if ((e = alloc(dq_in, nqk * 2)) != cudaSuccess) return describe("cudaMalloc(Q)", e);
  if ((e = alloc(dk_in, nqk * 2)) != cudaSuccess) return describe("cudaMalloc(K)", e);
  if ((e = alloc(dv_in, nv * 2)) != cudaSuccess) return describe("cudaMalloc(V)", e);
  if ((e = alloc(d_out, nv * sizeof(OutT))) != cudaSuccess) return describe("cudaMalloc(O)", e);
  if ((e = alloc(dlse, rows * sizeof(float))) != cudaSuccess) return describe("cudaMalloc(LSE)", e);
  if ((e = cudaMemcpy(dq_in.p, p.q, nqk * 2, cudaMemcpyHostToDevice)) != cudaSuccess) return describe("cudaMemcpy(Q)", e);
  if ((e = cudaMemcpy(dk_in.p, p.k, nqk * 2, cudaMemcpyHostToDevice)) != cudaSuccess) return describe("cudaMemcpy(K)", e);
  if ((e = cudaMemcpy(dv_in.p, p.v, nv * 2, cudaMemcpyHostToDevice)) != cudaSuccess) return describe("cudaMemcpy(V)", e);
  if (backward) {
    if ((e = alloc(ddo, nv * 2)) != cudaSuccess) return describe("cudaMalloc(dO)", e);
    if ((e = alloc(dsum, rows * sizeof(float))) != cudaSuccess) return describe("cudaMalloc(D)", e);
    if ((e = alloc(ddq, nqk * sizeof(float))) != cudaSuccess) return describe("cudaMalloc(dQ)", e);
    if ((e = alloc(ddk, nqk * sizeof(float))) != cudaSuccess) return describe("cudaMalloc(dK)", e);
    if ((e = alloc(ddv, nv * sizeof(float))) != cudaSuccess) return describe("cudaMalloc(dV)", e);
    if ((e = cudaMemcpy(ddo.p, p.d_o, nv * 2, cudaMemcpyHostToDevice)) != cudaSuccess) {
      return describe("cudaMemcpy(dO)", e);
    }
  }

  auto* fwd = &attention_forward_kernel<OutT>;
  auto* pre = &attention_backward_preprocess_kernel<OutT>;
  auto* bwd = &attention_backward_kernel;
  const std::size_t fwd_smem = forward_smem_bytes(p.dqk, p.dv);
  const std::size_t bwd_smem = backward_smem_bytes(p.dqk, p.dv);
  if ((e = cudaFuncSetAttribute(fwd, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(fwd_smem))) !=
      cudaSuccess) {
    return describe("cudaFuncSetAttribute(forward, max dynamic shared memory)", e);
  }
  if (backward &&
      (e = cudaFuncSetAttribute(bwd, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bwd_smem))) !=
          cudaSuccess) {
    return describe("cudaFuncSetAttribute(backward, max dynamic shared memory)", e);
  }
  const dim3 grid(static_cast<unsigned>((p.seq + kBlockQ - 1) / kBlockQ), static_cast<unsigned>(p.heads));
  const dim3 block(kThreads);
  const unsigned pre_blocks = static_cast<unsigned>((rows * 32 + kThreads - 1) / kThreads);
  const auto* qb = static_cast<const std::uint16_t*>(dq_in.p);
  const auto* kb = static_cast<const std::uint16_t*>(dk_in.p);
  const auto* vb = static_cast<const std::uint16_t*>(dv_in.p);

  const auto launch_forward = [&]() {
    fwd<<<grid, block, fwd_smem>>>(qb, kb, vb, static_cast<OutT*>(d_out.p), static_cast<float*>(dlse.p), p.seq,
                                   p.heads, p.dqk, p.dv, p.scale, p.causal);
    return cudaGetLastError();
  };
  const auto launch_backward = [&]() {
    cudaError_t err = cudaMemsetAsync(ddq.p, 0, nqk * sizeof(float));
    if (err != cudaSuccess) return err;
    pre<<<pre_blocks, block>>>(static_cast<const OutT*>(d_out.p), static_cast<const std::uint16_t*>(ddo.p),
                               static_cast<float*>(dsum.p), p.seq, p.heads, p.dv);
    if ((err = cudaGetLastError()) != cudaSuccess) return err;
    bwd<<<grid, block, bwd_smem>>>(qb, kb, vb, static_cast<const std::uint16_t*>(ddo.p),
                                   static_cast<const float*>(dlse.p), static_cast<const float*>(dsum.p),
                                   static_cast<float*>(ddq.p), static_cast<float*>(ddk.p), static_cast<float*>(ddv.p),
                                   p.seq, p.heads, p.dqk, p.dv, p.scale, p.causal);
    return cudaGetLastError();
  };

  // Warm-up: one full forward (+ backward).
  if ((e = launch_forward()) != cudaSuccess) return describe("warm-up forward launch", e);
  if (backward && (e = launch_backward()) != cudaSuccess) return describe("warm-up backward launch", e);
  if ((e = cudaDeviceSynchronize()) != cudaSuccess) return describe("warm-up run", e);

  Event ev0, ev1, ev2;
  if ((e = cudaEventCreate(&ev0.e)) != cudaSuccess) return describe("cudaEventCreate", e);
  if ((e = cudaEventCreate(&ev1.e)) != cudaSuccess) return describe("cudaEventCreate", e);
  if ((e = cudaEventCreate(&ev2.e)) != cudaSuccess) return describe("cudaEventCreate", e);
  std::vector<double> fwd_times, bwd_times;
  for (int r = 0; r < p.repeats; ++r) {
    if ((e = cudaEventRecord(ev0.e)) != cudaSuccess) return describe("cudaEventRecord", e);
    if ((e = launch_forward()) != cudaSuccess) return describe("forward launch", e);
    if ((e = cudaEventRecord(ev1.e)) != cudaSuccess) return describe("cudaEventRecord", e);
    if (backward && (e = launch_backward()) != cudaSuccess) return describe("backward launch", e);
    if ((e = cudaEventRecord(ev2.e)) != cudaSuccess) return describe("cudaEventRecord", e);
    if ((e = cudaEventSynchronize(ev2.e)) != cudaSuccess) return describe("kernel run", e);
    float ms = 0.0f;
    if ((e = cudaEventElapsedTime(&ms, ev0.e, ev1.e)) != cudaSuccess) return describe("cudaEventElapsedTime", e);
    fwd_times.push_back(static_cast<double>(ms) * 1e-3);
    if (backward) {
      if ((e = cudaEventElapsedTime(&ms, ev1.e, ev2.e)) != cudaSuccess) return describe("cudaEventElapsedTime", e);
      bwd_times.push_back(static_cast<double>(ms) * 1e-3);
    }
  }
  out.forward_seconds = median(fwd_times);
  out.backward_seconds = median(bwd_times);

  std::vector<OutT> o_host(nv);
  if ((e = cudaMemcpy(o_host.data(), d_out.p, nv * sizeof(OutT), cudaMemcpyDeviceToHost)) != cudaSuccess) {
    return describe("cudaMemcpy(O)", e);
  }
  if constexpr (std::is_same_v<OutT, float>) {
    out.o = std::move(o_host);
  } else {
    out.o.resize(nv);
    for (std::size_t i = 0; i < nv; ++i) {
      std::uint16_t bits = 0;
      std::memcpy(&bits, &o_host[i], sizeof bits);
      const std::uint32_t wide = static_cast<std::uint32_t>(bits) << 16;  // BF16 -> float is exact
      std::memcpy(&out.o[i], &wide, sizeof wide);
    }
  }
  if ((e = copy_to_host(out.lse, dlse, rows)) != cudaSuccess) return describe("cudaMemcpy(LSE)", e);
  if (backward) {
    if ((e = copy_to_host(out.dq, ddq, nqk)) != cudaSuccess) return describe("cudaMemcpy(dQ)", e);
    if ((e = copy_to_host(out.dk, ddk, nqk)) != cudaSuccess) return describe("cudaMemcpy(dK)", e);
    if ((e = copy_to_host(out.dv, ddv, nv)) != cudaSuccess) return describe("cudaMemcpy(dV)", e);
  }
  return {};
}

}  // namespace

std::string attention_cuda_run(const AttentionCudaLaunch& p, AttentionCudaOutputs& out) {
  out = AttentionCudaOutputs{};
  std::string err = p.bf16_output ? run<__nv_bfloat16>(p, out) : run<float>(p, out);
  if (!err.empty()) {
    (void)cudaGetLastError();  // clear non-sticky errors for later callers
    out = AttentionCudaOutputs{};
  }
  return err;
}

}  // namespace trainsim::kernels::detail
