#include <doctest/doctest.h>

#include "../support/skip.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "trainsim/kernels/cuda_device.hpp"
#include "trainsim/kernels/fp8_gemm.hpp"
#include "trainsim/kernels/fp8_gemm_cuda.hpp"

using namespace trainsim::kernels;

namespace {

std::vector<float> gaussian_values(std::size_t n, std::mt19937_64& rng) {
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = g(rng);
  return v;
}

// N x K weight with 128 x 128 blocks -> the same values as a K x N matrix
// (what gemm_fp8 takes as B). Square blocks: the block grid transposes too.
QuantizedMatrix transpose_blocks(const QuantizedMatrix& q) {
  QuantizedMatrix t;
  t.rows = q.cols;
  t.cols = q.rows;
  t.tile_rows = q.tile_cols;
  t.tile_cols = q.tile_rows;
  t.format = q.format;
  t.codes.resize(q.codes.size());
  for (int r = 0; r < q.rows; ++r) {
    for (int c = 0; c < q.cols; ++c) {
      t.codes[static_cast<std::size_t>(c) * static_cast<std::size_t>(q.rows) + static_cast<std::size_t>(r)] =
          q.code(r, c);
    }
  }
  t.scales.resize(q.scales.size());
  for (int br = 0; br < q.tile_grid_rows(); ++br) {
    for (int bc = 0; bc < q.tile_grid_cols(); ++bc) {
      t.scales[static_cast<std::size_t>(bc) * static_cast<std::size_t>(q.tile_grid_rows()) +
               static_cast<std::size_t>(br)] =
          q.scales[static_cast<std::size_t>(br) * static_cast<std::size_t>(q.tile_grid_cols()) +
                   static_cast<std::size_t>(bc)];
    }
  }
  return t;
}

// ||c - ref||_F / ||ref||_F
double frobenius_relative_error(const std::vector<float>& c, const std::vector<float>& ref) {
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < c.size(); ++i) {
    const double d = static_cast<double>(c[i]) - static_cast<double>(ref[i]);
    num += d * d;
    den += static_cast<double>(ref[i]) * static_cast<double>(ref[i]);
  }
  return den > 0.0 ? std::sqrt(num / den) : std::sqrt(num);
}

struct Problem {
  QuantizedMatrix a;     // M x K, 1 x 128 tiles
  QuantizedMatrix b_nk;  // N x K, 128 x 128 blocks
};

Problem random_problem(int m, int n, int k, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const auto x = gaussian_values(static_cast<std::size_t>(m) * static_cast<std::size_t>(k), rng);
  const auto w = gaussian_values(static_cast<std::size_t>(n) * static_cast<std::size_t>(k), rng);
  return {quantize_activations(x, m, k), quantize_weights(w, n, k)};
}

#if TRAINSIM_HAVE_CUDA
std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}
#endif

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("fp8_gemm_cuda_check accepts 128-multiples with V3 tiles and explains the rest") {
  const Problem p = random_problem(128, 256, 384, 1);
  CHECK(fp8_gemm_cuda_check(p.a, p.b_nk).empty());

  const Problem odd = random_problem(100, 128, 128, 2);  // M not a multiple of 128
  CHECK(fp8_gemm_cuda_check(odd.a, odd.b_nk).find("multiple of 128") != std::string::npos);

  const Problem kmis = random_problem(128, 128, 256, 3);
  QuantizedMatrix short_b = random_problem(128, 128, 128, 4).b_nk;
  CHECK(fp8_gemm_cuda_check(kmis.a, short_b).find("K mismatch") != std::string::npos);

  // Swapped roles: A with 128 x 128 blocks, B with 1 x 128 tiles.
  CHECK(fp8_gemm_cuda_check(p.b_nk, p.a).find("1x128") != std::string::npos);

  std::vector<float> v(128 * 128, 1.0f);
  const QuantizedMatrix e5 = quantize_activations(v, 128, 128, Fp8Format::E5M2);
  const QuantizedMatrix w = quantize_weights(v, 128, 128);
  CHECK(fp8_gemm_cuda_check(e5, w).find("E4M3") != std::string::npos);

  QuantizedMatrix truncated = p.a;
  truncated.codes.pop_back();
  CHECK(fp8_gemm_cuda_check(truncated, p.b_nk).find("code vectors") != std::string::npos);

  // Invalid input never runs (and never throws), with or without a GPU.
  const Fp8GemmCudaResult r = fp8_gemm_cuda(odd.a, odd.b_nk, 1);
  CHECK(!r.ran);
  CHECK(!r.message.empty());
  if (built_with_cuda()) CHECK(r.message.find("multiple of 128") != std::string::npos);
  CHECK(!fp8_gemm_cuda(p.a, p.b_nk, 0).ran);
}

