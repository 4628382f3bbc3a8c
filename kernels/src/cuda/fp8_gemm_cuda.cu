// FP8 (E4M3) GEMM with DeepSeek-V3 fine-grained scaling on Hopper wgmma.
// Design, supported shapes and what is unverified: see
// include/trainsim/kernels/fp8_gemm_cuda.hpp. Compiled for sm_90a only (wgmma
// is an sm_90a feature), as C++17 (no project headers beyond the plain-typed
// launch interface); links cudart only. Input validation and device choice
// are in ../fp8_gemm_cuda_host.cpp.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include "cuda_host_util.cuh"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "fp8_gemm_cuda_launch.hpp"

#if defined(__CUDA_ARCH__) && !defined(__CUDA_ARCH_FEAT_SM90_ALL)
#error "fp8_gemm_cuda.cu needs the sm_90a target (-gencode=arch=compute_90a,code=sm_90a): wgmma is sm_90a-only"
#endif

namespace trainsim::kernels::detail {
namespace {

using cuda_util::CurrentDevice;
using cuda_util::DeviceBuffer;
using cuda_util::describe;
using cuda_util::Event;


// Keep in step with kFp8GemmCudaTile{M,N,K} in fp8_gemm_cuda.hpp.
constexpr int kBlockM = 128;  // C rows per CTA (two warpgroups x 64)
constexpr int kBlockN = 128;  // C columns per CTA (= wgmma N) = one B scale block
constexpr int kBlockK = 128;  // K per stage = N_C; 128 FP8 = 128 bytes = one swizzle row
constexpr int kWgmmaK = 32;                 // K depth of one FP8 wgmma
constexpr int kThreads = 256;               // two warpgroups
constexpr int kStages = 3;                  // cp.async ring depth
constexpr int kTileBytesA = kBlockM * kBlockK;
constexpr int kTileBytesB = kBlockN * kBlockK;
constexpr int kStageBytes = kTileBytesA + kTileBytesB;
constexpr int kSmemAlign = 1024;  // 128B-swizzle atoms (8 rows x 128 B) must be 1024-byte aligned
constexpr int kSmemBytes = kStages * kStageBytes + kSmemAlign;
constexpr int kAcc = 64 * kBlockN / 128;  // f32 accumulator registers per thread for m64n128

static_assert(kBlockK == 128, "one 128-byte swizzle row per tile row");
static_assert(kTileBytesA % (16 * kThreads) == 0 && kTileBytesB % (16 * kThreads) == 0);

__device__ __forceinline__ std::uint32_t smem_u32(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}

__device__ __forceinline__ void cp_async_16(std::uint32_t dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(dst), "l"(src) : "memory");
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}
// Makes this thread's generic-proxy shared-memory writes (cp.async included)
// visible to the async proxy, through which wgmma reads its operands.
__device__ __forceinline__ void fence_proxy_async_shared() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}
// Pins the accumulator registers at this point of the instruction stream so
// the compiler cannot move their reads/writes across the asynchronous wgmma
// (which it otherwise sees only at issue time).
__device__ __forceinline__ void fence_operands(float (&d)[kAcc]) {
#pragma unroll
  for (int i = 0; i < kAcc; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// Shared-memory matrix descriptor (PTX ISA, "Matrix Descriptor Format"):
// bits 0-13 start address >> 4, 16-29 leading-dimension byte offset >> 4,
// 32-45 stride-dimension byte offset >> 4, 49-51 base offset, 62-63 swizzle
// (1 = 128B). K-major operand with 128B swizzle whose K extent per instruction
// (32 B) lies inside one swizzle row: LBO is not used (set to 1, i.e. 16 B);
// SBO = 1024 B between consecutive 8-row core-matrix groups; base offset 0
// because every tile starts on a 1024-byte boundary.
__device__ __forceinline__ std::uint64_t make_smem_desc(std::uint32_t saddr) {
  std::uint64_t d = 0;
  d |= static_cast<std::uint64_t>((saddr & 0x3FFFFu) >> 4);
  d |= static_cast<std::uint64_t>(16 >> 4) << 16;
  d |= static_cast<std::uint64_t>(1024 >> 4) << 32;
  d |= static_cast<std::uint64_t>(1) << 62;
  return d;
}

// D[64 x 128] (+)= A[64 x 32] * B[128 x 32]^T, E4M3 inputs, FP32 accumulators.
// accumulate == 0 gives D = A * B (scale-d false): the partial restarts.
__device__ __forceinline__ void wgmma_m64n128k32_e4m3(float (&d)[kAcc], std::uint64_t desc_a, std::uint64_t desc_b,
                                                      int accumulate) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k32.f32.e4m3.e4m3 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63},\n"
      "%64, %65, p, 1, 1;\n"
      "}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(desc_a), "l"(desc_b), "r"(accumulate)
      : "memory");
}

