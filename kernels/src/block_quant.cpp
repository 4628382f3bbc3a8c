#include "trainsim/kernels/block_quant.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace trainsim::kernels {

float QuantizedMatrix::value(int r, int c) const {
  return from_fp8(format, code(r, c)) * scale(r, c);
}

QuantizedMatrix quantize_blocked(std::span<const float> x, int rows, int cols, int tile_rows, int tile_cols,
                                 Fp8Format format) {
  if (rows < 0 || cols < 0 || tile_rows < 1 || tile_cols < 1) {
    throw std::invalid_argument(fmt::format("quantize_blocked: bad shape {}x{} with tiles {}x{}", rows, cols,
                                            tile_rows, tile_cols));
  }
  const std::size_t n = static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols);
  if (x.size() != n) {
    throw std::invalid_argument(
        fmt::format("quantize_blocked: {} values given for a {}x{} matrix", x.size(), rows, cols));
  }
  QuantizedMatrix q;
  q.rows = rows;
  q.cols = cols;
  q.tile_rows = tile_rows;
  q.tile_cols = tile_cols;
  q.format = format;
  q.codes.assign(n, 0);
  q.scales.assign(static_cast<std::size_t>(q.tile_grid_rows()) * static_cast<std::size_t>(q.tile_grid_cols()), 1.0f);
  const float fmax = fp8_max(format);
  const auto at = [&](int r, int c) {
    return static_cast<std::size_t>(r) * static_cast<std::size_t>(cols) + static_cast<std::size_t>(c);
  };
  for (int tr = 0; tr < q.tile_grid_rows(); ++tr) {
    const int r0 = tr * tile_rows;
    const int r1 = std::min(rows, r0 + tile_rows);
    for (int tc = 0; tc < q.tile_grid_cols(); ++tc) {
      const int c0 = tc * tile_cols;
      const int c1 = std::min(cols, c0 + tile_cols);
      float amax = 0.0f;
      for (int r = r0; r < r1; ++r) {
        for (int c = c0; c < c1; ++c) {
          const float v = x[at(r, c)];
          if (!std::isfinite(v)) {
            throw std::invalid_argument(fmt::format("quantize_blocked: non-finite value {} at ({}, {})", v, r, c));
          }
          amax = std::max(amax, std::fabs(v));
        }
      }
      // Same arithmetic as DeepSeek's act_quant / weight_quant kernels:
      // s = amax / 448 in FP32, y = x / s, cast with saturation.
      const float s = amax > 0.0f ? amax / fmax : 1.0f;
      q.scales[static_cast<std::size_t>(tr) * static_cast<std::size_t>(q.tile_grid_cols()) +
               static_cast<std::size_t>(tc)] = s;
      for (int r = r0; r < r1; ++r) {
        for (int c = c0; c < c1; ++c) q.codes[at(r, c)] = to_fp8(format, x[at(r, c)] / s);
      }
    }
  }
  return q;
}

QuantizedMatrix quantize_activations(std::span<const float> x, int rows, int cols, Fp8Format format) {
  return quantize_blocked(x, rows, cols, 1, kActivationTileCols, format);
}

QuantizedMatrix quantize_weights(std::span<const float> x, int rows, int cols, Fp8Format format) {
  return quantize_blocked(x, rows, cols, kWeightBlock, kWeightBlock, format);
}

std::vector<float> dequantize(const QuantizedMatrix& q) {
  std::vector<float> out(static_cast<std::size_t>(q.rows) * static_cast<std::size_t>(q.cols));
  for (int r = 0; r < q.rows; ++r) {
    for (int c = 0; c < q.cols; ++c) {
      out[static_cast<std::size_t>(r) * static_cast<std::size_t>(q.cols) + static_cast<std::size_t>(c)] =
          q.value(r, c);
    }
  }
  return out;
}

}  // namespace trainsim::kernels
