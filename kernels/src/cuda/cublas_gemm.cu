// cuBLASLt GEMM baselines (BF16 and FP8 e4m3 with per-tensor scale
// pointers), a stream-triad memory kernel and a device attribute query; the
// host side is kernels/src/cublas_gemm.cpp, the API kernels/include/trainsim/
// kernels/cublas_gemm.hpp.
//
// Layout. The project's GEMMs are row-major C[M, N] = A[M, K] * B_nk[N, K]^T.
// cuBLASLt is column-major, so this computes C^T (N x M, ld N) =
// op_T(B_nk viewed as K x N, ld K) * (A viewed as K x M, ld K): transa = T,
// transb = N, the "TN" form FP8 matmuls require on Hopper. Groups are a
// strided batch (CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT / STRIDED_BATCH_OFFSET):
// equal-sized groups back to back, the contiguous expert layout with the same
// token count per expert.
//
// Numerics: FP32 compute (CUBLAS_COMPUTE_32F), BF16 C and D, alpha 1, beta 0.
// FP8: A_SCALE_POINTER / B_SCALE_POINTER are device floats (per-tensor
// scales; the 1x128 / 128x128 block scaling modes of newer cuBLASLt are not
// used), fast accumulation is left off (the default).
//
// UNVERIFIED: compiled only; never run (no GPU on the development machine).
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include "cublas_util.cuh"
#include "cuda_host_util.cuh"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "cublas_gemm_launch.hpp"

namespace trainsim::kernels::detail {
namespace {

using cuda_util::CurrentDevice;
using cuda_util::DeviceBuffer;
using cuda_util::describe;
using cuda_util::Event;



struct LtHandle {
  cublasLtHandle_t h = nullptr;
  ~LtHandle() {
    if (h != nullptr) (void)cublasLtDestroy(h);
  }
};
struct LtDesc {
  cublasLtMatmulDesc_t d = nullptr;
  ~LtDesc() {
    if (d != nullptr) (void)cublasLtMatmulDescDestroy(d);
  }
};
struct LtLayout {
  cublasLtMatrixLayout_t l = nullptr;
  ~LtLayout() {
    if (l != nullptr) (void)cublasLtMatrixLayoutDestroy(l);
  }
};
struct LtPref {
  cublasLtMatmulPreference_t p = nullptr;
  ~LtPref() {
    if (p != nullptr) (void)cublasLtMatmulPreferenceDestroy(p);
  }
};

__device__ __forceinline__ float hash_uniform(std::uint64_t i, std::uint32_t seed) {
  std::uint64_t z = i * 0x9E3779B97F4A7C15ull + seed;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) * (2.0f / 16777216.0f) - 1.0f;  // [-1, 1)
}

__global__ void fill_bf16(__nv_bfloat16* out, std::size_t n, const float* src, std::uint32_t seed) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    out[i] = __float2bfloat16(src != nullptr ? src[i] : hash_uniform(i, seed));
  }
}

__global__ void fill_e4m3(__nv_fp8_e4m3* out, std::size_t n, const float* src, float inv_scale, std::uint32_t seed) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const float v = src != nullptr ? src[i] * inv_scale : 448.0f * hash_uniform(i, seed);
    out[i] = __nv_fp8_e4m3(v);  // saturating round-to-nearest conversion
  }
}

__global__ void triad(float* a, const float* b, const float* c, float s, std::size_t n) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    a[i] = b[i] + s * c[i];
  }
}

__global__ void fill_f32(float* out, std::size_t n, std::uint32_t seed) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    out[i] = hash_uniform(i, seed);
  }
}

