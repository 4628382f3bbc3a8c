#pragma once
// Bit-exact software emulation of the two OCP 8-bit floating-point formats.
//
// What it captures
//  * E4M3 (OCP "FN" variant, what H100/H800 tensor cores and DeepSeek-V3 use):
//    1 sign, 4 exponent, 3 mantissa bits, bias 7. No infinities; the only NaN
//    encodings are S.1111.111 (0x7F, 0xFF), so the top finite value is
//    S.1111.110 = 1.75 * 2^8 = 448. Subnormals: m * 2^-9, m = 1..7.
//  * E5M2: 1 sign, 5 exponent, 2 mantissa bits, bias 15 (the top byte of an
//    IEEE binary16). IEEE-like: exponent field 31 is Inf (mantissa 0) or NaN.
//    Top finite value 1.75 * 2^15 = 57344. Subnormals: m * 2^-16, m = 1..3.
//  * float -> FP8 rounds to nearest, ties to even, in a single rounding from
//    the float value (the result is what an infinitely precise conversion
//    followed by one RNE step gives). Out-of-range finite values saturate to
//    +-max (what transformer engines and DeepSeek's kernels do when casting
//    already-scaled values; NVIDIA's __NV_SATFINITE mode). NaN stays NaN
//    (sign kept). +-Inf saturates to +-448 in E4M3 (it has no Inf) and stays
//    +-Inf in E5M2 (so every E5M2 code round-trips). -0 keeps its sign.
//  * FP8 -> float is exact (every FP8 value is a float).
//  * Checked against NVIDIA's host-side __nv_cvt_float_to_fp8(x, __NV_SATFINITE,
//    ...) from cuda_fp8.h (CUDA 13.0) on ~41.5 M floats (all sign/exponent/top
//    mantissa patterns with 11 low-bit patterns, plus 30 M random bit
//    patterns) and all 256 decodes: identical except E5M2 +-Inf, which
//    SATFINITE maps to +-57344 and we keep as +-Inf.
//
// What it ignores
//  * Stochastic rounding, the non-saturating (overflow -> NaN/Inf) cast mode,
//    E8M0/MX shared-exponent scale formats, FNUZ variants (AMD's bias-8 E4M3).
//  * Speed: these are reference conversions (a few tens of ns each), meant for
//    tests, quantization studies and checking GPU kernels, not for bulk data.
//
// NaN payloads: from_e5m2 keeps the two mantissa bits of a NaN code in the top
// float mantissa bits and to_e5m2 reads them back (a float NaN whose top two
// mantissa bits are zero becomes the quiet code S.11111.10). E4M3 has one NaN
// code per sign.
#include <cstdint>

namespace trainsim::kernels {

enum class Fp8Format { E4M3, E5M2 };

const char* to_string(Fp8Format f);

inline constexpr float kE4M3Max = 448.0f;
inline constexpr float kE5M2Max = 57344.0f;

// Largest finite magnitude of the format.
inline constexpr float fp8_max(Fp8Format f) {
  return f == Fp8Format::E4M3 ? kE4M3Max : kE5M2Max;
}

std::uint8_t to_e4m3(float x);
float from_e4m3(std::uint8_t code);
std::uint8_t to_e5m2(float x);
float from_e5m2(std::uint8_t code);

// Format-generic forms of the four functions above.
std::uint8_t to_fp8(Fp8Format f, float x);
float from_fp8(Fp8Format f, std::uint8_t code);

// True for the NaN encodings of the format (E4M3: 0x7F/0xFF; E5M2: exponent
// field 31 with a non-zero mantissa).
bool is_fp8_nan(Fp8Format f, std::uint8_t code);

}  // namespace trainsim::kernels
