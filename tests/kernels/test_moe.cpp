#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <string>
#include <stdexcept>
#include <vector>

#include "trainsim/kernels/moe.hpp"
#include "trainsim/kernels/tensor.hpp"

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

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double dsilu(double x) { return x * sigmoid(x); }

// The small configuration of the gradient checks (and the forward check).
MoeConfig small_config() {
  MoeConfig c;
  c.hidden = 16;
  c.expert_ffn = 8;
  c.experts = 8;
  c.topk = 2;
  c.groups = 4;
  c.topk_groups = 2;
  c.route_scale = 2.5;
  c.shared_ffn = 4;
  return c;
}

// Naive double-precision MoE forward for the routing `r` (selection and
// weights taken from it): y_t = sum_k w_tk * W2_e (silu(W1_e x_t) * W3_e x_t)
// + shared(x_t).
std::vector<double> naive_moe(const MoeConfig& c, const MoeWeights& w, const std::vector<float>& x, int tokens,
                              const MoeRouting& r) {
  const int H = c.hidden, F = c.expert_ffn, S = c.shared_ffn;
  std::vector<double> y(sz(tokens) * sz(H), 0.0);
  const auto mlp = [&](const float* w1, const float* w3, const float* w2, int ffn, const float* xt, double scale,
                       double* yt) {
    std::vector<double> a(sz(ffn));
    for (int f = 0; f < ffn; ++f) {
      double u1 = 0.0, u3 = 0.0;
      for (int i = 0; i < H; ++i) {
        u1 += double(w1[sz(f) * sz(H) + sz(i)]) * xt[i];
        u3 += double(w3[sz(f) * sz(H) + sz(i)]) * xt[i];
      }
      a[sz(f)] = dsilu(u1) * u3 * scale;
    }
    for (int o = 0; o < H; ++o) {
      double s = 0.0;
      for (int f = 0; f < ffn; ++f) s += double(w2[sz(o) * sz(ffn) + sz(f)]) * a[sz(f)];
      yt[o] += s;
    }
  };
  for (int t = 0; t < tokens; ++t) {
    const float* xt = x.data() + sz(t) * sz(H);
    double* yt = y.data() + sz(t) * sz(H);
    for (int k = 0; k < c.topk; ++k) {
      const int e = r.selected[sz(t) * sz(c.topk) + sz(k)];
      const std::size_t wo = sz(e) * sz(F) * sz(H);
      mlp(w.w1.data() + wo, w.w3.data() + wo, w.w2.data() + wo, F, xt, r.weights[sz(t) * sz(c.topk) + sz(k)], yt);
    }
    if (S > 0) mlp(w.shared_w1.data(), w.shared_w3.data(), w.shared_w2.data(), S, xt, 1.0, yt);
  }
  return y;
}

