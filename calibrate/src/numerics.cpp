#include "trainsim/calibrate/numerics.hpp"

#include <random>

#include "trainsim/kernels/block_quant.hpp"
#include "trainsim/kernels/fp8_gemm.hpp"

namespace trainsim::calibrate {

std::vector<Fp8ErrorCase> deepseek_v3_fp8_cases() {
  // K of each FP8 GEMM's forward pass (hidden 7168, q_lora 1536, kv_lora 512,
  // 128 heads x v 128 = 16384, expert FFN 2048).
  return {{"wkv_b (kv_lora_rank)", 512},
          {"wq_b (q_lora_rank)", 1536},
          {"expert and shared-expert down projections (moe_inter_dim)", 2048},
          {"wq_a, wkv_a, expert up projections (hidden)", 7168},
          {"wo (heads x v_head_dim)", 16384}};
}

nlohmann::json fp8_error_report(const std::vector<Fp8ErrorCase>& cases, int m, int n, std::uint64_t seed) {
  nlohmann::json out = nlohmann::json::array();
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  for (const auto& c : cases) {
    std::vector<float> a(static_cast<std::size_t>(m) * c.k), b(static_cast<std::size_t>(c.k) * n);
    for (auto& x : a) x = g(rng);
    for (auto& x : b) x = g(rng);
    const auto qa = kernels::quantize_activations(a, m, c.k);
    const auto qb = kernels::quantize_weights(b, c.k, n);
    const auto ref = kernels::gemm_reference(kernels::dequantize(qa), kernels::dequantize(qb), m, c.k, n);
    kernels::Fp8GemmOptions limited;
    limited.accumulation = kernels::Fp8Accumulation::tensor_core_only;
    const kernels::Fp8GemmOptions promoted;
    const auto el = kernels::compare_to_reference(kernels::gemm_fp8(qa, qb, limited), ref);
    const auto ep = kernels::compare_to_reference(kernels::gemm_fp8(qa, qb, promoted), ref);
    auto err = [](const kernels::GemmError& e) {
      return nlohmann::json{{"max_elementwise_relative_error", e.max_elementwise_relative_error},
                            {"normwise_relative_error", e.max_relative_error}};
    };
    out.push_back({{"name", c.name},
                   {"k", c.k},
                   {"m", m},
                   {"n", n},
                   {"no_promotion", err(el)},
                   {"promotion_every_128", err(ep)},
                   {"improvement", ep.max_elementwise_relative_error > 0
                                       ? el.max_elementwise_relative_error / ep.max_elementwise_relative_error
                                       : 0.0}});
  }
  return {{"cases", out},
          {"seed", seed},
          {"accumulator", "emulated: 13 stored mantissa bits (~14-bit), truncated after each 32-deep MMA"},
          {"reference", "float64 GEMM of the dequantized FP8 inputs (only accumulation error is measured)"},
          {"max_elementwise_note", "over output elements with |ref| >= 10% of max |ref|"}};
}

}  // namespace trainsim::calibrate
