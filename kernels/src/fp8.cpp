#include "trainsim/kernels/fp8.hpp"

#include <bit>
#include <cmath>
#include <limits>

namespace trainsim::kernels {
namespace {

struct Layout {
  int mantissa_bits;       // M
  int bias;                // B
  unsigned max_magnitude;  // code (without sign) of the largest finite value
  bool has_inf;            // E5M2: exponent field all ones, mantissa 0 = Inf
};

constexpr Layout kE4M3{3, 7, 0x7E, false};
constexpr Layout kE5M2{2, 15, 0x7B, true};

// Round a non-negative double to the nearest integer, ties to even, without
// depending on the floating-point environment's rounding mode.
double round_half_even(double r) {
  const double fl = std::floor(r);
  const double diff = r - fl;  // exact: r and fl are close doubles
  if (diff > 0.5) return fl + 1.0;
  if (diff < 0.5) return fl;
  return std::fmod(fl, 2.0) == 0.0 ? fl : fl + 1.0;
}

std::uint8_t encode(const Layout& L, float x) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(x);
  const unsigned sign = (bits >> 31) ? 0x80u : 0u;
  const unsigned exp_all_ones = (L.has_inf ? 0x7Cu : 0x78u);  // E5M2: 11111.00
  if (std::isnan(x)) {
    if (!L.has_inf) return static_cast<std::uint8_t>(sign | 0x7Fu);
    unsigned payload = (bits >> 21) & 0x3u;  // top two float mantissa bits
    if (payload == 0) payload = 0x2u;        // canonical quiet NaN
    return static_cast<std::uint8_t>(sign | exp_all_ones | payload);
  }
  if (std::isinf(x)) {
    return static_cast<std::uint8_t>(sign | (L.has_inf ? exp_all_ones : L.max_magnitude));
  }
  const double a = std::fabs(static_cast<double>(x));
  if (a == 0.0) return static_cast<std::uint8_t>(sign);

  const int M = L.mantissa_bits;
  const int emin = 1 - L.bias;  // exponent of the smallest normal
  int k = 0;
  std::frexp(a, &k);            // a = f * 2^k, f in [0.5, 1)
  const int e = std::max(k - 1, emin);  // unbiased exponent (emin for subnormals)
  // Quantum (spacing of representable values) at this exponent: 2^(e-M).
  // r = a / quantum is exact (power-of-two scaling of a double), and for a
  // normal value lies in [2^M, 2^(M+1)), for a subnormal in [0, 2^M).
  const double r = std::ldexp(a, M - e);
  const double n = round_half_even(r);
  // Code magnitude: subnormal -> n (exponent field 0); normal -> exponent
  // field (e + B) and mantissa n - 2^M. Both cases are (e - emin) * 2^M + n,
  // and rounding up to 2^(M+1) (or, for subnormals, to 2^M) carries into the
  // exponent field exactly as the bit pattern should.
  const double magnitude = std::ldexp(static_cast<double>(e - emin), M) + n;
  if (magnitude > static_cast<double>(L.max_magnitude)) {
    return static_cast<std::uint8_t>(sign | L.max_magnitude);  // saturate
  }
  return static_cast<std::uint8_t>(sign | static_cast<unsigned>(magnitude));
}

float decode(const Layout& L, std::uint8_t code) {
  const bool negative = (code & 0x80u) != 0;
  const unsigned mag = code & 0x7Fu;
  const int M = L.mantissa_bits;
  const unsigned exp_field = mag >> M;
  const unsigned mant = mag & ((1u << M) - 1u);
  float v = 0.0f;
  if (!L.has_inf) {
    if (mag == 0x7Fu) {
      v = std::numeric_limits<float>::quiet_NaN();
      return negative ? -v : v;
    }
  } else if (exp_field == 0x1Fu) {
    if (mant == 0) {
      v = std::numeric_limits<float>::infinity();
    } else {
      // Keep the payload in the top two float mantissa bits.
      v = std::bit_cast<float>(0x7F800000u | (mant << 21));
    }
    return negative ? -v : v;
  }
  if (exp_field == 0) {
    v = std::ldexp(static_cast<float>(mant), 1 - L.bias - M);
  } else {
    v = std::ldexp(static_cast<float>((1u << M) | mant), static_cast<int>(exp_field) - L.bias - M);
  }
  return negative ? -v : v;
}

}  // namespace

const char* to_string(Fp8Format f) {
  return f == Fp8Format::E4M3 ? "e4m3" : "e5m2";
}

std::uint8_t to_e4m3(float x) { return encode(kE4M3, x); }
float from_e4m3(std::uint8_t code) { return decode(kE4M3, code); }
std::uint8_t to_e5m2(float x) { return encode(kE5M2, x); }
float from_e5m2(std::uint8_t code) { return decode(kE5M2, code); }

std::uint8_t to_fp8(Fp8Format f, float x) {
  return f == Fp8Format::E4M3 ? to_e4m3(x) : to_e5m2(x);
}

float from_fp8(Fp8Format f, std::uint8_t code) {
  return f == Fp8Format::E4M3 ? from_e4m3(code) : from_e5m2(code);
}

bool is_fp8_nan(Fp8Format f, std::uint8_t code) {
  const unsigned mag = code & 0x7Fu;
  if (f == Fp8Format::E4M3) return mag == 0x7Fu;
  return (mag >> 2) == 0x1Fu && (mag & 0x3u) != 0;
}

}  // namespace trainsim::kernels
