#pragma once
// FP8 numerics report (`trainsim fp8-error`): the relative error of DeepSeek-
// V3's FP8 GEMM scheme (E4M3 inputs, 1x128 activation tiles, 128x128 weight
// blocks) against a float64 reference of the same dequantized inputs, for the
// reduction lengths K of DeepSeek-V3's Linear layers, with the limited-
// precision tensor-core accumulator alone and with promotion to FP32 every
// 128 elements of K. M and N are kept small (the error of one output element
// depends on K, not on M or N); inputs are Gaussian with a fixed seed.
// The accumulator emulation is kernels/fp8_gemm.hpp's (13 stored mantissa
// bits, truncation after each 32-deep MMA): a model of the H800's behaviour
// that reproduces the published "nearly 2% at K = 4096", not a measurement.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace trainsim::calibrate {

struct Fp8ErrorCase {
  std::string name;  // the V3 layer(s) with this K
  int k = 0;
};

// The reduction lengths of DeepSeek-V3's FP8 Linear layers (config_671B).
std::vector<Fp8ErrorCase> deepseek_v3_fp8_cases();

// {cases: [{name, k, m, n, no_promotion: {max_rel, normwise}, promoted: {...}, ratio}], ...}
nlohmann::json fp8_error_report(const std::vector<Fp8ErrorCase>& cases, int m, int n, std::uint64_t seed);

}  // namespace trainsim::calibrate
