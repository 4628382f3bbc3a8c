#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <vector>

#include "trainsim/kernels/block_quant.hpp"

using namespace trainsim::kernels;

namespace {

std::vector<float> gaussian(std::size_t n, unsigned seed, float sigma = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = g(rng);
  return v;
}

// E4M3 keeps 3 mantissa bits: relative rounding error <= 2^-4 for normal
// values; below the smallest normal (2^-6 in code units) the absolute error is
// at most half the subnormal spacing, 2^-10 code units.
void check_close(const QuantizedMatrix& q, const std::vector<float>& x) {
  const auto deq = dequantize(q);
  for (int r = 0; r < q.rows; ++r) {
    for (int c = 0; c < q.cols; ++c) {
      const std::size_t i = static_cast<std::size_t>(r) * static_cast<std::size_t>(q.cols) + static_cast<std::size_t>(c);
      const double bound = std::max(std::ldexp(std::fabs(double(x[i])), -4), std::ldexp(double(q.scale(r, c)), -10)) * 1.0001;
      CHECK(std::fabs(double(deq[i]) - double(x[i])) <= bound);
      CHECK(deq[i] == q.value(r, c));
    }
  }
}

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("1x128 activation tiles: one scale per token per 128 channels, amax maps to 448") {
  const int rows = 3, cols = 300;  // 300 = 128 + 128 + 44: a partial last tile
  auto x = gaussian(static_cast<std::size_t>(rows * cols), 7);
  x[5] = -9.0f;  // amax of tile (0, 0), negative
  const auto q = quantize_activations(x, rows, cols);
  CHECK(q.tile_rows == 1);
  CHECK(q.tile_cols == 128);
  REQUIRE(q.tile_grid_cols() == 3);
  REQUIRE(q.scales.size() == 9);
  CHECK(q.scales[0] == 9.0f / 448.0f);
  CHECK(q.code(0, 5) == 0xFE);  // -448
  for (int r = 0; r < rows; ++r) {
    for (int t = 0; t < 3; ++t) {
      float amax = 0.0f;
      for (int c = t * 128; c < std::min(cols, (t + 1) * 128); ++c) amax = std::max(amax, std::fabs(x[static_cast<std::size_t>(r * cols + c)]));
      CHECK(q.scales[static_cast<std::size_t>(r * 3 + t)] == amax / 448.0f);
    }
  }
  check_close(q, x);
}

TEST_CASE("128x128 weight blocks share one scale, partial blocks at the edges") {
  const int rows = 130, cols = 260;
  auto x = gaussian(static_cast<std::size_t>(rows * cols), 11, 0.02f);
  const auto q = quantize_weights(x, rows, cols);
  REQUIRE(q.tile_grid_rows() == 2);
  REQUIRE(q.tile_grid_cols() == 3);
  CHECK(q.scale(0, 0) == q.scale(127, 127));
  CHECK(q.scale(128, 0) != q.scale(127, 0));
  CHECK(q.scale(129, 259) == q.scales[5]);
  check_close(q, x);
  // Each block's largest magnitude lands on +-448 exactly.
  int at_max = 0;
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) at_max += (q.code(r, c) & 0x7F) == 0x7E;
  CHECK(at_max >= 6);
}

TEST_CASE("block quantization: zero tiles, E5M2, 128x1 tiles, errors") {
  std::vector<float> z(256, 0.0f);
  z[200] = 3.0f;
  const auto q = quantize_activations(z, 1, 256);
  CHECK(q.scales[0] == 1.0f);
  for (int c = 0; c < 128; ++c) CHECK(q.code(0, c) == 0);
  CHECK(q.value(0, 200) == 3.0f);

  auto x = gaussian(256 * 4, 3);
  const auto q5 = quantize_blocked(x, 256, 4, 128, 1, Fp8Format::E5M2);  // backward 128x1 tiles
  CHECK(q5.scales.size() == 8);
  CHECK(q5.format == Fp8Format::E5M2);
  for (std::size_t i = 0; i < x.size(); ++i) {
    const int r = static_cast<int>(i / 4), c = static_cast<int>(i % 4);
    // E5M2 has 2 mantissa bits: relative error <= 2^-3 (plus subnormal floor).
    CHECK(std::fabs(q5.value(r, c) - x[i]) <= std::max(std::ldexp(std::fabs(x[i]), -3), std::ldexp(q5.scale(r, c), -17)) * 1.0001f);
  }

  x[3] = std::numeric_limits<float>::quiet_NaN();
  CHECK_THROWS_AS(quantize_activations(x, 4, 256), std::invalid_argument);
  CHECK_THROWS_AS(quantize_activations(z, 2, 256), std::invalid_argument);
  CHECK_THROWS_AS(quantize_blocked(z, 1, 256, 0, 128), std::invalid_argument);
}
}
