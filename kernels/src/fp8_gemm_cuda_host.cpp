// Host-side part of fp8_gemm_cuda.hpp, built in every configuration: input
// validation, device choice and the result message. With CUDA it hands plain
// arrays to cuda/fp8_gemm_cuda.cu (kernel + runtime calls); without CUDA,
// fp8_gemm_cuda() only says so.
#include <fmt/format.h>

#include <cstddef>

#include "trainsim/kernels/cuda_device.hpp"
#include "trainsim/kernels/fp8_gemm_cuda.hpp"

#if TRAINSIM_HAVE_CUDA
#include "cuda/fp8_gemm_cuda_launch.hpp"
#endif

namespace trainsim::kernels {

std::string fp8_gemm_cuda_check(const QuantizedMatrix& a, const QuantizedMatrix& b_nk) {
  if (a.format != Fp8Format::E4M3 || b_nk.format != Fp8Format::E4M3) {
    return fmt::format("operands must be E4M3 (A is {}, B is {})", to_string(a.format), to_string(b_nk.format));
  }
  if (a.tile_rows != 1 || a.tile_cols != kActivationTileCols) {
    return fmt::format("A must have 1x{} scale tiles (got {}x{})", kActivationTileCols, a.tile_rows, a.tile_cols);
  }
  if (b_nk.tile_rows != kWeightBlock || b_nk.tile_cols != kWeightBlock) {
    return fmt::format("B must have {}x{} scale blocks (got {}x{})", kWeightBlock, kWeightBlock, b_nk.tile_rows,
                       b_nk.tile_cols);
  }
  if (a.cols != b_nk.cols) {
    return fmt::format("K mismatch: A is {}x{}, B (N x K) is {}x{}", a.rows, a.cols, b_nk.rows, b_nk.cols);
  }
  const int m = a.rows, n = b_nk.rows, k = a.cols;
  if (m <= 0 || n <= 0 || k <= 0 || m % kFp8GemmCudaTileM != 0 || n % kFp8GemmCudaTileN != 0 ||
      k % kFp8GemmCudaTileK != 0) {
    return fmt::format("shape M={} N={} K={} unsupported: each must be a positive multiple of {}", m, n, k,
                       kFp8GemmCudaTileM);
  }
  const auto sz = [](int r, int c) { return static_cast<std::size_t>(r) * static_cast<std::size_t>(c); };
  if (a.codes.size() != sz(m, k) || b_nk.codes.size() != sz(n, k)) {
    return fmt::format("code vectors have {} and {} entries for {}x{} and {}x{}", a.codes.size(), b_nk.codes.size(),
                       m, k, n, k);
  }
  if (a.scales.size() != sz(a.tile_grid_rows(), a.tile_grid_cols()) ||
      b_nk.scales.size() != sz(b_nk.tile_grid_rows(), b_nk.tile_grid_cols())) {
    return fmt::format("scale vectors have {} and {} entries, expected {} and {}", a.scales.size(),
                       b_nk.scales.size(), sz(a.tile_grid_rows(), a.tile_grid_cols()),
                       sz(b_nk.tile_grid_rows(), b_nk.tile_grid_cols()));
  }
  return {};
}

#if TRAINSIM_HAVE_CUDA
Fp8GemmCudaResult fp8_gemm_cuda(const QuantizedMatrix& a, const QuantizedMatrix& b_nk, int repeats,
                                Fp8GemmCudaOutput output) {
  Fp8GemmCudaResult r;
  if (const std::string why = fp8_gemm_cuda_check(a, b_nk); !why.empty()) {
    r.message = "fp8_gemm_cuda: " + why;
    return r;
  }
  if (repeats < 1) {
    r.message = fmt::format("fp8_gemm_cuda: repeats must be >= 1 (got {})", repeats);
    return r;
  }
  const DeviceInfo info = query_cuda_devices();
  if (info.count == 0) {
    r.message = "fp8_gemm_cuda: " + info.message;
    return r;
  }
  // Runs on device 0. The kernel is sm_90a code: only compute capability 9.0
  // can run it.
  const CudaDevice& dev = info.devices.front();
  if (dev.compute_major != 9 || dev.compute_minor != 0) {
    r.message = fmt::format("fp8_gemm_cuda: needs a compute capability 9.0 (Hopper, sm_90a) device; device {} is {} "
                            "(sm_{}{})",
                            dev.index, dev.name, dev.compute_major, dev.compute_minor);
    return r;
  }
  detail::Fp8GemmCudaLaunch p;
  p.a_codes = a.codes.data();
  p.a_scales = a.scales.data();
  p.b_codes = b_nk.codes.data();
  p.b_scales = b_nk.scales.data();
  p.m = a.rows;
  p.n = b_nk.rows;
  p.k = a.cols;
  p.repeats = repeats;
  p.device = dev.index;
  p.bf16_output = output == Fp8GemmCudaOutput::bf16;
  if (const std::string err = detail::fp8_gemm_cuda_run(p, r.c, r.seconds); !err.empty()) {
    r.message = "fp8_gemm_cuda: " + err;
    return r;
  }
  r.ran = true;
  const double flops = 2.0 * static_cast<double>(p.m) * static_cast<double>(p.n) * static_cast<double>(p.k);
  r.message = fmt::format("fp8_gemm_cuda: M={} N={} K={} {} out on [{}] {}: median {:.1f} us over {} runs, {:.1f} TFLOPS",
                          p.m, p.n, p.k, p.bf16_output ? "bf16" : "f32", dev.index, dev.name, r.seconds * 1e6,
                          repeats, r.seconds > 0.0 ? flops / r.seconds * 1e-12 : 0.0);
  return r;
}
#else
Fp8GemmCudaResult fp8_gemm_cuda(const QuantizedMatrix&, const QuantizedMatrix&, int, Fp8GemmCudaOutput) {
  Fp8GemmCudaResult r;
  r.ran = false;
  r.message = "fp8_gemm_cuda: built without CUDA (TRAINSIM_CUDA=OFF or no nvcc found at configure time)";
  return r;
}
#endif

}  // namespace trainsim::kernels