TEST_CASE("the gpu test's N x K -> K x N block transpose keeps every value and scale") {
  const Problem p = random_problem(128, 256, 384, 6);
  const QuantizedMatrix t = transpose_blocks(p.b_nk);
  REQUIRE(t.rows == 384);
  REQUIRE(t.cols == 256);
  int mismatches = 0;
  for (int n = 0; n < p.b_nk.rows; ++n) {
    for (int k = 0; k < p.b_nk.cols; ++k) {
      if (t.code(k, n) != p.b_nk.code(n, k) || t.scale(k, n) != p.b_nk.scale(n, k)) ++mismatches;
    }
  }
  CHECK(mismatches == 0);
}

TEST_CASE("fp8_gemm_cuda reports why it did not run when there is no usable GPU") {
  const DeviceInfo info = query_cuda_devices();
  if (info.count > 0) {
    MESSAGE("a CUDA device is present (" << info.message << "); the gpu suite exercises fp8_gemm_cuda");
    return;
  }
  const Problem p = random_problem(128, 128, 128, 5);
  const Fp8GemmCudaResult r = fp8_gemm_cuda(p.a, p.b_nk, 3);
  CHECK(!r.ran);
  CHECK(r.c.empty());
  CHECK(r.seconds == 0.0);
  if (built_with_cuda()) {
    CHECK(r.message.find("no CUDA device") != std::string::npos);
  } else {
    CHECK(r.message.find("built without CUDA") != std::string::npos);
  }
}

TEST_CASE("fp8_gemm_cuda PTX uses e4m3 wgmma and ptxas reports no register spills") {
#if TRAINSIM_HAVE_CUDA
  const std::string ptx = read_file(TRAINSIM_FP8_GEMM_CUDA_PTX);
  REQUIRE_MESSAGE(!ptx.empty(), "missing PTX file " << TRAINSIM_FP8_GEMM_CUDA_PTX);
  CHECK(ptx.find(".target sm_90a") != std::string::npos);
  int wgmma_lines = 0;
  int fp8_wgmma_lines = 0;
  std::istringstream lines(ptx);
  for (std::string line; std::getline(lines, line);) {
    if (line.find("wgmma.mma_async") == std::string::npos) continue;
    ++wgmma_lines;
    if (line.find("m64n128k32.f32.e4m3.e4m3") != std::string::npos) ++fp8_wgmma_lines;
  }
  // Two instantiations (FP32 and BF16 output) x 4 wgmmas per 128 of K.
  CHECK(wgmma_lines == 8);
  CHECK(fp8_wgmma_lines == wgmma_lines);
  CHECK(ptx.find("wgmma.fence.sync.aligned") != std::string::npos);
  CHECK(ptx.find("wgmma.commit_group.sync.aligned") != std::string::npos);
  CHECK(ptx.find("wgmma.wait_group.sync.aligned 0") != std::string::npos);
  CHECK(ptx.find("fence.proxy.async.shared::cta") != std::string::npos);

  const std::string report = read_file(TRAINSIM_FP8_GEMM_CUDA_PTXAS_REPORT);
  REQUIRE_MESSAGE(!report.empty(), "missing ptxas report " << TRAINSIM_FP8_GEMM_CUDA_PTXAS_REPORT);
  // "Function properties for <kernel>\n    N bytes stack frame, S bytes spill stores, L bytes spill loads"
  const std::regex props(R"(Function properties for (\S*fp8_gemm_wgmma_kernel\S*)\s*\n\s*(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads)");
  int kernels = 0;
  for (auto it = std::sregex_iterator(report.begin(), report.end(), props); it != std::sregex_iterator(); ++it) {
    ++kernels;
    const std::smatch& m = *it;
    INFO("kernel " << m[1].str());
    CHECK(m[3].str() == "0");  // spill stores
    CHECK(m[4].str() == "0");  // spill loads
  }
  CHECK(kernels == 2);
  const std::regex regs(R"(Used (\d+) registers)");
  for (auto it = std::sregex_iterator(report.begin(), report.end(), regs); it != std::sregex_iterator(); ++it) {
    CHECK(std::stoi((*it)[1].str()) <= 255);
  }
  // ptxas warns when it has to serialize wgmma (e.g. accumulators touched
  // while MMAs are in flight); the pipeline is meant to avoid that.
  CHECK(report.find("serialized") == std::string::npos);
  MESSAGE("ptxas -v for fp8_gemm_cuda.cu:\n" << report);
#else
  MESSAGE("CUDA not built (TRAINSIM_CUDA=OFF or no nvcc): no PTX / ptxas report to check");
#endif
}
}