// Loss of the gradient checks: L = sum(y * R), accumulated in double.
double loss(const std::vector<float>& y, const std::vector<float>& r) {
  double l = 0.0;
  for (std::size_t i = 0; i < y.size(); ++i) l += double(y[i]) * r[i];
  return l;
}

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("tensor helpers: gemm_nn / gemm_nt / gemm_tn match a naive loop, with strides and accumulation") {
  // Sizes cross the k (128) and n (256) blocks and the 4-row unrolling.
  const int m = 7, n = 261, k = 130;
  const int lda = k + 3, ldb = n + 5, ldc = n + 2;
  const auto a = gaussian(sz(m) * sz(lda), 1), b = gaussian(sz(k) * sz(ldb), 2);
  std::vector<double> ref(sz(m) * sz(n), 0.0);
  for (int i = 0; i < m; ++i)
    for (int j = 0; j < n; ++j)
      for (int p = 0; p < k; ++p) ref[sz(i) * sz(n) + sz(j)] += double(a[sz(i) * sz(lda) + sz(p)]) * b[sz(p) * sz(ldb) + sz(j)];
  // Transposed copies for the _nt and _tn forms.
  std::vector<float> bt(sz(n) * sz(k)), at(sz(k) * sz(m));
  for (int p = 0; p < k; ++p)
    for (int j = 0; j < n; ++j) bt[sz(j) * sz(k) + sz(p)] = b[sz(p) * sz(ldb) + sz(j)];
  for (int i = 0; i < m; ++i)
    for (int p = 0; p < k; ++p) at[sz(p) * sz(m) + sz(i)] = a[sz(i) * sz(lda) + sz(p)];
  // FP32 sums of 130 products of N(0,1) numbers (|sum| ~ 11) differ from the
  // double sum by at most ~k * 2^-24 * sum |a b| ~ 1e-4 absolute; 1e-3 is safe.
  const auto check = [&](const std::vector<float>& c, double factor) {
    for (int i = 0; i < m; ++i)
      for (int j = 0; j < n; ++j)
        REQUIRE(std::fabs(c[sz(i) * sz(ldc) + sz(j)] - factor * ref[sz(i) * sz(n) + sz(j)]) <= 1e-3);
  };
  std::vector<float> c(sz(m) * sz(ldc), 7.0f);
  gemm_nn(m, n, k, a.data(), lda, b.data(), ldb, c.data(), ldc);
  check(c, 1.0);
  gemm_nt(m, n, k, a.data(), lda, bt.data(), k, c.data(), ldc, true);
  check(c, 2.0);
  gemm_tn(m, n, k, at.data(), m, b.data(), ldb, c.data(), ldc, true);
  check(c, 3.0);
  CHECK(c[sz(ldc) - 1] == 7.0f);  // padding between rows untouched
}

TEST_CASE("MoE routing: hand-made example with group limitation and bias") {
  MoeConfig c;
  c.hidden = 1;
  c.expert_ffn = 1;
  c.experts = 8;  // groups {0,1} {2,3} {4,5} {6,7}
  c.topk = 3;
  c.groups = 4;
  c.topk_groups = 2;
  c.route_scale = 2.5;
  const std::vector<float> scores = {
      0.9f, 0.1f, 0.5f, 0.45f, 0.6f, 0.2f, 0.3f, 0.35f,   // token 0
      0.2f, 0.2f, 0.3f, 0.1f, 0.25f, 0.25f, 0.1f, 0.1f};  // token 1
  const std::vector<float> bias = {0, 0, 0, 0, 0, 0, 0.5f, 0};

  // Without bias.
  // Token 0: group scores (sum of top-2) g0 = 1.0, g1 = 0.95, g2 = 0.8, g3 = 0.65
  //   -> keep g0, g1; top-3 of {0: .9, 1: .1, 2: .5, 3: .45} = 0, 2, 3. Expert 4
  //   (0.6) is the second best overall but its group is dropped.
  //   Weights 2.5 * {.9, .5, .45} / 1.85.
  // Token 1: g0 = .4, g1 = .4, g2 = .5, g3 = .2 -> keep g2, then g0 (tie with
  //   g1 goes to the lower index); top-3 of {0: .2, 1: .2, 4: .25, 5: .25} =
  //   4, 5, 0 (ties to the lower index). Weights 2.5 * {.25, .25, .2} / .7.
  const auto r0 = route_from_scores(c, scores.data(), nullptr, 2);
  CHECK(r0.selected == std::vector<int>{0, 2, 3, 4, 5, 0});
  CHECK(r0.weights[0] == doctest::Approx(2.5 * 0.9 / 1.85));
  CHECK(r0.weights[1] == doctest::Approx(2.5 * 0.5 / 1.85));
  CHECK(r0.weights[2] == doctest::Approx(2.5 * 0.45 / 1.85));
  CHECK(r0.weights[3] == doctest::Approx(2.5 * 0.25 / 0.7));
  CHECK(r0.weights[5] == doctest::Approx(2.5 * 0.2 / 0.7));

  // With bias +0.5 on expert 6 (selection only):
  // Token 0: biased g3 = 0.8 + 0.35 = 1.15 -> keep g3, g0; top-3 of
  //   {0: .9, 1: .1, 6: .8, 7: .35} = 0, 6, 7. Weights use the UNBIASED
  //   scores: 2.5 * {.9, .3, .35} / 1.55.
  // Token 1: biased g3 = .6 + .1 = .7, g2 = .5 -> keep g3, g2; top-3 of
  //   {4: .25, 5: .25, 6: .6, 7: .1} = 6, 4, 5. Weights 2.5 * {.1, .25, .25} / .6.
  const auto r1 = route_from_scores(c, scores.data(), bias.data(), 2);
  CHECK(r1.selected == std::vector<int>{0, 6, 7, 6, 4, 5});
  CHECK(r1.weights[0] == doctest::Approx(2.5 * 0.9 / 1.55));
  CHECK(r1.weights[1] == doctest::Approx(2.5 * 0.3 / 1.55));
  CHECK(r1.weights[2] == doctest::Approx(2.5 * 0.35 / 1.55));
  CHECK(r1.weights[3] == doctest::Approx(2.5 * 0.1 / 0.6));
  CHECK(r1.weights[4] == doctest::Approx(2.5 * 0.25 / 0.6));

  MoeConfig bad = c;
  bad.groups = 3;
  CHECK_THROWS_AS(route_from_scores(bad, scores.data(), nullptr, 2), std::invalid_argument);
  bad = c;
  bad.topk = 5;  // only 2 groups x 2 experts are kept
  CHECK_THROWS_AS(route_from_scores(bad, scores.data(), nullptr, 2), std::invalid_argument);
}

