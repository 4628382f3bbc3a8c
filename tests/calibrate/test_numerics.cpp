#include <doctest/doctest.h>

#include "trainsim/calibrate/numerics.hpp"

using namespace trainsim;

TEST_SUITE("unit") {
TEST_CASE("FP8 error report: error grows with K without promotion and promotion removes most of it") {
  // Small M, N keep this fast; the error of an element depends on K.
  const auto r = calibrate::fp8_error_report({{"short", 512}, {"hidden", 7168}}, 16, 16, 1);
  REQUIRE(r["cases"].size() == 2);
  const auto& s = r["cases"][0];
  const auto& l = r["cases"][1];
  const double s_np = s["no_promotion"]["normwise_relative_error"].get<double>();
  const double l_np = l["no_promotion"]["normwise_relative_error"].get<double>();
  // Truncation bias accumulates with the number of MMAs: K=7168 has 14x the MMAs of K=512.
  CHECK(l_np > 2 * s_np);
  CHECK(l["improvement"].get<double>() > 10.0);
  CHECK(calibrate::deepseek_v3_fp8_cases().size() == 5);
}
}
