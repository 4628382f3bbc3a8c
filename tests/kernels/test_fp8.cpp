#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>

#include "trainsim/kernels/fp8.hpp"

using namespace trainsim::kernels;

namespace {

bool same_value(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b) && std::signbit(a) == std::signbit(b);
  return a == b && std::signbit(a) == std::signbit(b);
}

// Largest positive finite code of each format.
std::uint8_t max_code(Fp8Format f) { return f == Fp8Format::E4M3 ? 0x7E : 0x7B; }

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("all 256 FP8 codes round-trip from -> to") {
  for (Fp8Format f : {Fp8Format::E4M3, Fp8Format::E5M2}) {
    CAPTURE(to_string(f));
    int nans = 0;
    for (int c = 0; c < 256; ++c) {
      CAPTURE(c);
      const auto code = static_cast<std::uint8_t>(c);
      const float v = from_fp8(f, code);
      const std::uint8_t back = to_fp8(f, v);
      if (is_fp8_nan(f, code)) {
        ++nans;
        CHECK(std::isnan(v));
        CHECK(std::signbit(v) == ((code & 0x80) != 0));
        CHECK(is_fp8_nan(f, back));
        CHECK((back & 0x80) == (code & 0x80));
      } else {
        CHECK(back == code);
        CHECK(same_value(from_fp8(f, back), v));
      }
    }
    CHECK(nans == (f == Fp8Format::E4M3 ? 2 : 6));
  }
}

TEST_CASE("FP8 decoding: anchors, monotonicity, infinities") {
  CHECK(from_e4m3(0x38) == 1.0f);                     // exponent field 7 = bias
  CHECK(from_e4m3(0x7E) == 448.0f);                   // 1.75 * 2^8
  CHECK(from_e4m3(0xFE) == -448.0f);
  CHECK(from_e4m3(0x08) == std::ldexp(1.0f, -6));     // smallest normal
  CHECK(from_e4m3(0x07) == std::ldexp(7.0f, -9));     // largest subnormal
  CHECK(from_e4m3(0x01) == std::ldexp(1.0f, -9));     // smallest subnormal
  CHECK(from_e4m3(0x78) == 256.0f);
  CHECK(std::isnan(from_e4m3(0x7F)));
  CHECK(same_value(from_e4m3(0x80), -0.0f));
  CHECK(from_e5m2(0x3C) == 1.0f);
  CHECK(from_e5m2(0x7B) == 57344.0f);                 // 1.75 * 2^15
  CHECK(from_e5m2(0x04) == std::ldexp(1.0f, -14));    // smallest normal
  CHECK(from_e5m2(0x01) == std::ldexp(1.0f, -16));    // smallest subnormal
  CHECK(from_e5m2(0x7C) == std::numeric_limits<float>::infinity());
  CHECK(from_e5m2(0xFC) == -std::numeric_limits<float>::infinity());
  CHECK(std::isnan(from_e5m2(0x7D)));
  for (Fp8Format f : {Fp8Format::E4M3, Fp8Format::E5M2}) {
    for (int c = 1; c <= max_code(f); ++c) {
      CHECK(from_fp8(f, static_cast<std::uint8_t>(c)) > from_fp8(f, static_cast<std::uint8_t>(c - 1)));
      CHECK(from_fp8(f, static_cast<std::uint8_t>(c | 0x80)) == -from_fp8(f, static_cast<std::uint8_t>(c)));
    }
    CHECK(from_fp8(f, max_code(f)) == fp8_max(f));
  }
}

TEST_CASE("E4M3 rounding: hand-derived ties go to the even code") {
  // In [1, 2) E4M3 values are 1 + m/8 (quantum 2^-3 = 0.125), 1.0 = 0x38.
  // 1.0625 = 1 + 0.5 quantum: tie between 1.0 (m=0, even) and 1.125 (m=1) -> 1.0.
  CHECK(to_e4m3(1.0625f) == 0x38);
  // 1.1875 = 1.125 + 0.5 quantum: tie between 1.125 (m=1) and 1.25 (m=2, even) -> 1.25.
  CHECK(to_e4m3(1.1875f) == 0x3A);
  // Just off the tie goes to the nearer neighbour.
  CHECK(to_e4m3(std::nextafter(1.0625f, 2.0f)) == 0x39);
  CHECK(to_e4m3(std::nextafter(1.1875f, 0.0f)) == 0x39);
  // In [256, 448] the quantum is 2^(8-3) = 32; 256 = 0x78.
  // 272 = 256 + 16: tie between 256 (m=0, even) and 288 (m=1) -> 256.
  CHECK(to_e4m3(272.0f) == 0x78);
  // 304 = 288 + 16: tie between 288 (m=1) and 320 (m=2, even) -> 320 = 0x7A.
  CHECK(to_e4m3(304.0f) == 0x7A);
  CHECK(to_e4m3(-304.0f) == 0xFA);
  // Subnormals are m * 2^-9. 2^-10 is half the smallest subnormal: tie
  // between 0 (even) and 0x01 -> +0. 3 * 2^-10 = 1.5 * 2^-9: tie between
  // 0x01 and 0x02 (even) -> 0x02. 15 * 2^-10 = 7.5 * 2^-9: tie between the
  // largest subnormal 0x07 and the smallest normal 0x08 = 8 * 2^-9 (even) -> 0x08.
  CHECK(to_e4m3(std::ldexp(1.0f, -10)) == 0x00);
  CHECK(to_e4m3(-std::ldexp(1.0f, -10)) == 0x80);  // signed zero
  CHECK(to_e4m3(std::nextafter(std::ldexp(1.0f, -10), 1.0f)) == 0x01);
  CHECK(to_e4m3(std::ldexp(3.0f, -10)) == 0x02);
  CHECK(to_e4m3(std::ldexp(15.0f, -10)) == 0x08);
  CHECK(to_e4m3(std::ldexp(5.0f, -9)) == 0x05);   // exact subnormal
  CHECK(to_e4m3(1e-30f) == 0x00);                  // underflow to zero
  CHECK(to_e4m3(std::numeric_limits<float>::denorm_min()) == 0x00);
}