TEST_CASE("MoE routing on random tokens: group limit respected, weights sum to route_scale") {
  MoeConfig c;  // V3's routing shape, scaled down in hidden size
  c.hidden = 32;
  c.expert_ffn = 8;
  c.experts = 64;
  c.topk = 8;
  c.groups = 8;
  c.topk_groups = 4;
  c.route_scale = 2.5;
  const int T = 200;
  const auto w = random_moe_weights(c, 5);
  const auto x = gaussian(sz(T) * sz(c.hidden), 6);
  const auto r = route_tokens(c, w, x.data(), T);
  const int per = c.experts / c.groups;
  for (int t = 0; t < T; ++t) {
    const int* sel = r.selected.data() + sz(t) * 8;
    const float* s = r.scores.data() + sz(t) * 64;
    std::vector<float> b(64);
    for (int e = 0; e < 64; ++e) b[sz(e)] = s[e] + w.gate_bias[sz(e)];
    // Independent group scores: sum of the two largest biased scores.
    std::vector<std::pair<float, int>> gs;
    for (int g = 0; g < 8; ++g) {
      std::vector<float> v(b.begin() + g * per, b.begin() + (g + 1) * per);
      std::sort(v.rbegin(), v.rend());
      gs.emplace_back(v[0] + v[1], g);
    }
    std::sort(gs.begin(), gs.end(), [](auto a, auto bb) { return a.first > bb.first; });
    std::set<int> kept;
    for (int i = 0; i < 4; ++i) kept.insert(gs[sz(i)].second);
    std::set<int> chosen(sel, sel + 8);
    CHECK(chosen.size() == 8);
    double sum = 0.0, ssum = 0.0;
    float min_chosen = 1e9f;
    for (int k = 0; k < 8; ++k) {
      CHECK(kept.count(sel[k] / per) == 1);  // only experts of the kept groups
      sum += r.weights[sz(t) * 8 + sz(k)];
      ssum += s[sel[k]];
      min_chosen = std::min(min_chosen, b[sz(sel[k])]);
    }
    // Float weights, each within 1 ulp-ish of the double value: sum to 1e-6.
    CHECK(sum == doctest::Approx(2.5).epsilon(1e-6));
    for (int k = 0; k < 8; ++k) CHECK(r.weights[sz(t) * 8 + sz(k)] == doctest::Approx(2.5 * s[sel[k]] / ssum).epsilon(1e-6));
    // Top-k inside the kept groups: no unchosen expert there has a higher biased score.
    for (int e = 0; e < 64; ++e)
      if (kept.count(e / per) && !chosen.count(e)) CHECK(b[sz(e)] <= min_chosen);
  }
}