unsigned grid_for(std::size_t n) {
  const std::size_t blocks = (n + 255) / 256;
  return static_cast<unsigned>(std::min<std::size_t>(blocks, 65535u * 8u));
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string gemm(const CublasGemmLaunch& p, std::vector<float>& c_out, double& seconds) {
  CurrentDevice current;
  TS_CUDA(cudaGetDevice(&current.previous), "cudaGetDevice");
  TS_CUDA(cudaSetDevice(p.device), "cudaSetDevice");
  const std::size_t G = static_cast<std::size_t>(p.groups);
  const std::size_t a_count = G * static_cast<std::size_t>(p.m) * static_cast<std::size_t>(p.k);
  const std::size_t b_count = G * static_cast<std::size_t>(p.n) * static_cast<std::size_t>(p.k);
  const std::size_t c_count = G * static_cast<std::size_t>(p.m) * static_cast<std::size_t>(p.n);
  const std::size_t elem = p.fp8 ? 1 : 2;

  DeviceBuffer da, db, dc, dsrc, dscale, dws;
  TS_CUDA(cudaMalloc(&da.p, a_count * elem), "cudaMalloc(A)");
  TS_CUDA(cudaMalloc(&db.p, b_count * elem), "cudaMalloc(B)");
  TS_CUDA(cudaMalloc(&dc.p, c_count * sizeof(__nv_bfloat16)), "cudaMalloc(C)");
  // Inputs: host values (staged as FP32) or device-generated random values.
  const auto fill = [&](void* dst, std::size_t n, const float* host, float scale, std::uint32_t seed) -> std::string {
    const float* src = nullptr;
    DeviceBuffer staging;
    if (host != nullptr) {
      TS_CUDA(cudaMalloc(&staging.p, n * sizeof(float)), "cudaMalloc(staging)");
      TS_CUDA(cudaMemcpy(staging.p, host, n * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy(input)");
      src = static_cast<const float*>(staging.p);
    }
    if (p.fp8) {
      fill_e4m3<<<grid_for(n), 256>>>(static_cast<__nv_fp8_e4m3*>(dst), n, src, 1.0f / scale, seed);
    } else {
      fill_bf16<<<grid_for(n), 256>>>(static_cast<__nv_bfloat16*>(dst), n, src, seed);
    }
    TS_CUDA(cudaGetLastError(), "fill kernel launch");
    TS_CUDA(cudaDeviceSynchronize(), "fill kernel");
    return {};
  };
  if (std::string e = fill(da.p, a_count, p.a, p.a_scale, 1u); !e.empty()) return e;
  if (std::string e = fill(db.p, b_count, p.b_nk, p.b_scale, 2u); !e.empty()) return e;

  LtHandle lt;
  TS_BLAS(cublasLtCreate(&lt.h), "cublasLtCreate");
  LtDesc op;
  TS_BLAS(cublasLtMatmulDescCreate(&op.d, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  TS_BLAS(cublasLtMatmulDescSetAttribute(op.d, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta), "set TRANSA");
  TS_BLAS(cublasLtMatmulDescSetAttribute(op.d, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb), "set TRANSB");
  if (p.fp8) {
    // cuBLASLt's "A" is our B_nk and its "B" is our A (see the header comment).
    const float scales[2] = {p.b_scale, p.a_scale};
    TS_CUDA(cudaMalloc(&dscale.p, sizeof scales), "cudaMalloc(scales)");
    TS_CUDA(cudaMemcpy(dscale.p, scales, sizeof scales, cudaMemcpyHostToDevice), "cudaMemcpy(scales)");
    const float* sa = static_cast<const float*>(dscale.p);
    const float* sb = sa + 1;
    TS_BLAS(cublasLtMatmulDescSetAttribute(op.d, CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &sa, sizeof sa),
            "set A_SCALE_POINTER");
    TS_BLAS(cublasLtMatmulDescSetAttribute(op.d, CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &sb, sizeof sb),
            "set B_SCALE_POINTER");
  }
  const cudaDataType_t in_type = p.fp8 ? CUDA_R_8F_E4M3 : CUDA_R_16BF;
  LtLayout la, lb, lc;
  TS_BLAS(cublasLtMatrixLayoutCreate(&la.l, in_type, p.k, p.n, p.k), "layout(B_nk)");
  TS_BLAS(cublasLtMatrixLayoutCreate(&lb.l, in_type, p.k, p.m, p.k), "layout(A)");
  TS_BLAS(cublasLtMatrixLayoutCreate(&lc.l, CUDA_R_16BF, p.n, p.m, p.n), "layout(C)");
  if (p.groups > 1) {
    const std::int32_t batch = p.groups;
    const std::int64_t sa = static_cast<std::int64_t>(p.n) * p.k, sb = static_cast<std::int64_t>(p.m) * p.k,
                       sc = static_cast<std::int64_t>(p.m) * p.n;
    TS_BLAS(cublasLtMatrixLayoutSetAttribute(la.l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof batch), "batch");
    TS_BLAS(cublasLtMatrixLayoutSetAttribute(lb.l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof batch), "batch");
    TS_BLAS(cublasLtMatrixLayoutSetAttribute(lc.l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &batch, sizeof batch), "batch");
    TS_BLAS(cublasLtMatrixLayoutSetAttribute(la.l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sa, sizeof sa), "stride");
    TS_BLAS(cublasLtMatrixLayoutSetAttribute(lb.l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sb, sizeof sb), "stride");
    TS_BLAS(cublasLtMatrixLayoutSetAttribute(lc.l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &sc, sizeof sc), "stride");
  }
  const std::size_t workspace = 32u << 20;
  TS_CUDA(cudaMalloc(&dws.p, workspace), "cudaMalloc(workspace)");
  LtPref pref;
  TS_BLAS(cublasLtMatmulPreferenceCreate(&pref.p), "cublasLtMatmulPreferenceCreate");
  TS_BLAS(cublasLtMatmulPreferenceSetAttribute(pref.p, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace,
                                               sizeof workspace),
          "set MAX_WORKSPACE_BYTES");
  cublasLtMatmulHeuristicResult_t heur{};
  int found = 0;
  TS_BLAS(cublasLtMatmulAlgoGetHeuristic(lt.h, op.d, la.l, lb.l, lc.l, lc.l, pref.p, 1, &heur, &found),
          "cublasLtMatmulAlgoGetHeuristic");
  if (found == 0) return "cublasLtMatmulAlgoGetHeuristic found no algorithm for this shape and type";

  const float alpha = 1.0f, beta = 0.0f;
  const auto launch = [&]() {
    return cublasLtMatmul(lt.h, op.d, &alpha, db.p, la.l, da.p, lb.l, &beta, dc.p, lc.l, dc.p, lc.l, &heur.algo,
                          dws.p, workspace, nullptr);
  };
  Event start, stop;
  TS_CUDA(cudaEventCreate(&start.e), "cudaEventCreate");
  TS_CUDA(cudaEventCreate(&stop.e), "cudaEventCreate");
  TS_BLAS(launch(), "cublasLtMatmul (warm-up)");
  TS_CUDA(cudaDeviceSynchronize(), "warm-up run");
  std::vector<double> times;
  for (int i = 0; i < p.repeats; ++i) {
    TS_CUDA(cudaEventRecord(start.e), "cudaEventRecord");
    TS_BLAS(launch(), "cublasLtMatmul");
    TS_CUDA(cudaEventRecord(stop.e), "cudaEventRecord");
    TS_CUDA(cudaEventSynchronize(stop.e), "matmul run");
    float ms = 0.0f;
    TS_CUDA(cudaEventElapsedTime(&ms, start.e, stop.e), "cudaEventElapsedTime");
    times.push_back(static_cast<double>(ms) * 1e-3);
  }
  seconds = median(times);
  if (p.want_output) {
    std::vector<std::uint16_t> host(c_count);
    TS_CUDA(cudaMemcpy(host.data(), dc.p, c_count * sizeof(std::uint16_t), cudaMemcpyDeviceToHost), "cudaMemcpy(C)");
    c_out.resize(c_count);
    for (std::size_t i = 0; i < c_count; ++i) {
      const std::uint32_t wide = static_cast<std::uint32_t>(host[i]) << 16;  // BF16 -> float is exact
      std::memcpy(&c_out[i], &wide, sizeof wide);
    }
  }
  return {};
}

std::string triad_run(std::size_t n, int repeats, int device, double& seconds) {
  CurrentDevice current;
  TS_CUDA(cudaGetDevice(&current.previous), "cudaGetDevice");
  TS_CUDA(cudaSetDevice(device), "cudaSetDevice");
  DeviceBuffer a, b, c;
  TS_CUDA(cudaMalloc(&a.p, n * sizeof(float)), "cudaMalloc(a)");
  TS_CUDA(cudaMalloc(&b.p, n * sizeof(float)), "cudaMalloc(b)");
  TS_CUDA(cudaMalloc(&c.p, n * sizeof(float)), "cudaMalloc(c)");
  fill_f32<<<grid_for(n), 256>>>(static_cast<float*>(b.p), n, 3u);
  fill_f32<<<grid_for(n), 256>>>(static_cast<float*>(c.p), n, 4u);
  TS_CUDA(cudaGetLastError(), "fill launch");
  const auto launch = [&]() {
    triad<<<grid_for(n), 256>>>(static_cast<float*>(a.p), static_cast<const float*>(b.p),
                                static_cast<const float*>(c.p), 0.5f, n);
    return cudaGetLastError();
  };
  Event start, stop;
  TS_CUDA(cudaEventCreate(&start.e), "cudaEventCreate");
  TS_CUDA(cudaEventCreate(&stop.e), "cudaEventCreate");
  TS_CUDA(launch(), "triad launch (warm-up)");
  TS_CUDA(cudaDeviceSynchronize(), "triad warm-up");
  std::vector<double> times;
  for (int i = 0; i < repeats; ++i) {
    TS_CUDA(cudaEventRecord(start.e), "cudaEventRecord");
    TS_CUDA(launch(), "triad launch");
    TS_CUDA(cudaEventRecord(stop.e), "cudaEventRecord");
    TS_CUDA(cudaEventSynchronize(stop.e), "triad run");
    float ms = 0.0f;
    TS_CUDA(cudaEventElapsedTime(&ms, start.e, stop.e), "cudaEventElapsedTime");
    times.push_back(static_cast<double>(ms) * 1e-3);
  }
  seconds = median(times);
  return {};
}

}  // namespace

std::string cublaslt_gemm_run(const CublasGemmLaunch& p, std::vector<float>& c, double& seconds) {
  c.clear();
  seconds = 0.0;
  std::string err = gemm(p, c, seconds);
  if (!err.empty()) {
    (void)cudaGetLastError();
    c.clear();
    seconds = 0.0;
  }
  return err;
}

std::string stream_triad_run(std::size_t n, int repeats, int device, double& seconds) {
  seconds = 0.0;
  std::string err = triad_run(n, repeats, device, seconds);
  if (!err.empty()) (void)cudaGetLastError();
  return err;
}

std::string cuda_device_attributes_run(int device, CudaDeviceAttributes& out) {
  TS_CUDA(cudaDeviceGetAttribute(&out.sm_clock_khz, cudaDevAttrClockRate, device), "cudaDeviceGetAttribute(clock)");
  TS_CUDA(cudaDeviceGetAttribute(&out.memory_clock_khz, cudaDevAttrMemoryClockRate, device),
          "cudaDeviceGetAttribute(memory clock)");
  TS_CUDA(cudaDeviceGetAttribute(&out.memory_bus_width_bits, cudaDevAttrGlobalMemoryBusWidth, device),
          "cudaDeviceGetAttribute(bus width)");
  TS_CUDA(cudaDeviceGetAttribute(&out.multiprocessors, cudaDevAttrMultiProcessorCount, device),
          "cudaDeviceGetAttribute(multiprocessors)");
  TS_CUDA(cudaDeviceGetAttribute(&out.l2_bytes, cudaDevAttrL2CacheSize, device), "cudaDeviceGetAttribute(L2)");
  return {};
}

}  // namespace trainsim::kernels::detail
