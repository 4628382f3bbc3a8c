// MoE expert path on CUDA (kernels/moe_cuda.hpp), forward only. The unit
// suite runs anywhere: argument checks, balanced routing, and the "no device /
// built without CUDA" answer. The gpu suite (skipped with TRAINSIM_SKIP when no
// device is usable) compares with the FP32 CPU reference moe_forward within a
// BF16 tolerance. UNVERIFIED: the gpu suite has never run (no GPU here).
#include <doctest/doctest.h>

#include "../support/skip.hpp"

#include <cmath>
#include <random>
#include <vector>

#include "trainsim/kernels/cuda_device.hpp"
#include "trainsim/kernels/moe.hpp"
#include "trainsim/kernels/moe_cuda.hpp"

using namespace trainsim::kernels;

namespace {

MoeConfig small_config() {
  MoeConfig c;
  c.hidden = 64;
  c.expert_ffn = 48;
  c.experts = 8;
  c.topk = 3;
  c.groups = 4;
  c.topk_groups = 2;
  c.route_scale = 2.5;
  c.shared_ffn = 32;
  return c;
}

std::vector<float> random_x(int tokens, int hidden, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> x(static_cast<std::size_t>(tokens) * hidden);
  for (auto& v : x) v = g(rng);
  return x;
}

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("balanced routing spreads token slots evenly over distinct experts") {
  MoeConfig c = small_config();
  c.groups = 1;
  c.topk_groups = 1;
  const MoeRouting r = balanced_routing(c, 40);
  const MoePermutation p = permute_by_expert(r);
  for (int e = 0; e < c.experts; ++e) CHECK(p.counts[static_cast<std::size_t>(e)] == 40 * 3 / 8);
  for (int t = 0; t < 40; ++t)
    for (int k = 1; k < c.topk; ++k) CHECK(r.selected[std::size_t(t) * 3 + k] != r.selected[std::size_t(t) * 3]);
  CHECK(r.weights[0] == doctest::Approx(2.5 / 3));
}

TEST_CASE("moe_forward_cuda validates its inputs and says why it did not run") {
  const MoeConfig c = small_config();
  const MoeWeights w = random_moe_weights(c, 3);
  const int tokens = 10;
  const auto x = random_x(tokens, c.hidden, 5);
  MoeRouting r = route_tokens(c, w, x.data(), tokens);
  MoeRouting bad = r;
  bad.selected[4] = c.experts;  // out of range
  const MoeCudaResult b = moe_forward_cuda(c, w, x.data(), tokens, bad, 1);
  CHECK_FALSE(b.ran);
  CHECK(b.message.find("out of range") != std::string::npos);
  const MoeCudaResult wrong_tokens = moe_forward_cuda(c, w, x.data(), tokens + 1, r, 1);
  CHECK_FALSE(wrong_tokens.ran);
  CHECK(wrong_tokens.message.find("routing") != std::string::npos);
  const MoeCudaResult t = moe_forward_cuda_timing(c, tokens, r.selected, std::vector<float>(3), 1);
  CHECK_FALSE(t.ran);
  CHECK(t.message.find("weights") != std::string::npos);
  const DeviceInfo info = query_cuda_devices();
  if (info.count == 0) {
    const MoeCudaResult n = moe_forward_cuda(c, w, x.data(), tokens, r, 1);
    CHECK_FALSE(n.ran);
    CHECK_FALSE(n.message.empty());
    MESSAGE(n.message);
  }
}
}

TEST_SUITE("gpu") {
TEST_CASE("moe_forward_cuda matches moe_forward within BF16 tolerance") {
  const DeviceInfo info = query_cuda_devices();
  if (info.count == 0) {
    TRAINSIM_SKIP("moe_forward_cuda: " << info.message);
  }
  const MoeConfig c = small_config();
  const MoeWeights w = random_moe_weights(c, 11);
  const int tokens = 57;
  const auto x = random_x(tokens, c.hidden, 13);
  const MoeForward ref = moe_forward(c, w, x.data(), tokens);
  const MoeCudaResult r = moe_forward_cuda(c, w, x.data(), tokens, ref.routing, 3);
  REQUIRE_MESSAGE(r.ran, r.message);
  MESSAGE(r.message);
  REQUIRE(r.y.size() == ref.y.size());
  CHECK(r.counts == ref.permutation.counts);
  double num = 0, den = 0, worst = 0, scale = 0;
  for (float v : ref.y) scale = std::max(scale, double(std::abs(v)));
  for (std::size_t i = 0; i < r.y.size(); ++i) {
    const double d = double(r.y[i]) - double(ref.y[i]);
    num += d * d;
    den += double(ref.y[i]) * ref.y[i];
    worst = std::max(worst, std::abs(d));
  }
  const double rel = std::sqrt(num / den);
  MESSAGE("relative Frobenius error " << rel << ", max |diff| " << worst << " (max |y| " << scale << ")");
  // BF16 storage of x, weights and 3 intermediates: ~2^-9 each -> a few 1e-3.
  CHECK(rel < 1e-2);
  CHECK(worst < 3e-2 * scale);
}

TEST_CASE("moe_forward_cuda_timing runs a V3-sized expert layer slice") {
  const DeviceInfo info = query_cuda_devices();
  if (info.count == 0) {
    TRAINSIM_SKIP("moe_forward_cuda_timing: " << info.message);
  }
  MoeConfig c;
  c.hidden = 7168;
  c.expert_ffn = 2048;
  c.experts = 16;
  c.topk = 8;
  const MoeRouting r = balanced_routing(c, 1024);
  const MoeCudaResult t = moe_forward_cuda_timing(c, 1024, r.selected, r.weights, 3);
  REQUIRE_MESSAGE(t.ran, t.message);
  MESSAGE(t.message);
  CHECK(t.expert_gemm_seconds > 0);
  CHECK(t.seconds >= t.expert_gemm_seconds);
  for (int n : t.counts) CHECK(n == 1024 * 8 / 16);
}
}