TEST_CASE("MoE permutation: contiguous expert blocks that round-trip") {
  MoeConfig c = small_config();
  c.experts = 16;
  c.topk = 4;
  c.groups = 4;
  c.topk_groups = 2;
  const int T = 37;
  const auto w = random_moe_weights(c, 11);
  const auto x = gaussian(sz(T) * sz(c.hidden), 12);
  const auto r = route_tokens(c, w, x.data(), T);
  const auto p = permute_by_expert(r);
  REQUIRE(p.rows() == T * c.topk);
  int total = 0;
  for (int e = 0; e < c.experts; ++e) {
    CHECK(p.offsets[sz(e)] == total);
    total += p.counts[sz(e)];
    int prev_token = -1;
    for (int row = p.offsets[sz(e)]; row < p.offsets[sz(e) + 1]; ++row) {
      const int t = p.token[sz(row)], k = p.slot[sz(row)];
      CHECK(r.selected[sz(t) * 4 + sz(k)] == e);      // the block holds only expert e
      CHECK(p.row_of[sz(t) * 4 + sz(k)] == row);      // inverse map
      CHECK(t > prev_token);                          // token order kept, no duplicates
      prev_token = t;
    }
  }
  CHECK(total == T * c.topk);
  // Dispatch then combine gives topk copies of every token back.
  std::vector<float> xp(sz(p.rows()) * sz(c.hidden)), back(x.size(), 0.0f);
  permute_rows(p, x.data(), c.hidden, xp.data());
  unpermute_add_rows(p, xp.data(), c.hidden, back.data());
  for (std::size_t i = 0; i < x.size(); ++i) CHECK(back[i] == 4.0f * x[i]);  // exact: 4 equal floats
}

TEST_CASE("MoE forward equals a naive per-token loop over the selected experts") {
  for (const int shared : {0, 4}) {
    MoeConfig c = small_config();
    c.shared_ffn = shared;
    c.hidden = 40;
    c.expert_ffn = 24;
    const int T = 23;
    const auto w = random_moe_weights(c, 21);
    const auto x = gaussian(sz(T) * sz(c.hidden), 22);
    const auto f = moe_forward(c, w, x.data(), T);
    const auto ref = naive_moe(c, w, x, T, f.routing);
    // FP32 sums over 40 / 24 terms of O(1) values: errors ~1e-6 of the
    // magnitudes involved; 1e-4 absolute + 1e-4 relative leaves a wide margin.
    double max_err = 0.0;
    for (std::size_t i = 0; i < ref.size(); ++i) {
      max_err = std::max(max_err, std::fabs(f.y[i] - ref[i]));
      CHECK(std::fabs(f.y[i] - ref[i]) <= 1e-4 + 1e-4 * std::fabs(ref[i]));
    }
    MESSAGE("MoE forward max abs error vs double loop (shared_ffn " << shared << "): " << max_err);
  }
}

