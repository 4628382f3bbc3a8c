#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <tuple>
#include <vector>

#include "trainsim/kernels/cpu_gemm.hpp"

using namespace trainsim::kernels;

TEST_SUITE("unit") {
TEST_CASE("gemm_tiled equals a naive triple loop, including partial tiles") {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (auto [m, n, k] : {std::tuple{64, 64, 64}, std::tuple{70, 130, 33}, std::tuple{1, 5, 200}}) {
    std::vector<float> a(static_cast<std::size_t>(m * k)), b(static_cast<std::size_t>(k * n)),
        c(static_cast<std::size_t>(m * n));
    for (auto& x : a) x = u(rng);
    for (auto& x : b) x = u(rng);
    gemm_tiled(m, n, k, a.data(), b.data(), c.data());
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j) {
        double ref = 0;
        for (int kk = 0; kk < k; ++kk) ref += double(a[i * k + kk]) * double(b[kk * n + j]);
        // FP32 accumulation of k products of magnitude <= 1: error <= k * 2^-24 * k roughly;
        // 1e-4 absolute is ample for k <= 200.
        CHECK(std::abs(c[i * n + j] - ref) < 1e-4);
      }
  }
}

TEST_CASE("stream_triad computes a = b + s c") {
  std::vector<float> a(10), b(10, 1.0f), c(10, 2.0f);
  stream_triad(a.data(), b.data(), c.data(), 0.5f, a.size());
  for (float x : a) CHECK(x == doctest::Approx(2.0));
}
}