TEST_CASE("E5M2 rounding: hand-derived ties go to the even code") {
  // In [1, 2) E5M2 values are 1 + m/4 (quantum 0.25), 1.0 = 0x3C.
  // 1.125: tie between 1.0 (m=0, even) and 1.25 (m=1) -> 1.0.
  CHECK(to_e5m2(1.125f) == 0x3C);
  // 1.375: tie between 1.25 (m=1) and 1.5 (m=2, even) -> 1.5 = 0x3E.
  CHECK(to_e5m2(1.375f) == 0x3E);
  // Subnormals m * 2^-16: 2^-17 ties to 0, 3 * 2^-17 ties to 0x02, and
  // 7 * 2^-17 = 3.5 * 2^-16 ties to the smallest normal 0x04 = 4 * 2^-16.
  CHECK(to_e5m2(std::ldexp(1.0f, -17)) == 0x00);
  CHECK(to_e5m2(std::ldexp(3.0f, -17)) == 0x02);
  CHECK(to_e5m2(std::ldexp(7.0f, -17)) == 0x04);
}

TEST_CASE("every midpoint between neighbouring FP8 values rounds to the even code") {
  for (Fp8Format f : {Fp8Format::E4M3, Fp8Format::E5M2}) {
    CAPTURE(to_string(f));
    for (int c = 0; c < max_code(f); ++c) {
      CAPTURE(c);
      const float lo = from_fp8(f, static_cast<std::uint8_t>(c));
      const float hi = from_fp8(f, static_cast<std::uint8_t>(c + 1));
      const float mid = (lo + hi) / 2;  // exact: needs one more bit than FP8 has
      REQUIRE(mid > lo);
      REQUIRE(mid < hi);
      const int even = (c % 2 == 0) ? c : c + 1;
      CHECK(to_fp8(f, mid) == even);
      CHECK(to_fp8(f, -mid) == (even | 0x80));
      CHECK(to_fp8(f, std::nextafter(mid, 0.0f)) == c);
      CHECK(to_fp8(f, std::nextafter(mid, 1e30f)) == c + 1);
    }
  }
}

TEST_CASE("FP8 saturation, infinities and NaN") {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // E4M3: past 448 there is nothing finite (1.875 * 2^8 = 480 would be the NaN
  // code), so everything larger saturates, including the tie 464 and +-Inf.
  for (float x : {448.0f, 449.0f, 464.0f, 479.9f, 480.0f, 1e6f, 3e38f, inf}) {
    CAPTURE(x);
    CHECK(to_e4m3(x) == 0x7E);
    CHECK(to_e4m3(-x) == 0xFE);
  }
  CHECK(to_e4m3(nan) == 0x7F);
  CHECK(to_e4m3(-nan) == 0xFF);
  // E5M2: finite overflow saturates to 57344 (61440 is the tie with the
  // would-be 2^16, which IEEE rounding would turn into Inf); Inf stays Inf.
  for (float x : {57344.0f, 61439.0f, 61440.0f, 65536.0f, 1e9f}) {
    CAPTURE(x);
    CHECK(to_e5m2(x) == 0x7B);
    CHECK(to_e5m2(-x) == 0xFB);
  }
  CHECK(to_e5m2(inf) == 0x7C);
  CHECK(to_e5m2(-inf) == 0xFC);
  CHECK(is_fp8_nan(Fp8Format::E5M2, to_e5m2(nan)));
  CHECK((to_e5m2(-nan) & 0x80) == 0x80);
  CHECK(to_e4m3(0.0f) == 0x00);
  CHECK(to_e4m3(-0.0f) == 0x80);
  CHECK(to_e5m2(-0.0f) == 0x80);
}
}
