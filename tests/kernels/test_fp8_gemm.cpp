#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cmath>
#include <initializer_list>
#include <random>
#include <stdexcept>
#include <vector>

#include "trainsim/kernels/fp8_gemm.hpp"

using namespace trainsim::kernels;

namespace {

std::vector<float> gaussian(std::size_t n, std::mt19937_64& rng) {
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = g(rng);
  return v;
}

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("round_to_mantissa_bits truncates or rounds to nearest even") {
  const auto tz = AccumulatorRounding::toward_zero;
  const auto ne = AccumulatorRounding::nearest_even;
  // x = 1 + 2^-13 + 2^-14 lies halfway between 1 + 2^-13 (13-bit mantissa
  // ...0001, odd) and 1 + 2^-12 (...0010, even).
  const double x = 1.0 + std::ldexp(1.0, -13) + std::ldexp(1.0, -14);
  CHECK(round_to_mantissa_bits(x, 13, tz) == 1.0 + std::ldexp(1.0, -13));
  CHECK(round_to_mantissa_bits(x, 13, ne) == 1.0 + std::ldexp(1.0, -12));
  CHECK(round_to_mantissa_bits(-x, 13, tz) == -(1.0 + std::ldexp(1.0, -13)));  // toward zero
  CHECK(round_to_mantissa_bits(-x, 13, ne) == -(1.0 + std::ldexp(1.0, -12)));
  CHECK(round_to_mantissa_bits(x, 14, tz) == x);  // representable
  CHECK(round_to_mantissa_bits(1000.75, 3, tz) == 960.0);    // 1111101000.11b -> 1.111b * 2^9
  CHECK(round_to_mantissa_bits(1000.75, 3, ne) == 1024.0);   // carries into the exponent
  CHECK(round_to_mantissa_bits(0.0, 13, tz) == 0.0);
  CHECK(std::isinf(round_to_mantissa_bits(INFINITY, 13, tz)));
}

TEST_CASE("gemm_reference on a hand example") {
  const std::vector<float> a{1, 2, 3, 4, 5, 6};  // 2x3
  const std::vector<float> b{1, 0, 0, 1, 1, 1};  // 3x2
  const auto c = gemm_reference(a, b, 2, 3, 2);
  CHECK(c == std::vector<double>{4, 5, 10, 11});
  CHECK_THROWS_AS(gemm_reference(a, b, 2, 2, 2), std::invalid_argument);
}

TEST_CASE("FP8 GEMM with a wide accumulator matches the reference on the dequantized inputs") {
  std::mt19937_64 rng(42);
  const int M = 5, K = 300, N = 7;  // partial tiles along K and N
  const auto A = gaussian(static_cast<std::size_t>(M * K), rng);
  const auto B = gaussian(static_cast<std::size_t>(K * N), rng);
  const auto qa = quantize_activations(A, M, K);
  const auto qb = quantize_weights(B, K, N);
  const auto ref = gemm_reference(dequantize(qa), dequantize(qb), M, K, N);
  for (auto mode : {Fp8Accumulation::promoted, Fp8Accumulation::tensor_core_only}) {
    Fp8GemmOptions o;
    o.accumulation = mode;
    o.accumulator_mantissa_bits = 52;
    const auto err = compare_to_reference(gemm_fp8(qa, qb, o), ref);
    CHECK(err.max_relative_error < 1e-6);  // only FP32 output/promotion rounding remains
  }
  Fp8GemmOptions bad;
  bad.promotion_interval = 96;  // straddles 128-wide scale tiles
  CHECK_THROWS_AS(gemm_fp8(qa, qb, bad), std::invalid_argument);
  CHECK_THROWS_AS(gemm_fp8(qa, qa), std::invalid_argument);
}
}

TEST_SUITE("validation") {
// DeepSeek-V3 technical report (arXiv 2412.19437) §3.3.2, "Increasing
// Accumulation Precision": on H800 the FP8 tensor-core accumulator keeps about
// 14 bits, and "for a random matrix multiplication with K = 4096 ... the
// maximum relative error [without promotion] is nearly 2%"; promoting partial
// sums to FP32 CUDA-core registers every N_C = 128 elements fixes it.
//
// We reproduce this qualitatively with the emulation of fp8_gemm.hpp (13
// stored mantissa bits, truncation after each 32-deep MMA). Errors are against
// a double GEMM of the *dequantized* FP8 inputs, so that only accumulation
// error is measured (FP8 input rounding alone is ~several % per product and is
// the same for both schemes). "Max relative error" is taken elementwise over
// entries with |ref| >= 10% of max |ref| (entries near zero have unbounded
// relative error); the normwise max|err| / max|ref| is printed too.
// Tolerances: truncation shrinks |acc| by ~2^-14.5 per MMA on average, 128
// MMAs over K = 4096 -> ~0.3-0.4% normwise, 1.5% worst element over seeds
// 1..3; [0.3%, 5%] brackets "nearly 2%" with margin for other seeds and the
// unknown exact definition in the report. With promotion only 4 truncations
// hit each 128-long partial sum and their biases do not add up across
// promotions (random signs), so >= 10x smaller is a conservative bound
// (measured ~25x).
TEST_CASE("FP8 K=4096 GEMM: ~1-2% error with a 14-bit accumulator, >=10x less with promotion every 128") {
  std::mt19937_64 rng(1);
  const int M = 64, N = 64, K = 4096;
  const auto A = gaussian(static_cast<std::size_t>(M) * K, rng);
  const auto B = gaussian(static_cast<std::size_t>(K) * N, rng);
  const auto qa = quantize_activations(A, M, K);
  const auto qb = quantize_weights(B, K, N);
  const auto ref = gemm_reference(dequantize(qa), dequantize(qb), M, K, N);

  Fp8GemmOptions limited;
  limited.accumulation = Fp8Accumulation::tensor_core_only;
  Fp8GemmOptions promoted;  // defaults: N_C = 128, same 13-bit tensor-core accumulator inside
  const auto e_lim = compare_to_reference(gemm_fp8(qa, qb, limited), ref);
  const auto e_pro = compare_to_reference(gemm_fp8(qa, qb, promoted), ref);
  MESSAGE(fmt::format("K=4096 max rel error (elementwise, |ref|>=0.1 max): no promotion {:.3f}%, promotion every 128 "
                      "{:.4f}% (ratio {:.1f}x); normwise: {:.3f}% vs {:.4f}%",
                      100 * e_lim.max_elementwise_relative_error, 100 * e_pro.max_elementwise_relative_error,
                      e_lim.max_elementwise_relative_error / e_pro.max_elementwise_relative_error,
                      100 * e_lim.max_relative_error, 100 * e_pro.max_relative_error));
  CHECK(e_lim.max_elementwise_relative_error >= 0.003);
  CHECK(e_lim.max_elementwise_relative_error <= 0.05);
  CHECK(e_pro.max_elementwise_relative_error * 10 <= e_lim.max_elementwise_relative_error);
  CHECK(e_pro.max_relative_error * 10 <= e_lim.max_relative_error);
}
}
