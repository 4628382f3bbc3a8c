#include <doctest/doctest.h>

#include "../support/skip.hpp"

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "trainsim/kernels/attention.hpp"
#include "trainsim/kernels/attention_cuda.hpp"
#include "trainsim/kernels/cuda_device.hpp"

using namespace trainsim::kernels;

namespace {

std::vector<float> gaussian(std::size_t n, std::mt19937_64& rng, float sigma = 1.0f) {
  std::normal_distribution<float> g(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = g(rng);
  return v;
}

std::vector<float> rounded_bf16(std::vector<float> v) {
  for (auto& x : v) x = attention_cuda_round_bf16(x);
  return v;
}

// ||x - ref||_F / ||ref||_F
double rel_error(const std::vector<float>& x, const std::vector<float>& ref) {
  REQUIRE(x.size() == ref.size());
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    const double d = static_cast<double>(x[i]) - static_cast<double>(ref[i]);
    num += d * d;
    den += static_cast<double>(ref[i]) * static_cast<double>(ref[i]);
  }
  return den > 0.0 ? std::sqrt(num / den) : std::sqrt(num);
}

double max_abs_diff(const std::vector<float>& x, const std::vector<float>& ref) {
  REQUIRE(x.size() == ref.size());
  double m = 0.0;
  for (std::size_t i = 0; i < x.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(x[i]) - ref[i]));
  return m;
}

struct Inputs {
  AttentionShape s;
  std::vector<float> q, k, v, d_o;
};

Inputs random_inputs(int seq, int heads, int dqk, int dv, bool causal, std::uint64_t seed) {
  Inputs in;
  in.s.seq = seq;
  in.s.heads = heads;
  in.s.dqk = dqk;
  in.s.dv = dv;
  in.s.scale = 1.0f / std::sqrt(static_cast<float>(dqk));
  in.s.causal = causal;
  std::mt19937_64 rng(seed);
  const auto n = [&](int d) { return static_cast<std::size_t>(seq) * static_cast<std::size_t>(heads) * d; };
  in.q = gaussian(n(dqk), rng);
  in.k = gaussian(n(dqk), rng);
  in.v = gaussian(n(dv), rng);
  in.d_o = gaussian(n(dv), rng);
  return in;
}

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("attention_cuda_check accepts MLA's shapes and explains unsupported ones") {
  AttentionShape s;
  s.seq = 130;
  s.heads = 2;
  s.scale = 0.07f;
  CHECK(attention_cuda_check(s).empty());  // dqk 192, dv 128 (defaults)
  s.dqk = kAttentionCudaMaxHeadDim;
  s.dv = 1;
  CHECK(attention_cuda_check(s).empty());

  AttentionShape big = s;
  big.dqk = 320;
  CHECK(attention_cuda_check(big).find("[1, 256]") != std::string::npos);
  AttentionShape zero_dv = s;
  zero_dv.dv = 0;
  CHECK(attention_cuda_check(zero_dv).find("[1, 256]") != std::string::npos);
  AttentionShape no_scale = s;
  no_scale.scale = 0.0f;
  CHECK(attention_cuda_check(no_scale).find("scale") != std::string::npos);
  no_scale.scale = std::numeric_limits<float>::infinity();
  CHECK(attention_cuda_check(no_scale).find("scale") != std::string::npos);
  AttentionShape empty = s;
  empty.seq = 0;
  CHECK(attention_cuda_check(empty).find("positive") != std::string::npos);
  AttentionShape many_heads = s;
  many_heads.heads = 70000;
  CHECK(attention_cuda_check(many_heads).find("65535") != std::string::npos);
  AttentionShape huge = s;
  huge.seq = 1 << 20;
  huge.heads = 16384;
  CHECK(attention_cuda_check(huge).find("2^31") != std::string::npos);
}

