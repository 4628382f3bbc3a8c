#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "trainsim/kernels/attention.hpp"

using namespace trainsim::kernels;

namespace {

std::size_t sz(long long v) { return static_cast<std::size_t>(v); }

std::vector<float> gaussian(std::size_t n, unsigned long long seed, float sigma = 1.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> g(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = g(rng);
  return v;
}

struct Naive {
  std::vector<double> o, lse, dq, dk, dv;
};

// Plain double-precision attention, one head and one query at a time, with the
// textbook softmax, and its gradients derived directly from
// O = P V, P = softmax(S), S = scale Q K^T (no LSE reuse).
Naive naive_attention(const AttentionShape& s, const std::vector<float>& q, const std::vector<float>& k,
                      const std::vector<float>& v, const std::vector<float>* d_o) {
  const int N = s.seq, Hn = s.heads, Dq = s.dqk, Dv = s.dv;
  Naive r;
  r.o.assign(sz(N) * sz(Hn) * sz(Dv), 0.0);
  r.lse.assign(sz(Hn) * sz(N), 0.0);
  r.dq.assign(sz(N) * sz(Hn) * sz(Dq), 0.0);
  r.dk = r.dq;
  r.dv = r.o;
  const auto Q = [&](int i, int h, int d) { return double(q[(sz(i) * sz(Hn) + sz(h)) * sz(Dq) + sz(d)]); };
  const auto K = [&](int i, int h, int d) { return double(k[(sz(i) * sz(Hn) + sz(h)) * sz(Dq) + sz(d)]); };
  const auto V = [&](int i, int h, int d) { return double(v[(sz(i) * sz(Hn) + sz(h)) * sz(Dv) + sz(d)]); };
  for (int h = 0; h < Hn; ++h) {
    for (int i = 0; i < N; ++i) {
      const int n = s.causal ? i + 1 : N;
      std::vector<double> p(sz(n));
      double mx = -1e300;
      for (int j = 0; j < n; ++j) {
        double dot = 0.0;
        for (int d = 0; d < Dq; ++d) dot += Q(i, h, d) * K(j, h, d);
        p[sz(j)] = s.scale * dot;
        mx = std::max(mx, p[sz(j)]);
      }
      double sum = 0.0;
      for (double& x : p) sum += std::exp(x - mx);
      r.lse[sz(h) * sz(N) + sz(i)] = mx + std::log(sum);
      for (double& x : p) x = std::exp(x - mx) / sum;
      const std::size_t ob = (sz(i) * sz(Hn) + sz(h)) * sz(Dv);
      for (int j = 0; j < n; ++j)
        for (int d = 0; d < Dv; ++d) r.o[ob + sz(d)] += p[sz(j)] * V(j, h, d);
      if (!d_o) continue;
      // dP_j = dO . v_j; dS_j = P_j (dP_j - sum_l P_l dP_l).
      std::vector<double> dp(sz(n));
      double pdp = 0.0;
      for (int j = 0; j < n; ++j) {
        for (int d = 0; d < Dv; ++d) dp[sz(j)] += double((*d_o)[ob + sz(d)]) * V(j, h, d);
        pdp += p[sz(j)] * dp[sz(j)];
      }
      for (int j = 0; j < n; ++j) {
        const double ds = p[sz(j)] * (dp[sz(j)] - pdp) * s.scale;
        for (int d = 0; d < Dq; ++d) {
          r.dq[(sz(i) * sz(Hn) + sz(h)) * sz(Dq) + sz(d)] += ds * K(j, h, d);
          r.dk[(sz(j) * sz(Hn) + sz(h)) * sz(Dq) + sz(d)] += ds * Q(i, h, d);
        }
        for (int d = 0; d < Dv; ++d) r.dv[(sz(j) * sz(Hn) + sz(h)) * sz(Dv) + sz(d)] += p[sz(j)] * (*d_o)[ob + sz(d)];
      }
    }
  }
  return r;
}

double max_abs(const std::vector<double>& v) {
  double m = 0.0;
  for (double x : v) m = std::max(m, std::fabs(x));
  return m;
}

// max |a - b| / max |b|
double normwise_error(const std::vector<float>& a, const std::vector<double>& b) {
  double e = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) e = std::max(e, std::fabs(a[i] - b[i]));
  return e / std::max(1e-30, max_abs(b));
}

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("attention forward equals a naive softmax; LSE is log-sum-exp of the scaled scores") {
  // MLA's head dims (192 / 128) with 130 tokens (three 64-row query blocks,
  // the last one partial), causal and not.
  for (const bool causal : {true, false}) {
    AttentionShape s;
    s.seq = 130;
    s.heads = 3;
    s.dqk = 192;
    s.dv = 128;
    s.scale = 1.0f / std::sqrt(192.0f);
    s.causal = causal;
    const auto q = gaussian(sz(s.seq) * sz(s.heads) * 192, 1, 2.0f);  // sharp-ish softmax
    const auto k = gaussian(sz(s.seq) * sz(s.heads) * 192, 2);
    const auto v = gaussian(sz(s.seq) * sz(s.heads) * 128, 3);
    const auto f = attention_forward(s, q.data(), k.data(), v.data());
    const auto ref = naive_attention(s, q, k, v, nullptr);
    // FP32 dot products over 192 terms (scores |S| up to ~10) carry ~1e-6
    // relative error; exp amplifies an absolute score error e into a relative
    // weight error e. Outputs are averages of O(1) values: 1e-5 absolute is
    // ~10x above the FP32 noise. LSE values are O(1..10): same bound.
    for (std::size_t i = 0; i < ref.o.size(); ++i) REQUIRE(std::fabs(f.o[i] - ref.o[i]) <= 1e-5);
    for (std::size_t i = 0; i < ref.lse.size(); ++i) REQUIRE(std::fabs(f.lse[i] - ref.lse[i]) <= 1e-5);
  }
  AttentionShape bad;
  bad.seq = 4;
  bad.heads = 1;
  CHECK_THROWS_AS(validate(bad), std::invalid_argument);  // scale 0
}

TEST_CASE("attention is causal: changing a future token leaves earlier outputs unchanged") {
  AttentionShape s;
  s.seq = 70;
  s.heads = 2;
  s.dqk = 24;
  s.dv = 16;
  s.scale = 0.2f;
  auto q = gaussian(sz(s.seq) * 2 * 24, 4), k = gaussian(sz(s.seq) * 2 * 24, 5), v = gaussian(sz(s.seq) * 2 * 16, 6);
  const auto f0 = attention_forward(s, q.data(), k.data(), v.data());
  const int t = 40;  // change token 40's query, key and value
  for (int j = 0; j < 2 * 24; ++j) {
    q[sz(t) * 48 + sz(j)] += 3.0f;
    k[sz(t) * 48 + sz(j)] -= 5.0f;
  }
  for (int j = 0; j < 2 * 16; ++j) v[sz(t) * 32 + sz(j)] *= -7.0f;
  const auto f1 = attention_forward(s, q.data(), k.data(), v.data());
  // Masked entries enter as exact zeros, so earlier rows are bit-identical.
  for (std::size_t i = 0; i < sz(t) * 32; ++i) REQUIRE(f1.o[i] == f0.o[i]);
  for (int h = 0; h < 2; ++h)
    for (int i = 0; i < t; ++i) REQUIRE(f1.lse[sz(h) * 70 + sz(i)] == f0.lse[sz(h) * 70 + sz(i)]);
  bool later_changed = false;
  for (std::size_t i = sz(t) * 32; i < f0.o.size(); ++i) later_changed |= f1.o[i] != f0.o[i];
  CHECK(later_changed);
}

TEST_CASE("attention backward matches the naive gradients and central finite differences") {
  SUBCASE("MLA head dims, 130 tokens, against double-precision gradients") {
    AttentionShape s;
    s.seq = 130;
    s.heads = 2;
    s.dqk = 192;
    s.dv = 128;
    s.scale = 1.0f / std::sqrt(192.0f);
    const auto q = gaussian(sz(s.seq) * 2 * 192, 7), k = gaussian(sz(s.seq) * 2 * 192, 8);
    const auto v = gaussian(sz(s.seq) * 2 * 128, 9), d_o = gaussian(sz(s.seq) * 2 * 128, 10);
    const auto f = attention_forward(s, q.data(), k.data(), v.data());
    const auto g = attention_backward(s, q.data(), k.data(), v.data(), f.o.data(), f.lse.data(), d_o.data());
    const auto ref = naive_attention(s, q, k, v, &d_o);
    // Gradients are sums of up to 130 products of FP32 intermediates (P, dP
    // with ~1e-6 relative error); normwise 1e-4 is >10x above that noise.
    CHECK(normwise_error(g.dq, ref.dq) <= 1e-4);
    CHECK(normwise_error(g.dk, ref.dk) <= 1e-4);
    CHECK(normwise_error(g.dv, ref.dv) <= 1e-4);
  }
  SUBCASE("small case against central finite differences") {
    AttentionShape s;
    s.seq = 5;
    s.heads = 2;
    s.dqk = 6;
    s.dv = 4;
    s.scale = 1.0f / std::sqrt(6.0f);
    auto q = gaussian(5 * 2 * 6, 11), k = gaussian(5 * 2 * 6, 12), v = gaussian(5 * 2 * 4, 13);
    const auto R = gaussian(5 * 2 * 4, 14);  // L = sum(O * R), so dO = R
    const auto f = attention_forward(s, q.data(), k.data(), v.data());
    const auto g = attention_backward(s, q.data(), k.data(), v.data(), f.o.data(), f.lse.data(), R.data());
    const auto loss = [&] {
      const auto o = attention_forward(s, q.data(), k.data(), v.data()).o;
      double l = 0.0;
      for (std::size_t i = 0; i < o.size(); ++i) l += double(o[i]) * R[i];
      return l;
    };
    // Step h = 1e-2: truncation ~h^2 |L'''| / 6 ~ 1e-5 (softmax derivatives
    // are O(1) at these scales), rounding ~ (FP32 noise of L ~ 1e-6) / h ~
    // 1e-4. Gradients are O(0.1..1): the bound, 1e-3 of the tensor's largest
    // gradient plus 1e-3 of the entry, sits above that noise and far below
    // any real error.
    const float h = 1e-2f;
    double worst = 0.0;
    const auto check = [&](const std::string& name, std::vector<float>& p, const std::vector<float>& grad) {
      double gmax = 0.0;
      for (float x : grad) gmax = std::max(gmax, double(std::fabs(x)));
      for (std::size_t i = 0; i < p.size(); ++i) {
        const float orig = p[i];
        p[i] = orig + h;
        const double lp = loss();
        p[i] = orig - h;
        const double lm = loss();
        p[i] = orig;
        const double fd = (lp - lm) / (2.0 * double(h));
        const double err = std::fabs(fd - grad[i]);
        worst = std::max(worst, err / gmax);
        CHECK_MESSAGE(err <= 1e-3 * gmax + 1e-3 * std::fabs(fd), name << "[" << i << "] fd " << fd << " vs " << grad[i]);
      }
    };
    check("q", q, g.dq);
    check("k", k, g.dk);
    check("v", v, g.dv);
    MESSAGE("attention finite differences: worst |fd - grad| / max|grad| = " << worst);
    // The first query sees key 0 alone: P = 1, O = v_0, so dS = dO.v_0 - D = 0
    // up to the rounding of the two FP32 dot products (~1e-7).
    for (int j = 0; j < 2 * 6; ++j) CHECK(std::fabs(g.dq[sz(j)]) <= 1e-6);
  }
}

TEST_CASE("RoPE rotates pairs of the rope part, keeps norms, and inverts") {
  const int seq = 9, heads = 3, hd = 10, off = 4, rd = 6;
  auto x = gaussian(sz(seq) * heads * hd, 15);
  const auto x0 = x;
  apply_rope(x.data(), seq, heads, hd, off, rd, 10000.0, 3);
  for (int t = 0; t < seq; ++t)
    for (int h = 0; h < heads; ++h) {
      const std::size_t b = (sz(t) * heads + sz(h)) * hd;
      for (int c = 0; c < off; ++c) CHECK(x[b + sz(c)] == x0[b + sz(c)]);  // nope part untouched
      for (int i = 0; i < rd / 2; ++i) {
        const std::size_t e = b + sz(off) + 2 * sz(i);
        const double ang = (3 + t) * std::pow(10000.0, -2.0 * i / rd);
        // Single FP32 rotation: ~1e-6 relative; 1e-5 absolute for N(0,1) data.
        CHECK(x[e] == doctest::Approx(x0[e] * std::cos(ang) - x0[e + 1] * std::sin(ang)).epsilon(1e-5));
        CHECK(std::hypot(x[e], x[e + 1]) == doctest::Approx(std::hypot(x0[e], x0[e + 1])).epsilon(1e-5));
      }
    }
  apply_rope(x.data(), seq, heads, hd, off, rd, 10000.0, 3, true);
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(x[i] == doctest::Approx(x0[i]).epsilon(1e-5));
  CHECK_THROWS_AS(apply_rope(x.data(), seq, heads, hd, off, 5), std::invalid_argument);
}
}