// Copies rows [row0, row0 + rows) x K bytes [k0, k0 + 128) of a row-major
// byte matrix with `ld` bytes per row into a 128B-swizzled K-major tile:
// 16-byte chunk c of tile row r goes to byte r * 128 + ((c ^ (r % 8)) * 16).
template <int Rows>
__device__ __forceinline__ void load_tile(std::uint32_t dst, const std::uint8_t* __restrict__ src, int ld) {
  constexpr int kChunks = Rows * (kBlockK / 16);
#pragma unroll
  for (int i = 0; i < kChunks / kThreads; ++i) {
    const int id = static_cast<int>(threadIdx.x) + i * kThreads;
    const int r = id >> 3;
    const int c = id & 7;
    cp_async_16(dst + static_cast<std::uint32_t>(r * kBlockK + ((c ^ (r & 7)) << 4)),
                src + static_cast<std::size_t>(r) * static_cast<std::size_t>(ld) + static_cast<std::size_t>(c * 16));
  }
}

// a: M x K codes, row-major. b: N x K codes, row-major. a_scales_t: [K/128][M].
// b_scales: [N/128][K/128]. c: M x N row-major. Grid (N/128, M/128), 256 threads.
template <typename OutT>
__global__ void __launch_bounds__(kThreads, 1)
    fp8_gemm_wgmma_kernel(const std::uint8_t* __restrict__ a, const std::uint8_t* __restrict__ b,
                          const float* __restrict__ a_scales_t, const float* __restrict__ b_scales,
                          OutT* __restrict__ c, int M, int N, int K) {
  extern __shared__ std::uint8_t smem_raw[];
  const std::uint32_t smem_base = (smem_u32(smem_raw) + (kSmemAlign - 1)) & ~static_cast<std::uint32_t>(kSmemAlign - 1);

  const int tid = static_cast<int>(threadIdx.x);
  const int warpgroup = tid / 128;
  const int warp = (tid % 128) / 32;
  const int lane = tid % 32;
  const int n_block = static_cast<int>(blockIdx.x);
  const int m0 = static_cast<int>(blockIdx.y) * kBlockM;
  const int n0 = n_block * kBlockN;
  const int num_k_blocks = K / kBlockK;

  const std::uint8_t* a_tile = a + static_cast<std::size_t>(m0) * static_cast<std::size_t>(K);
  const std::uint8_t* b_tile = b + static_cast<std::size_t>(n0) * static_cast<std::size_t>(K);
  const auto stage_a = [&](int s) { return smem_base + static_cast<std::uint32_t>(s * kStageBytes); };
  const auto stage_b = [&](int s) { return smem_base + static_cast<std::uint32_t>(s * kStageBytes + kTileBytesA); };
  const auto issue_loads = [&](int stage, int kb) {
    load_tile<kBlockM>(stage_a(stage), a_tile + static_cast<std::size_t>(kb) * kBlockK, K);
    load_tile<kBlockN>(stage_b(stage), b_tile + static_cast<std::size_t>(kb) * kBlockK, K);
  };

  // Rows of C this thread holds (accumulator fragment layout of m64nNk32).
  const int row_lo = m0 + warpgroup * 64 + warp * 16 + lane / 4;
  const int row_hi = row_lo + 8;

  float partial[kAcc];   // tensor-core accumulators, restarted every 128 of K
  float promoted[kAcc];  // FP32 CUDA-core accumulators
#pragma unroll
  for (int i = 0; i < kAcc; ++i) {
    partial[i] = 0.0f;
    promoted[i] = 0.0f;
  }

#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < num_k_blocks) issue_loads(s, s);
    cp_async_commit();  // always commit so the group count stays in step
  }

  for (int kb = 0; kb < num_k_blocks; ++kb) {
    cp_async_wait<kStages - 2>();  // this thread's copies of block kb have landed
    fence_proxy_async_shared();
    __syncthreads();  // everyone's copies landed; everyone finished block kb - 1

    const int next = kb + kStages - 1;  // refill the stage block kb - 1 used
    if (next < num_k_blocks) issue_loads(next % kStages, next);
    cp_async_commit();

    const int stage = kb % kStages;
    const std::uint32_t a_base = stage_a(stage) + static_cast<std::uint32_t>(warpgroup * 64 * kBlockK);
    const std::uint32_t b_base = stage_b(stage);
    fence_operands(partial);
    wgmma_fence();
#pragma unroll
    for (int k = 0; k < kBlockK / kWgmmaK; ++k) {
      wgmma_m64n128k32_e4m3(partial, make_smem_desc(a_base + static_cast<std::uint32_t>(k * kWgmmaK)),
                            make_smem_desc(b_base + static_cast<std::uint32_t>(k * kWgmmaK)), k > 0 ? 1 : 0);
    }
    wgmma_commit();
    // Scale loads overlap the MMAs.
    const float sb = __ldg(b_scales + static_cast<std::size_t>(n_block) * static_cast<std::size_t>(num_k_blocks) + kb);
    const float* sa_col = a_scales_t + static_cast<std::size_t>(kb) * static_cast<std::size_t>(M);
    const float s_lo = __ldg(sa_col + row_lo) * sb;
    const float s_hi = __ldg(sa_col + row_hi) * sb;
    wgmma_wait<0>();
    fence_operands(partial);

    // Promotion to FP32 (DeepSeek-V3 §3.3.2): acc += (s_a * s_b) * partial.
#pragma unroll
    for (int i = 0; i < kAcc; ++i) {
      const float s = ((i >> 1) & 1) ? s_hi : s_lo;
      promoted[i] = fmaf(s, partial[i], promoted[i]);
    }
  }

  // Epilogue: register i holds (row_lo + 8 * ((i / 2) % 2), 8 * (i / 4) + 2 * (lane % 4) + i % 2).
  const int col0 = n0 + 2 * (lane % 4);
  OutT* c_lo = c + static_cast<std::size_t>(row_lo) * static_cast<std::size_t>(N);
  OutT* c_hi = c + static_cast<std::size_t>(row_hi) * static_cast<std::size_t>(N);