TEST_CASE("attention_cuda refuses bad input with a reason, with or without a GPU") {
  // dqk above the supported limit: refused before any device work.
  const Inputs wide = random_inputs(8, 1, 320, 128, true, 1);
  const AttentionCudaResult r = attention_cuda(wide.s, wide.q, wide.k, wide.v, wide.d_o, 1);
  CHECK(!r.ran);
  CHECK(r.message.find("dqk 320") != std::string::npos);
  CHECK(r.message.find("[1, 256]") != std::string::npos);
  CHECK(r.o.empty());

  Inputs in = random_inputs(8, 2, 192, 128, true, 2);
  in.k.pop_back();
  const AttentionCudaResult sizes = attention_cuda(in.s, in.q, in.k, in.v, in.d_o, 1);
  CHECK(!sizes.ran);
  CHECK(sizes.message.find("input sizes") != std::string::npos);

  const Inputs ok = random_inputs(8, 2, 192, 128, true, 3);
  const AttentionCudaResult reps = attention_cuda(ok.s, ok.q, ok.k, ok.v, ok.d_o, 0);
  CHECK(!reps.ran);
  CHECK(reps.message.find("repeats") != std::string::npos);
}

TEST_CASE("attention_cuda_round_bf16 rounds to nearest even and keeps specials") {
  CHECK(attention_cuda_round_bf16(1.0f) == 1.0f);
  CHECK(attention_cuda_round_bf16(-2.5f) == -2.5f);
  // BF16 has 8 significant bits: the ulp of [1, 2) is 2^-7.
  CHECK(attention_cuda_round_bf16(1.0f + 0x1p-8f) == 1.0f);                   // tie -> even (1.0)
  CHECK(attention_cuda_round_bf16(1.0f + 3 * 0x1p-8f) == 1.0f + 0x1p-6f);     // tie -> even (mantissa 2)
  CHECK(attention_cuda_round_bf16(1.0f + 0x1p-8f + 0x1p-20f) == 1.0f + 0x1p-7f);  // above the tie -> up
  CHECK(std::isnan(attention_cuda_round_bf16(std::numeric_limits<float>::quiet_NaN())));
  CHECK(attention_cuda_round_bf16(std::numeric_limits<float>::infinity()) == std::numeric_limits<float>::infinity());
  CHECK(std::isinf(attention_cuda_round_bf16(std::numeric_limits<float>::max())));  // rounds past BF16's max
  std::mt19937_64 rng(9);
  int bad = 0;
  for (const float x : gaussian(1000, rng)) {
    const float r = attention_cuda_round_bf16(x);
    std::uint32_t bits = 0;
    std::memcpy(&bits, &r, sizeof bits);
    if ((bits & 0xFFFFu) != 0 || std::fabs(r - x) > std::fabs(x) * 0x1p-8f) ++bad;  // unit roundoff 2^-8
  }
  CHECK(bad == 0);
}

TEST_CASE("attention_cuda reports why it did not run when there is no usable GPU") {
  const DeviceInfo info = query_cuda_devices();
  if (info.count > 0) {
    MESSAGE("a CUDA device is present (" << info.message << "); the gpu suite exercises attention_cuda");
    return;
  }
  const Inputs in = random_inputs(40, 2, 192, 128, true, 4);
  const AttentionCudaResult r = attention_cuda(in.s, in.q, in.k, in.v, in.d_o, 3);
  CHECK(!r.ran);
  CHECK(r.o.empty());
  CHECK(r.dq.empty());
  CHECK(r.forward_seconds == 0.0);
  if (built_with_cuda()) {
    CHECK(r.message.find("no CUDA device") != std::string::npos);
  } else {
    CHECK(r.message.find("built without CUDA") != std::string::npos);
  }
}
}