TEST_SUITE("gpu") {
TEST_CASE("fp8_gemm_cuda matches the CPU promoted-accumulation reference") {
  const DeviceInfo info = query_cuda_devices();
  if (info.count == 0) {
    TRAINSIM_SKIP("fp8_gemm_cuda run: " << info.message);
  }
  struct Shape {
    int m, n, k;
  };
  for (const Shape s : {Shape{128, 128, 128}, Shape{256, 256, 512}, Shape{384, 256, 1024}, Shape{512, 1024, 2048}}) {
    CAPTURE(s.m);
    CAPTURE(s.n);
    CAPTURE(s.k);
    const Problem p = random_problem(s.m, s.n, s.k, 1000 + static_cast<std::uint64_t>(s.k));
    const Fp8GemmCudaResult r = fp8_gemm_cuda(p.a, p.b_nk, 5);
    if (!r.ran && r.message.find("needs a compute capability 9.0") != std::string::npos) {
      TRAINSIM_SKIP(r.message);
    }
    REQUIRE_MESSAGE(r.ran, r.message);
    REQUIRE(r.c.size() == static_cast<std::size_t>(s.m) * static_cast<std::size_t>(s.n));
    MESSAGE(r.message);

    const QuantizedMatrix b_kn = transpose_blocks(p.b_nk);
    // Reference 1: the same promoted scheme with exact partial sums (52-bit
    // "accumulator"): partial rounded to float once, then acc += (sa*sb)*partial
    // in float, exactly the GPU's promotion step.
    Fp8GemmOptions exact;
    exact.accumulation = Fp8Accumulation::promoted;
    exact.accumulator_mantissa_bits = 52;
    exact.accumulator_rounding = AccumulatorRounding::nearest_even;
    const std::vector<float> ref_exact = gemm_fp8(p.a, b_kn, exact);
    // Reference 2: the default emulation of Hopper's ~14-bit FP8 accumulator.
    const std::vector<float> ref_emulated = gemm_fp8(p.a, b_kn);
    const double err_exact = frobenius_relative_error(r.c, ref_exact);
    const double err_emulated = frobenius_relative_error(r.c, ref_emulated);
    MESSAGE("relative Frobenius error vs exact-partial reference " << err_exact
                                                                     << ", vs 13-bit-accumulator emulation "
                                                                     << err_emulated);
    // Tolerance. Both sides use identical FP8 codes and FP32 scales, so with an
    // FP32 tensor-core accumulator only summation order would differ (~1e-6).
    // But Hopper's FP8 wgmma keeps its running sum with only ~14 significant
    // bits (DeepSeek-V3 §3.3.2; fp8_gemm.hpp), and that is what the partial
    // sums here come from: each of the 4 accumulator updates per 128-block can
    // lose up to 2^-13 ~ 1.2e-4 of the partial's magnitude, i.e. <= ~5e-4
    // relative per block in the worst (truncation) case and ~1e-4 typically;
    // the promoted FP32 sums of independent blocks do not make it worse
    // relatively. 2e-3 leaves a 4x margin over that worst case while any
    // layout, swizzle, descriptor or scale bug gives errors of order 1.
    CHECK(err_exact < 2e-3);
  }

  // BF16 output: the same sums rounded to BF16 (8 significant bits, relative
  // rounding error <= 2^-9 ~ 2e-3 per element) on top of the above.
  const Problem p = random_problem(256, 256, 512, 77);
  const Fp8GemmCudaResult r = fp8_gemm_cuda(p.a, p.b_nk, 3, Fp8GemmCudaOutput::bf16);
  REQUIRE_MESSAGE(r.ran, r.message);
  MESSAGE(r.message);
  Fp8GemmOptions exact;
  exact.accumulator_mantissa_bits = 52;
  exact.accumulator_rounding = AccumulatorRounding::nearest_even;
  const std::vector<float> ref = gemm_fp8(p.a, transpose_blocks(p.b_nk), exact);
  int not_bf16 = 0;
  for (const float v : r.c) {
    std::uint32_t bits = 0;
    std::memcpy(&bits, &v, sizeof bits);
    if ((bits & 0xFFFFu) != 0) ++not_bf16;
  }
  CHECK(not_bf16 == 0);
  const double err = frobenius_relative_error(r.c, ref);
  MESSAGE("BF16 output: relative Frobenius error vs exact-partial reference " << err);
  CHECK(err < 2e-3 + 0x1p-9);
}
}
