#pragma once
// Reference FP8 GEMM with DeepSeek-V3's fine-grained scaling and an emulated
// limited-precision tensor-core accumulator (DeepSeek-V3 report §3.3.2).
//
// C (M x N) = A (M x K) * B (K x N), all row-major. A is quantized like
// activations (1 x 128 tiles along K), B like weights (128 x 128 blocks); any
// tiling works as long as each promotion interval lies inside one scale tile
// along K. Output is FP32 (real kernels write BF16; that final rounding is
// left to the caller).
//
// The accumulator emulation ("FP22"). Hopper FP8 MMA keeps its running sum
// with about 14 significant bits (DeepSeek: "around 14 bits"; SageAttention2
// measured 1 sign + 8 exponent + 13 mantissa bits). We model one tensor-core
// accumulator as follows, per output element:
//   * the products of FP8 values are exact (4-bit x 4-bit significands);
//   * one MMA instruction adds mma_k consecutive products (default 32, the K
//     depth of an FP8 wgmma): their sum is formed exactly (in double) and
//     added to the running sum acc, and the result is rounded to
//     accumulator_mantissa_bits mantissa bits (plus the implicit leading bit)
//     with accumulator_rounding (default: toward zero, i.e. truncation, as
//     measured for earlier NVIDIA tensor cores by Fasi et al. 2021; Hopper's
//     exact rounding is not published);
//   * exponent range is unlimited (FP22 has FP32's 8 exponent bits; nothing
//     in a scaled GEMM comes near its limits).
// mma_k = 1 gives "round the running sum after every add".
// Calibration of the defaults (M = N = 64, K = 4096, Gaussian inputs, 1x128 /
// 128x128 E4M3 scaling, error vs a double GEMM of the dequantized inputs,
// seeds 1..3): without promotion the worst elementwise relative error (over
// entries >= 10% of the largest) is 1.4-1.6% and the normwise error 0.33-0.36%,
// close to DeepSeek's "nearly 2%"; with promotion every 128 they are ~25x
// smaller. Other choices miss it: truncation after every single product gives
// ~45%, round-to-nearest after every 32 products ~0.15%.
//
// Two accumulation modes:
//  * Fp8Accumulation::promoted (the V3 scheme): the tensor core accumulates
//    raw code products (unscaled) over promotion_interval = N_C = 128 elements
//    of K (4 wgmmas); the partial sum is then promoted to an FP32 "register":
//    acc32 += (scale_a * scale_b) * partial, in float arithmetic, as the CUDA
//    cores of DeepGEMM do. The partial restarts from zero after each promotion.
//  * Fp8Accumulation::tensor_core_only: no promotion; one limited accumulator
//    runs over all of K. Since per-tile scales change along K, the scales are
//    folded into the products (value_a * value_b, exact in double) before
//    they enter the accumulator: this isolates the accumulator's precision,
//    which is the effect DeepSeek measured.
//
// What it ignores: the alignment/truncation of the individual products inside
// one MMA (we sum them exactly), the order in which hardware adds the k-slices
// of an instruction, split-K, BF16 output rounding, speed.
#include <span>
#include <vector>

#include "trainsim/kernels/block_quant.hpp"

namespace trainsim::kernels {

enum class AccumulatorRounding { toward_zero, nearest_even };
enum class Fp8Accumulation { promoted, tensor_core_only };

struct Fp8GemmOptions {
  Fp8Accumulation accumulation = Fp8Accumulation::promoted;
  int promotion_interval = 128;  // N_C, elements of K between promotions
  int accumulator_mantissa_bits = 13;
  AccumulatorRounding accumulator_rounding = AccumulatorRounding::toward_zero;
  int mma_k = 32;  // products per accumulator update (one wgmma's K depth)
};

// Round v to `mantissa_bits` bits after the leading one (unbounded exponent).
// 0, Inf and NaN pass through. mantissa_bits >= 0.
double round_to_mantissa_bits(double v, int mantissa_bits, AccumulatorRounding rounding);

// C = A * B with A (M x K) and B (K x N) quantized; a.cols must equal b.rows.
// Throws std::invalid_argument on mismatched shapes, bad options, or tiles that
// a promotion interval would straddle.
std::vector<float> gemm_fp8(const QuantizedMatrix& a, const QuantizedMatrix& b, const Fp8GemmOptions& options = {});

// Plain GEMM with double accumulation of float inputs (row-major).
std::vector<double> gemm_reference(std::span<const float> a, std::span<const float> b, int m, int k, int n);

struct GemmError {
  double max_abs_error = 0.0;       // max |c - ref|
  double max_abs_reference = 0.0;   // max |ref|
  // Normwise: max |c - ref| / max |ref|. Stable when some ref entries are ~0.
  double max_relative_error = 0.0;
  // max |c - ref| / |ref| over entries with |ref| >= 0.1 * max |ref|.
  double max_elementwise_relative_error = 0.0;
};

GemmError compare_to_reference(std::span<const float> c, std::span<const double> ref);

}  // namespace trainsim::kernels
