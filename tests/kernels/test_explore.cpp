#include <doctest/doctest.h>
#include <fmt/format.h>
#include <random>
#include "trainsim/kernels/fp8_gemm.hpp"
using namespace trainsim::kernels;
TEST_SUITE("explore") {
TEST_CASE("explore") {
  const int M = 64, N = 64, K = 4096;
  for (unsigned seed : {1u, 2u, 3u}) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> A(M * K), B(K * N);
  for (auto& v : A) v = g(rng);
  for (auto& v : B) v = g(rng);
  auto qa = quantize_activations(A, M, K);
  auto qb = quantize_weights(B, K, N);
  auto ref = gemm_reference(dequantize(qa), dequantize(qb), M, K, N);
  for (auto r : {AccumulatorRounding::toward_zero, AccumulatorRounding::nearest_even})
  for (int mk : {1, 4, 16, 32}) {
    for (auto mode : {Fp8Accumulation::tensor_core_only, Fp8Accumulation::promoted}) {
      Fp8GemmOptions o; o.accumulation = mode; o.mma_k = mk; o.accumulator_rounding = r;
      auto c = gemm_fp8(qa, qb, o);
      auto e = compare_to_reference(c, ref);
      fmt::print("seed {} round {} mma_k {:2} {}: norm {:.3e} elem {:.3e}\n", seed, int(r), mk, mode==Fp8Accumulation::promoted?"promo":"tc   ", e.max_relative_error, e.max_elementwise_relative_error);
    }
  }
  }
}
}
