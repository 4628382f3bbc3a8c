// Host side of cublas_gemm.hpp, built in every configuration: validation,
// device choice and messages. With CUDA it hands plain values to
// cuda/cublas_gemm.cu (cuBLASLt, kernels, runtime calls); without CUDA every
// function returns ran = false / ok = false with "built without CUDA".
// Nothing here has run on a GPU (see the header).
#include "trainsim/kernels/cublas_gemm.hpp"

#include <fmt/format.h>

#include "trainsim/kernels/cuda_device.hpp"

#if TRAINSIM_HAVE_CUDA
#include "cuda/cublas_gemm_launch.hpp"
#endif

namespace trainsim::kernels {
namespace {

constexpr const char* kNoCuda = "built without CUDA (TRAINSIM_CUDA=OFF or no nvcc found at configure time)";

#if TRAINSIM_HAVE_CUDA
// Empty when `device` is usable, else why not (with the query's message).
std::string check_device(int device, std::string* name) {
  const DeviceInfo info = query_cuda_devices();
  if (info.count == 0) return info.message;
  if (device < 0 || device >= info.count) {
    return fmt::format("device {} does not exist ({})", device, info.message);
  }
  if (name != nullptr) *name = info.devices[static_cast<std::size_t>(device)].name;
  return {};
}

GemmCudaResult run_gemm(const char* what, detail::CublasGemmLaunch p) {
  GemmCudaResult r;
  r.m = p.m;
  r.n = p.n;
  r.k = p.k;
  r.groups = p.groups;
  if (p.m <= 0 || p.n <= 0 || p.k <= 0 || p.groups < 1 || p.repeats < 1) {
    r.message = fmt::format("{}: need positive M, N, K, groups >= 1 and repeats >= 1 (got M={} N={} K={} groups={} "
                            "repeats={})",
                            what, p.m, p.n, p.k, p.groups, p.repeats);
    return r;
  }
  if (p.fp8 && (p.m % 16 != 0 || p.n % 16 != 0 || p.k % 16 != 0)) {
    r.message = fmt::format("{}: FP8 needs M, N, K multiples of 16 (got M={} N={} K={})", what, p.m, p.n, p.k);
    return r;
  }
  std::string name;
  if (const std::string why = check_device(p.device, &name); !why.empty()) {
    r.message = fmt::format("{}: {}", what, why);
    return r;
  }
  if (const std::string err = detail::cublaslt_gemm_run(p, r.c, r.seconds); !err.empty()) {
    r.message = fmt::format("{}: {}", what, err);
    return r;
  }
  r.ran = true;
  const double flops = 2.0 * p.m * static_cast<double>(p.n) * p.k * p.groups;
  r.tflops = r.seconds > 0 ? flops / r.seconds * 1e-12 : 0.0;
  r.message = fmt::format("{}: M={} N={} K={} groups={} on [{}] {}: median {:.1f} us over {} runs, {:.1f} TFLOPS", what,
                          p.m, p.n, p.k, p.groups, p.device, name, r.seconds * 1e6, p.repeats, r.tflops);
  return r;
}
#endif

}  // namespace

#if TRAINSIM_HAVE_CUDA
GemmCudaResult cublaslt_gemm_bf16(int m, int n, int k, int repeats, int groups, int device) {
  detail::CublasGemmLaunch p;
  p.m = m, p.n = n, p.k = k, p.groups = groups, p.repeats = repeats, p.device = device;
  return run_gemm("cublaslt_gemm_bf16", p);
}

GemmCudaResult cublaslt_gemm_fp8(int m, int n, int k, int repeats, int groups, int device) {
  detail::CublasGemmLaunch p;
  p.m = m, p.n = n, p.k = k, p.groups = groups, p.repeats = repeats, p.device = device;
  p.fp8 = true;
  return run_gemm("cublaslt_gemm_fp8", p);
}

GemmCudaResult cublaslt_gemm_bf16_values(int m, int n, int k, const std::vector<float>& a,
                                         const std::vector<float>& b_nk, int repeats, int device) {
  const auto sz = [](int r, int c) { return static_cast<std::size_t>(r) * static_cast<std::size_t>(c); };
  if (m > 0 && n > 0 && k > 0 && (a.size() != sz(m, k) || b_nk.size() != sz(n, k))) {
    GemmCudaResult r;
    r.m = m, r.n = n, r.k = k;
    r.message = fmt::format("cublaslt_gemm_bf16_values: A has {} values and B_nk {} for M={} N={} K={}", a.size(),
                            b_nk.size(), m, n, k);
    return r;
  }
  detail::CublasGemmLaunch p;
  p.m = m, p.n = n, p.k = k, p.repeats = repeats, p.device = device;
  p.a = a.data();
  p.b_nk = b_nk.data();
  p.want_output = true;
  return run_gemm("cublaslt_gemm_bf16_values", p);
}

MemoryCudaResult cuda_stream_triad(std::size_t n, int repeats, int device) {
  MemoryCudaResult r;
  r.bytes = 12.0 * static_cast<double>(n);
  if (n == 0 || repeats < 1) {
    r.message = fmt::format("cuda_stream_triad: need n >= 1 and repeats >= 1 (got {} and {})", n, repeats);
    return r;
  }
  std::string name;
  if (const std::string why = check_device(device, &name); !why.empty()) {
    r.message = "cuda_stream_triad: " + why;
    return r;
  }
  if (const std::string err = detail::stream_triad_run(n, repeats, device, r.seconds); !err.empty()) {
    r.message = "cuda_stream_triad: " + err;
    return r;
  }
  r.ran = true;
  r.bandwidth_Bps = r.seconds > 0 ? r.bytes / r.seconds : 0.0;
  r.message = fmt::format("cuda_stream_triad: {} floats on [{}] {}: median {:.1f} us, {:.0f} GB/s", n, device, name,
                          r.seconds * 1e6, r.bandwidth_Bps / 1e9);
  return r;
}

CudaDevicePeaks cuda_device_peaks(int device) {
  CudaDevicePeaks r;
  const DeviceInfo info = query_cuda_devices();
  if (info.count == 0) {
    r.message = info.message;
    return r;
  }
  if (device < 0 || device >= info.count) {
    r.message = fmt::format("device {} does not exist ({})", device, info.message);
    return r;
  }
  const CudaDevice& d = info.devices[static_cast<std::size_t>(device)];
  detail::CudaDeviceAttributes a;
  if (const std::string err = detail::cuda_device_attributes_run(device, a); !err.empty()) {
    r.message = err;
    return r;
  }
  r.ok = true;
  r.name = d.name;
  r.compute_major = d.compute_major;
  r.compute_minor = d.compute_minor;
  r.sms = a.multiprocessors > 0 ? a.multiprocessors : d.multiprocessors;
  r.sm_clock_mhz = a.sm_clock_khz / 1e3;
  r.memory_clock_mhz = a.memory_clock_khz / 1e3;
  r.memory_bus_width_bits = a.memory_bus_width_bits;
  r.hbm_peak_Bps = 2.0 * a.memory_clock_khz * 1e3 * a.memory_bus_width_bits / 8.0;
  r.memory_bytes = static_cast<double>(d.total_memory_bytes);
  r.l2_bytes = a.l2_bytes;
  return r;
}
#else
GemmCudaResult cublaslt_gemm_bf16(int m, int n, int k, int, int groups, int) {
  GemmCudaResult r;
  r.m = m, r.n = n, r.k = k, r.groups = groups;
  r.message = std::string("cublaslt_gemm_bf16: ") + kNoCuda;
  return r;
}

GemmCudaResult cublaslt_gemm_fp8(int m, int n, int k, int, int groups, int) {
  GemmCudaResult r;
  r.m = m, r.n = n, r.k = k, r.groups = groups;
  r.message = std::string("cublaslt_gemm_fp8: ") + kNoCuda;
  return r;
}

GemmCudaResult cublaslt_gemm_bf16_values(int m, int n, int k, const std::vector<float>&, const std::vector<float>&,
                                         int, int) {
  GemmCudaResult r;
  r.m = m, r.n = n, r.k = k;
  r.message = std::string("cublaslt_gemm_bf16_values: ") + kNoCuda;
  return r;
}

MemoryCudaResult cuda_stream_triad(std::size_t n, int, int) {
  MemoryCudaResult r;
  r.bytes = 12.0 * static_cast<double>(n);
  r.message = std::string("cuda_stream_triad: ") + kNoCuda;
  return r;
}

CudaDevicePeaks cuda_device_peaks(int) {
  CudaDevicePeaks r;
  r.message = kNoCuda;
  return r;
}
#endif

}  // namespace trainsim::kernels
