#pragma once
// Fine-grained (tile/block-wise) FP8 quantization as in DeepSeek-V3 (§3.3.1).
//
// What it captures
//  * A row-major matrix is cut into tiles of tile_rows x tile_cols elements;
//    each tile gets one FP32 scale = amax(|x| over the tile) / fp8_max, and
//    each element is stored as the FP8 code of x / scale (round to nearest
//    even, saturating; see fp8.hpp). Dequantized value = from_fp8(code) *
//    scale. Scaling is "online": the scale comes from the current tile's
//    max-abs, not from a history of past maxima (no delayed scaling).
//  * Activations: 1 x 128 tiles (one scale per token per 128 channels) --
//    quantize_activations(). Weights: 128 x 128 blocks -- quantize_weights().
//    The backward pass's 128 x 1 activation tiles are quantize_blocked() with
//    tile_rows = 128, tile_cols = 1.
//  * Edge tiles may be partial when rows/cols are not multiples of the tile.
//  * An all-zero tile gets scale 1 (all codes zero) so that nothing divides
//    by zero.
//
// What it ignores
//  * Power-of-two (E8M0-like) scales, which DeepSeek uses for the dispatched
//    activations and the E5M6 attention-output inputs, and the UE8M0 scales of
//    later DeepGEMM versions: scales here are plain FP32 amax / max.
//  * Memory layout of real kernels (scales transposed / padded for TMA,
//    codes in K-major order): this is a value-level reference.
//
// Non-finite inputs make the tile scale meaningless, so quantize_blocked()
// throws std::invalid_argument on them, as it does on shape mismatches.
#include <cstdint>
#include <span>
#include <vector>

#include "trainsim/kernels/fp8.hpp"

namespace trainsim::kernels {

inline constexpr int kActivationTileCols = 128;  // 1 x 128 activation tiles
inline constexpr int kWeightBlock = 128;         // 128 x 128 weight blocks

struct QuantizedMatrix {
  int rows = 0;
  int cols = 0;
  int tile_rows = 1;
  int tile_cols = 1;
  Fp8Format format = Fp8Format::E4M3;
  std::vector<std::uint8_t> codes;  // rows * cols, row-major
  std::vector<float> scales;        // tile_grid_rows() * tile_grid_cols(), row-major

  int tile_grid_rows() const { return (rows + tile_rows - 1) / tile_rows; }
  int tile_grid_cols() const { return (cols + tile_cols - 1) / tile_cols; }
  std::uint8_t code(int r, int c) const {
    return codes[static_cast<std::size_t>(r) * static_cast<std::size_t>(cols) + static_cast<std::size_t>(c)];
  }
  // Scale of the tile holding element (r, c).
  float scale(int r, int c) const {
    return scales[static_cast<std::size_t>(r / tile_rows) * static_cast<std::size_t>(tile_grid_cols()) +
                  static_cast<std::size_t>(c / tile_cols)];
  }
  // Dequantized element: from_fp8(code) * scale.
  float value(int r, int c) const;
};

// Quantize a rows x cols row-major matrix with one scale per tile.
QuantizedMatrix quantize_blocked(std::span<const float> x, int rows, int cols, int tile_rows, int tile_cols,
                                 Fp8Format format = Fp8Format::E4M3);

// DeepSeek-V3 activation quantization: 1 x 128 tiles along the rows (tokens).
QuantizedMatrix quantize_activations(std::span<const float> x, int rows, int cols,
                                     Fp8Format format = Fp8Format::E4M3);

// DeepSeek-V3 weight quantization: 128 x 128 blocks.
QuantizedMatrix quantize_weights(std::span<const float> x, int rows, int cols,
                                 Fp8Format format = Fp8Format::E4M3);

// Row-major rows x cols matrix of dequantized values.
std::vector<float> dequantize(const QuantizedMatrix& q);

}  // namespace trainsim::kernels