TEST_CASE("MoE backward matches central finite differences") {
  const MoeConfig c = small_config();  // hidden 16, ffn 8, 8 experts, top-2, 4 groups, 2 kept, shared 4
  const int T = 6;
  MoeWeights w = random_moe_weights(c, 31);
  std::vector<float> x = gaussian(sz(T) * sz(c.hidden), 32);
  const auto R = gaussian(sz(T) * sz(c.hidden), 33);
  const auto f = moe_forward(c, w, x.data(), T);
  const auto g = moe_backward(c, w, x.data(), f, R.data());
  const std::vector<int> selected = f.routing.selected;

  // Central differences with step h = 1e-2 on each entry, in FP32 forwards
  // with the loss summed in double. Truncation error ~h^2 |L'''| / 6, a few
  // 1e-5 for third derivatives O(1); rounding error ~ (FP32 noise of L, ~1e-6
  // of |L| ~ 10) / h ~ 1e-4 absolute. The largest gradient of each tensor is
  // 3..50, so the bound below, 1e-3 of the tensor's largest gradient plus 1e-3
  // of the entry, is well above that noise (observed: <= 4e-5 of the largest
  // gradient) yet far below any real mistake (a missing term is O(gradient)). A step that changes the
  // expert selection is a discontinuity (the selection has no gradient):
  // such entries are skipped, and there may be only a few.
  const float h = 1e-2f;
  int skipped = 0, checked = 0;
  double worst_all = 0.0;
  const auto check_tensor = [&](const std::string& name, std::vector<float>& p, const std::vector<float>& grad) {
    REQUIRE(grad.size() == p.size());
    double gmax = 0.0, worst = 0.0;
    for (float v : grad) gmax = std::max(gmax, double(std::fabs(v)));
    for (std::size_t i = 0; i < p.size(); ++i) {
      const float orig = p[i];
      p[i] = orig + h;
      const auto fp = moe_forward(c, w, x.data(), T);
      p[i] = orig - h;
      const auto fm = moe_forward(c, w, x.data(), T);
      p[i] = orig;
      if (fp.routing.selected != selected || fm.routing.selected != selected) {
        ++skipped;
        continue;
      }
      ++checked;
      const double fd = (loss(fp.y, R) - loss(fm.y, R)) / (2.0 * double(h));
      const double err = std::fabs(fd - grad[i]);
      worst = std::max(worst, err / gmax);
      CHECK_MESSAGE(err <= 1e-3 * gmax + 1e-3 * std::fabs(fd), name << "[" << i << "] fd " << fd << " vs " << grad[i]);
    }
    worst_all = std::max(worst_all, worst);
  };
  check_tensor("x", x, g.dx);
  check_tensor("gate", w.gate, g.d_gate);
  check_tensor("w1", w.w1, g.d_w1);
  check_tensor("w3", w.w3, g.d_w3);
  check_tensor("w2", w.w2, g.d_w2);
  check_tensor("shared_w1", w.shared_w1, g.d_shared_w1);
  check_tensor("shared_w3", w.shared_w3, g.d_shared_w3);
  check_tensor("shared_w2", w.shared_w2, g.d_shared_w2);
  MESSAGE("MoE finite differences: " << checked << " entries, " << skipped
          << " skipped (selection changed); worst |fd - grad| / max|grad| = " << worst_all);
  CHECK(skipped * 50 <= checked);
  // The gate bias receives no gradient, and indeed perturbing it (without
  // changing the selection) leaves the output unchanged.
  w.gate_bias[0] += 1e-3f;
  const auto fb = moe_forward(c, w, x.data(), T);
  if (fb.routing.selected == selected) CHECK(loss(fb.y, R) == loss(f.y, R));

  // d_weights against finite differences of the combine weights themselves:
  // L is linear in each weight, so dL/dw_tk = <dy_t, W2_e act_tk>, recomputed
  // here from the naive loop with unit weights.
  for (std::size_t i = 0; i < f.routing.weights.size(); ++i) {
    MoeRouting one = f.routing;
    std::fill(one.weights.begin(), one.weights.end(), 0.0f);
    one.weights[i] = 1.0f;
    MoeConfig no_shared = c;
    no_shared.shared_ffn = 0;
    MoeWeights ws = w;
    ws.shared_w1.clear();
    ws.shared_w2.clear();
    ws.shared_w3.clear();
    const auto y1 = naive_moe(no_shared, ws, x, T, one);
    double d = 0.0;
    for (std::size_t j = 0; j < y1.size(); ++j) d += y1[j] * R[j];
    // Linear in w: exact up to FP32 rounding of the backward (~1e-6 relative).
    CHECK(g.d_weights[i] == doctest::Approx(d).epsilon(1e-4).scale(1.0));
  }
}
}
