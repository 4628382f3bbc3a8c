// cuBLASLt baselines (kernels/cublas_gemm.hpp). The unit suite runs anywhere:
// argument checks and the "no device / built without CUDA" answers. The gpu
// suite (skipped with TRAINSIM_SKIP when no device is usable) checks BF16 results
// against a double-precision CPU reference on BF16-rounded inputs and that
// the FP8 and BF16 timings and the stream triad run. UNVERIFIED: the gpu
// suite has never run (no GPU on the development machine).
#include <doctest/doctest.h>

#include "../support/skip.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "trainsim/kernels/cublas_gemm.hpp"
#include "trainsim/kernels/cuda_device.hpp"

using namespace trainsim::kernels;

namespace {

float round_bf16(float x) {  // round to nearest even, as __float2bfloat16 does (finite x)
  std::uint32_t u = 0;
  std::memcpy(&u, &x, sizeof u);
  u += 0x7FFFu + ((u >> 16) & 1u);
  u &= 0xFFFF0000u;
  float r = 0;
  std::memcpy(&r, &u, sizeof r);
  return r;
}

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("cuBLASLt baselines refuse to run without a device, and say why") {
  const DeviceInfo info = query_cuda_devices();
  if (info.count > 0) {
    MESSAGE("a CUDA device is present (" << info.message << "); the gpu suite runs the baselines");
    return;
  }
  const GemmCudaResult b = cublaslt_gemm_bf16(256, 256, 256, 3);
  CHECK_FALSE(b.ran);
  CHECK_FALSE(b.message.empty());
  CHECK(b.message.find("cublaslt_gemm_bf16") != std::string::npos);
  const GemmCudaResult f = cublaslt_gemm_fp8(256, 256, 256, 3, 4);
  CHECK_FALSE(f.ran);
  CHECK(f.groups == 4);
  const MemoryCudaResult t = cuda_stream_triad(1 << 20, 3);
  CHECK_FALSE(t.ran);
  CHECK(t.bytes == doctest::Approx(12.0 * (1 << 20)));
  const CudaDevicePeaks p = cuda_device_peaks(0);
  CHECK_FALSE(p.ok);
  CHECK_FALSE(p.message.empty());
  if (!built_with_cuda()) CHECK(b.message.find("built without CUDA") != std::string::npos);
  MESSAGE(b.message);
}

TEST_CASE("cuBLASLt baselines reject bad arguments before touching a device") {
  if (!built_with_cuda()) return;  // the stubs answer "built without CUDA" for everything
  CHECK(cublaslt_gemm_bf16(0, 16, 16, 1).message.find("positive") != std::string::npos);
  CHECK(cublaslt_gemm_bf16(16, 16, 16, 0).message.find("repeats") != std::string::npos);
  CHECK(cublaslt_gemm_fp8(24, 32, 32, 1).message.find("multiples of 16") != std::string::npos);
  const std::vector<float> a(10), b(10);
  CHECK(cublaslt_gemm_bf16_values(16, 16, 16, a, b).message.find("values") != std::string::npos);
}
}

TEST_SUITE("gpu") {
TEST_CASE("cuBLASLt BF16 GEMM matches a CPU reference on BF16-rounded inputs") {
  const DeviceInfo info = query_cuda_devices();
  if (info.count == 0) {
    TRAINSIM_SKIP("cuBLASLt BF16 check: " << info.message);
  }
  const int m = 64, n = 128, k = 256;
  std::mt19937 rng(7);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> a(static_cast<std::size_t>(m) * k), b(static_cast<std::size_t>(n) * k);
  for (auto& v : a) v = g(rng);
  for (auto& v : b) v = g(rng);
  const GemmCudaResult r = cublaslt_gemm_bf16_values(m, n, k, a, b, 3);
  REQUIRE_MESSAGE(r.ran, r.message);
  MESSAGE(r.message);
  REQUIRE(r.c.size() == static_cast<std::size_t>(m) * n);
  double num = 0, den = 0, worst = 0;
  for (int i = 0; i < m; ++i) {
    for (int j = 0; j < n; ++j) {
      double ref = 0, mag = 0;
      for (int q = 0; q < k; ++q) {
        const double p = double(round_bf16(a[std::size_t(i) * k + q])) * double(round_bf16(b[std::size_t(j) * k + q]));
        ref += p;
        mag += std::abs(p);
      }
      const double d = double(r.c[std::size_t(i) * n + j]) - ref;
      num += d * d;
      den += ref * ref;
      // BF16 output rounding (2^-9 relative) plus FP32 accumulation order.
      worst = std::max(worst, std::abs(d) / (std::abs(ref) * 0x1p-8 + mag * 1e-5 + 1e-6));
    }
  }
  const double rel = std::sqrt(num / den);
  MESSAGE("relative Frobenius error " << rel << ", worst element / bound " << worst);
  CHECK(rel < 5e-3);
  CHECK(worst <= 1.0);
}

TEST_CASE("cuBLASLt FP8 and BF16 timings and the stream triad run") {
  const DeviceInfo info = query_cuda_devices();
  if (info.count == 0) {
    TRAINSIM_SKIP("cuBLASLt timings: " << info.message);
  }
  const GemmCudaResult b = cublaslt_gemm_bf16(1024, 1024, 1024, 5);
  REQUIRE_MESSAGE(b.ran, b.message);
  CHECK(b.seconds > 0);
  CHECK(b.tflops > 0);
  MESSAGE(b.message);
  const GemmCudaResult f = cublaslt_gemm_fp8(1024, 1024, 1024, 5);
  REQUIRE_MESSAGE(f.ran, f.message);
  MESSAGE(f.message);
  const GemmCudaResult grouped = cublaslt_gemm_fp8(256, 4096, 7168, 3, 8);
  REQUIRE_MESSAGE(grouped.ran, grouped.message);
  MESSAGE(grouped.message);
  const MemoryCudaResult t = cuda_stream_triad(std::size_t(1) << 26, 5);
  REQUIRE_MESSAGE(t.ran, t.message);
  CHECK(t.bandwidth_Bps > 1e10);
  MESSAGE(t.message);
  const CudaDevicePeaks p = cuda_device_peaks(0);
  REQUIRE_MESSAGE(p.ok, p.message);
  CHECK(p.sms > 0);
  CHECK(p.hbm_peak_Bps > 0);
  MESSAGE(p.name << ": " << p.sms << " SMs, " << p.sm_clock_mhz << " MHz, HBM peak " << p.hbm_peak_Bps / 1e12
                 << " TB/s; triad reached " << t.bandwidth_Bps / p.hbm_peak_Bps * 100 << "%");
}
}