TEST_SUITE("gpu") {
TEST_CASE("attention_cuda forward and backward match the CPU reference on BF16-rounded inputs") {
  const DeviceInfo info = query_cuda_devices();
  if (info.count == 0) {
    TRAINSIM_SKIP("attention_cuda run: " << info.message);
  }
  struct Case {
    int seq, heads, dqk, dv;
    bool causal;
  };
  // MLA's head dims with a sequence that is not a multiple of the 32-row
  // tiles, then odd small dims non-causal, the largest dims, a two-token
  // sequence (30 of 32 tile rows out of range) and dims of 1. (Not seq 1:
  // its dQ and dK are exactly zero, so relative errors mean nothing.)
  for (const Case c : {Case{130, 2, 192, 128, true}, Case{70, 3, 72, 40, false}, Case{33, 1, 256, 256, true},
                       Case{2, 2, 192, 128, true}, Case{64, 1, 1, 1, true}}) {
    CAPTURE(c.seq);
    CAPTURE(c.heads);
    CAPTURE(c.dqk);
    CAPTURE(c.dv);
    CAPTURE(c.causal);
    const Inputs in = random_inputs(c.seq, c.heads, c.dqk, c.dv, c.causal, 100 + static_cast<std::uint64_t>(c.seq));
    const AttentionCudaResult r = attention_cuda(in.s, in.q, in.k, in.v, in.d_o, 3);
    if (!r.ran && r.message.find("needs a compute capability 9.0") != std::string::npos) {
      TRAINSIM_SKIP(r.message);
    }
    REQUIRE_MESSAGE(r.ran, r.message);
    MESSAGE(r.message);

    // Reference on exactly the values the device saw (inputs rounded to
    // BF16), in FP32. The device also computes in FP32, so the two differ
    // only by summation order (blocked dot products, online vs. two-pass
    // softmax, atomic dQ order) and expf/logf implementations: a few FP32
    // ulps per operation, ~1e-6 relative per element. The backward's
    // dS = P * (dP - D) subtracts similar numbers, which can amplify that by
    // ~10-100x for some elements. Bounds: 1e-4 (forward) and 1e-3 (gradients)
    // on the relative Frobenius error, 100x above the expected level, while
    // any indexing, masking or softmax bug gives errors of order 1.
    const auto q = rounded_bf16(in.q), k = rounded_bf16(in.k), v = rounded_bf16(in.v), d_o = rounded_bf16(in.d_o);
    const AttentionForward f = attention_forward(in.s, q.data(), k.data(), v.data());
    const AttentionGrads g = attention_backward(in.s, q.data(), k.data(), v.data(), f.o.data(), f.lse.data(), d_o.data());
    const double e_o = rel_error(r.o, f.o), e_lse = max_abs_diff(r.lse, f.lse);
    const double e_dq = rel_error(r.dq, g.dq), e_dk = rel_error(r.dk, g.dk), e_dv = rel_error(r.dv, g.dv);
    MESSAGE("vs BF16-input FP32 reference: O " << e_o << ", LSE max abs " << e_lse << ", dQ " << e_dq << ", dK "
                                               << e_dk << ", dV " << e_dv);
    CHECK(e_o < 1e-4);
    CHECK(e_lse < 1e-4);  // LSE ~ log(seq) + O(1): an absolute bound
    CHECK(e_dq < 1e-3);
    CHECK(e_dk < 1e-3);
    CHECK(e_dv < 1e-3);

    // Against the unrounded FP32 inputs: what BF16 storage costs. Each input
    // element carries a relative error <= 2^-8 ~ 4e-3 (8 significant bits,
    // round to nearest); errors of independent
    // elements add in quadrature in the dot products, so outputs should be
    // off by a few 1e-3 relative (the CPU reference on rounded vs. unrounded
    // inputs of these very cases: 1.7e-3 to 5.2e-3); 3e-2 is a loose bound.
    const AttentionForward f32 = attention_forward(in.s, in.q.data(), in.k.data(), in.v.data());
    const AttentionGrads g32 =
        attention_backward(in.s, in.q.data(), in.k.data(), in.v.data(), f32.o.data(), f32.lse.data(), in.d_o.data());
    MESSAGE("vs FP32-input reference (BF16 storage effect): O " << rel_error(r.o, f32.o) << ", dQ "
                                                                 << rel_error(r.dq, g32.dq) << ", dK "
                                                                 << rel_error(r.dk, g32.dk) << ", dV "
                                                                 << rel_error(r.dv, g32.dv));
    CHECK(rel_error(r.o, f32.o) < 3e-2);
    CHECK(rel_error(r.dq, g32.dq) < 3e-2);
    CHECK(rel_error(r.dk, g32.dk) < 3e-2);
    CHECK(rel_error(r.dv, g32.dv) < 3e-2);
  }
}

TEST_CASE("attention_cuda BF16 output: O rounded on the device, backward from that O") {
  const DeviceInfo info = query_cuda_devices();
  if (info.count == 0) {
    TRAINSIM_SKIP("attention_cuda run: " << info.message);
  }
  const Inputs in = random_inputs(130, 2, 192, 128, true, 7);
  const AttentionCudaResult r = attention_cuda(in.s, in.q, in.k, in.v, in.d_o, 3, AttentionCudaOutput::bf16);
  if (!r.ran && r.message.find("needs a compute capability 9.0") != std::string::npos) {
    TRAINSIM_SKIP(r.message);
  }
  REQUIRE_MESSAGE(r.ran, r.message);
  int not_bf16 = 0;
  for (const float x : r.o) {
    std::uint32_t bits = 0;
    std::memcpy(&bits, &x, sizeof bits);
    if ((bits & 0xFFFFu) != 0) ++not_bf16;
  }
  CHECK(not_bf16 == 0);
  const auto q = rounded_bf16(in.q), k = rounded_bf16(in.k), v = rounded_bf16(in.v), d_o = rounded_bf16(in.d_o);
  const AttentionForward f = attention_forward(in.s, q.data(), k.data(), v.data());
  // BF16 rounding of O: relative error <= 2^-8 per element on top of the FP32 one.
  CHECK(rel_error(r.o, f.o) < 1e-4 + 0x1p-8);
  CHECK(max_abs_diff(r.lse, f.lse) < 1e-4);
  // The device's backward used its BF16 O (in D = rowsum(dO * O)); the CPU
  // backward given the same O must agree as tightly as in the FP32 case.
  const AttentionGrads g = attention_backward(in.s, q.data(), k.data(), v.data(), r.o.data(), f.lse.data(), d_o.data());
  CHECK(rel_error(r.dq, g.dq) < 1e-3);
  CHECK(rel_error(r.dk, g.dk) < 1e-3);
  CHECK(rel_error(r.dv, g.dv) < 1e-3);
}

TEST_CASE("attention_cuda timing at a V3-like shape (baseline kernels, not FA3)") {
  const DeviceInfo info = query_cuda_devices();
  if (info.count == 0) {
    TRAINSIM_SKIP("attention_cuda timing: " << info.message);
  }
  const Inputs in = random_inputs(2048, 16, 192, 128, true, 11);
  const AttentionCudaResult r = attention_cuda(in.s, in.q, in.k, in.v, in.d_o, 5);
  if (!r.ran && r.message.find("needs a compute capability 9.0") != std::string::npos) {
    TRAINSIM_SKIP(r.message);
  }
  REQUIRE_MESSAGE(r.ran, r.message);
  CHECK(r.forward_seconds > 0.0);
  CHECK(r.backward_seconds > 0.0);
  // Causal: half of the seq^2 score matrix; forward 2 GEMMs, backward 5.
  const double half = 0.5 * 2048.0 * 2048.0 * 16.0;
  const double fwd_flops = 2.0 * half * (192 + 128);
  const double bwd_flops = 2.0 * half * (192 + 128 + 192 + 192 + 128);
  MESSAGE(r.message << "; forward " << fwd_flops / r.forward_seconds * 1e-12 << " TFLOPS, backward "
                    << bwd_flops / r.backward_seconds * 1e-12 << " TFLOPS");
}
}