#pragma unroll
  for (int j = 0; j < kAcc / 4; ++j) {
    const int col = col0 + 8 * j;
    if constexpr (std::is_same_v<OutT, float>) {
      *reinterpret_cast<float2*>(c_lo + col) = make_float2(promoted[4 * j], promoted[4 * j + 1]);
      *reinterpret_cast<float2*>(c_hi + col) = make_float2(promoted[4 * j + 2], promoted[4 * j + 3]);
    } else {
      *reinterpret_cast<__nv_bfloat162*>(c_lo + col) = __floats2bfloat162_rn(promoted[4 * j], promoted[4 * j + 1]);
      *reinterpret_cast<__nv_bfloat162*>(c_hi + col) =
          __floats2bfloat162_rn(promoted[4 * j + 2], promoted[4 * j + 3]);
    }
  }
}

// ---- host side -------------------------------------------------------------





template <typename OutT>
std::string run(const Fp8GemmCudaLaunch& p, std::vector<float>& c_out, double& seconds) {
  CurrentDevice current;
  cudaError_t e = cudaSuccess;
  if ((e = cudaGetDevice(&current.previous)) != cudaSuccess) return describe("cudaGetDevice", e);
  if ((e = cudaSetDevice(p.device)) != cudaSuccess) return describe("cudaSetDevice", e);
  const int M = p.m, N = p.n, K = p.k;
  const int nkb = K / kBlockK;
  const std::size_t a_bytes = static_cast<std::size_t>(M) * static_cast<std::size_t>(K);
  const std::size_t b_bytes = static_cast<std::size_t>(N) * static_cast<std::size_t>(K);
  const std::size_t sa_count = static_cast<std::size_t>(M) * static_cast<std::size_t>(nkb);
  const std::size_t sb_count = static_cast<std::size_t>(N / kBlockN) * static_cast<std::size_t>(nkb);
  const std::size_t c_count = static_cast<std::size_t>(M) * static_cast<std::size_t>(N);
  // A's scales transposed to [K/128][M] for coalesced per-row loads.
  std::vector<float> a_scales_t(sa_count);
  for (int r = 0; r < M; ++r) {
    for (int kb = 0; kb < nkb; ++kb) {
      a_scales_t[static_cast<std::size_t>(kb) * static_cast<std::size_t>(M) + static_cast<std::size_t>(r)] =
          p.a_scales[static_cast<std::size_t>(r) * static_cast<std::size_t>(nkb) + static_cast<std::size_t>(kb)];
    }
  }
  DeviceBuffer da, db, dsa, dsb, dc;
  if ((e = cudaMalloc(&da.p, a_bytes)) != cudaSuccess) return describe("cudaMalloc(A)", e);
  if ((e = cudaMalloc(&db.p, b_bytes)) != cudaSuccess) return describe("cudaMalloc(B)", e);
  if ((e = cudaMalloc(&dsa.p, sa_count * sizeof(float))) != cudaSuccess) return describe("cudaMalloc(A scales)", e);
  if ((e = cudaMalloc(&dsb.p, sb_count * sizeof(float))) != cudaSuccess) return describe("cudaMalloc(B scales)", e);
  if ((e = cudaMalloc(&dc.p, c_count * sizeof(OutT))) != cudaSuccess) return describe("cudaMalloc(C)", e);
  if ((e = cudaMemcpy(da.p, p.a_codes, a_bytes, cudaMemcpyHostToDevice)) != cudaSuccess) {
    return describe("cudaMemcpy(A)", e);
  }
  if ((e = cudaMemcpy(db.p, p.b_codes, b_bytes, cudaMemcpyHostToDevice)) != cudaSuccess) {
    return describe("cudaMemcpy(B)", e);
  }
  if ((e = cudaMemcpy(dsa.p, a_scales_t.data(), sa_count * sizeof(float), cudaMemcpyHostToDevice)) != cudaSuccess) {
    return describe("cudaMemcpy(A scales)", e);
  }
  if ((e = cudaMemcpy(dsb.p, p.b_scales, sb_count * sizeof(float), cudaMemcpyHostToDevice)) != cudaSuccess) {
    return describe("cudaMemcpy(B scales)", e);
  }

  auto* kernel = &fp8_gemm_wgmma_kernel<OutT>;
  if ((e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes)) != cudaSuccess) {
    return describe("cudaFuncSetAttribute(max dynamic shared memory)", e);
  }
  const dim3 grid(static_cast<unsigned>(N / kBlockN), static_cast<unsigned>(M / kBlockM));
  const dim3 block(kThreads);
  const auto launch = [&]() {
    kernel<<<grid, block, kSmemBytes>>>(static_cast<const std::uint8_t*>(da.p), static_cast<const std::uint8_t*>(db.p),
                                        static_cast<const float*>(dsa.p), static_cast<const float*>(dsb.p),
                                        static_cast<OutT*>(dc.p), M, N, K);
    return cudaGetLastError();
  };

  Event start, stop;
  if ((e = cudaEventCreate(&start.e)) != cudaSuccess) return describe("cudaEventCreate", e);
  if ((e = cudaEventCreate(&stop.e)) != cudaSuccess) return describe("cudaEventCreate", e);
  if ((e = launch()) != cudaSuccess) return describe("warm-up launch", e);
  if ((e = cudaDeviceSynchronize()) != cudaSuccess) return describe("warm-up run", e);
  std::vector<double> times;
  for (int i = 0; i < p.repeats; ++i) {
    if ((e = cudaEventRecord(start.e)) != cudaSuccess) return describe("cudaEventRecord", e);
    if ((e = launch()) != cudaSuccess) return describe("launch", e);
    if ((e = cudaEventRecord(stop.e)) != cudaSuccess) return describe("cudaEventRecord", e);
    if ((e = cudaEventSynchronize(stop.e)) != cudaSuccess) return describe("kernel run", e);
    float ms = 0.0f;
    if ((e = cudaEventElapsedTime(&ms, start.e, stop.e)) != cudaSuccess) return describe("cudaEventElapsedTime", e);
    times.push_back(static_cast<double>(ms) * 1e-3);
  }
  std::sort(times.begin(), times.end());
  const std::size_t n = times.size();
  seconds = n % 2 == 1 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);

  std::vector<OutT> host(c_count);
  if ((e = cudaMemcpy(host.data(), dc.p, c_count * sizeof(OutT), cudaMemcpyDeviceToHost)) != cudaSuccess) {
    return describe("cudaMemcpy(C)", e);
  }
  if constexpr (std::is_same_v<OutT, float>) {
    c_out = std::move(host);
  } else {
    c_out.resize(c_count);
    for (std::size_t i = 0; i < c_count; ++i) {
      std::uint16_t bits = 0;
      std::memcpy(&bits, &host[i], sizeof bits);
      const std::uint32_t wide = static_cast<std::uint32_t>(bits) << 16;  // BF16 -> float is exact
      std::memcpy(&c_out[i], &wide, sizeof wide);
    }
  }
  return {};
}

}  // namespace

std::string fp8_gemm_cuda_run(const Fp8GemmCudaLaunch& p, std::vector<float>& c, double& seconds) {
  c.clear();
  seconds = 0.0;
  std::string err = p.bf16_output ? run<__nv_bfloat16>(p, c, seconds) : run<float>(p, c, seconds);
  if (!err.empty()) {
    (void)cudaGetLastError();  // clear non-sticky errors for later callers
    c.clear();
    seconds = 0.0;
  }
  return err;
}

}  // namespace trainsim::kernels::detail
