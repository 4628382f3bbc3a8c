#include "trainsim/kernels/moe.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <random>
#include <stdexcept>

#include "trainsim/kernels/tensor.hpp"

namespace trainsim::kernels {
namespace {

std::size_t sz(long long v) { return static_cast<std::size_t>(v); }
std::size_t at(int r, int c, int cols) { return sz(r) * sz(cols) + sz(c); }

// Indices of the `k` largest values of v[0..n) in descending order; ties go to
// the lower index. Values of -inf are never picked over finite ones.
void top_k(const float* v, int n, int k, int* out) {
  std::vector<int> idx(sz(n));
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int a, int b) {
    return v[a] > v[b] || (v[a] == v[b] && a < b);
  });
  std::copy_n(idx.begin(), k, out);
}

// SwiGLU forward over `rows` rows: up1 = x W1^T, up3 = x W3^T, act = silu(up1)*up3.
void swiglu_up(int rows, int hidden, int ffn, const float* x, const float* w1, const float* w3, float* up1,
               float* up3, float* act) {
  gemm_nt(rows, ffn, hidden, x, hidden, w1, hidden, up1, ffn);
  gemm_nt(rows, ffn, hidden, x, hidden, w3, hidden, up3, ffn);
  const std::size_t n = sz(rows) * sz(ffn);
  for (std::size_t i = 0; i < n; ++i) act[i] = silu(up1[i]) * up3[i];
}

// SwiGLU backward from d_act (rows x ffn): weight grads accumulate into dw1,
// dw3 (ffn x hidden); dx (rows x hidden) is overwritten.
void swiglu_up_backward(int rows, int hidden, int ffn, const float* x, const float* w1, const float* w3,
                        const float* up1, const float* up3, const float* d_act, float* dw1, float* dw3,
                        float* dx) {
  const std::size_t n = sz(rows) * sz(ffn);
  std::vector<float> du1(n), du3(n);
  for (std::size_t i = 0; i < n; ++i) {
    du1[i] = d_act[i] * up3[i] * silu_grad(up1[i]);
    du3[i] = d_act[i] * silu(up1[i]);
  }
  gemm_tn(ffn, hidden, rows, du1.data(), ffn, x, hidden, dw1, hidden, true);
  gemm_tn(ffn, hidden, rows, du3.data(), ffn, x, hidden, dw3, hidden, true);
  gemm_nn(rows, hidden, ffn, du1.data(), ffn, w1, hidden, dx, hidden);
  gemm_nn(rows, hidden, ffn, du3.data(), ffn, w3, hidden, dx, hidden, true);
}

void check_weights(const MoeConfig& c, const MoeWeights& w) {
  const std::size_t E = sz(c.experts), H = sz(c.hidden), F = sz(c.expert_ffn), S = sz(c.shared_ffn);
  const bool ok = w.gate.size() == E * H && (w.gate_bias.empty() || w.gate_bias.size() == E) &&
                  w.w1.size() == E * F * H && w.w3.size() == E * F * H && w.w2.size() == E * H * F &&
                  w.shared_w1.size() == S * H && w.shared_w3.size() == S * H && w.shared_w2.size() == H * S;
  if (!ok) throw std::invalid_argument("moe: weight sizes do not match the configuration");
}

}  // namespace

void validate(const MoeConfig& c) {
  if (c.hidden <= 0 || c.expert_ffn <= 0 || c.experts <= 0 || c.topk <= 0 || c.groups <= 0 ||
      c.topk_groups <= 0 || c.shared_ffn < 0 || !(c.route_scale > 0.0)) {
    throw std::invalid_argument("moe: sizes must be positive");
  }
  if (c.experts % c.groups != 0) {
    throw std::invalid_argument(fmt::format("moe: {} experts do not split into {} groups", c.experts, c.groups));
  }
  if (c.topk_groups > c.groups || c.topk > c.topk_groups * (c.experts / c.groups)) {
    throw std::invalid_argument(fmt::format("moe: top-{} of {} kept groups x {} experts is impossible", c.topk,
                                            c.topk_groups, c.experts / c.groups));
  }
}

MoeWeights random_moe_weights(const MoeConfig& c, unsigned long long seed) {
  validate(c);
  std::mt19937_64 rng(seed);
  const auto fill = [&](std::size_t n, double sigma) {
    std::normal_distribution<float> g(0.0f, static_cast<float>(sigma));
    std::vector<float> v(n);
    for (auto& x : v) x = g(rng);
    return v;
  };
  const std::size_t E = sz(c.experts), H = sz(c.hidden), F = sz(c.expert_ffn), S = sz(c.shared_ffn);
  MoeWeights w;
  w.gate = fill(E * H, 1.0 / std::sqrt(double(H)));
  w.gate_bias = fill(E, 0.1);
  w.w1 = fill(E * F * H, 1.0 / std::sqrt(double(H)));
  w.w3 = fill(E * F * H, 1.0 / std::sqrt(double(H)));
  w.w2 = fill(E * H * F, 1.0 / std::sqrt(double(F)));
  w.shared_w1 = fill(S * H, 1.0 / std::sqrt(double(H)));
  w.shared_w3 = fill(S * H, 1.0 / std::sqrt(double(H)));
  w.shared_w2 = fill(H * S, S ? 1.0 / std::sqrt(double(S)) : 0.0);
  return w;
}

MoeRouting route_from_scores(const MoeConfig& c, const float* scores, const float* bias, int tokens) {
  validate(c);
  const int E = c.experts, K = c.topk, G = c.groups, per_group = E / G;
  MoeRouting r;
  r.tokens = tokens;
  r.experts = E;
  r.topk = K;
  r.scores.assign(scores, scores + sz(tokens) * sz(E));
  r.selected.resize(sz(tokens) * sz(K));
  r.weights.resize(sz(tokens) * sz(K));
  std::vector<float> biased(sz(E));
  std::vector<float> group_score(sz(G));
  std::vector<int> kept(sz(c.topk_groups));
  std::vector<int> top2(2);
  for (int t = 0; t < tokens; ++t) {
    const float* s = scores + at(t, 0, E);
    for (int e = 0; e < E; ++e) biased[sz(e)] = s[e] + (bias ? bias[e] : 0.0f);
    if (G > 1) {
      const int n2 = std::min(2, per_group);
      for (int g = 0; g < G; ++g) {
        const float* b = biased.data() + sz(g) * sz(per_group);
        top_k(b, per_group, n2, top2.data());
        group_score[sz(g)] = b[top2[0]] + (n2 > 1 ? b[top2[1]] : 0.0f);
      }
      top_k(group_score.data(), G, c.topk_groups, kept.data());
      std::vector<bool> keep(sz(G), false);
      for (int g : kept) keep[sz(g)] = true;
      for (int e = 0; e < E; ++e)
        if (!keep[sz(e / per_group)]) biased[sz(e)] = -INFINITY;
    }
    int* sel = r.selected.data() + at(t, 0, K);
    top_k(biased.data(), E, K, sel);
    double sum = 0.0;
    for (int k = 0; k < K; ++k) sum += double(s[sel[k]]);
    for (int k = 0; k < K; ++k) {
      r.weights[at(t, k, K)] = static_cast<float>(double(s[sel[k]]) / sum * c.route_scale);
    }
  }
  return r;
}

MoeRouting route_tokens(const MoeConfig& c, const MoeWeights& w, const float* x, int tokens) {
  validate(c);
  check_weights(c, w);
  std::vector<float> scores(sz(tokens) * sz(c.experts));
  gemm_nt(tokens, c.experts, c.hidden, x, c.hidden, w.gate.data(), c.hidden, scores.data(), c.experts);
  for (auto& v : scores) v = 1.0f / (1.0f + std::exp(-v));
  return route_from_scores(c, scores.data(), w.gate_bias.empty() ? nullptr : w.gate_bias.data(), tokens);
}

MoePermutation permute_by_expert(const MoeRouting& r) {
  const int T = r.tokens, K = r.topk, E = r.experts;
  MoePermutation p;
  p.tokens = T;
  p.topk = K;
  p.counts.assign(sz(E), 0);
  for (int e : r.selected) {
    if (e < 0 || e >= E) throw std::invalid_argument(fmt::format("moe: expert id {} out of range", e));
    ++p.counts[sz(e)];
  }
  p.offsets.assign(sz(E) + 1, 0);
  for (int e = 0; e < E; ++e) p.offsets[sz(e) + 1] = p.offsets[sz(e)] + p.counts[sz(e)];
  const std::size_t rows = sz(T) * sz(K);
  p.token.resize(rows);
  p.slot.resize(rows);
  p.row_of.resize(rows);
  std::vector<int> next(p.offsets.begin(), p.offsets.end() - 1);
  for (int t = 0; t < T; ++t) {
    for (int k = 0; k < K; ++k) {
      const int row = next[sz(r.selected[at(t, k, K)])]++;
      p.token[sz(row)] = t;
      p.slot[sz(row)] = k;
      p.row_of[at(t, k, K)] = row;
    }
  }
  return p;
}

void permute_rows(const MoePermutation& p, const float* in, int width, float* out) {
  for (int r = 0; r < p.rows(); ++r) std::copy_n(in + at(p.token[sz(r)], 0, width), width, out + at(r, 0, width));
}

void unpermute_add_rows(const MoePermutation& p, const float* in, int width, float* out) {
  for (int r = 0; r < p.rows(); ++r) {
    const float* src = in + at(r, 0, width);
    float* dst = out + at(p.token[sz(r)], 0, width);
    for (int j = 0; j < width; ++j) dst[j] += src[j];
  }
}

MoeForward moe_forward(const MoeConfig& c, const MoeWeights& w, const float* x, int tokens) {
  validate(c);
  check_weights(c, w);
  const int H = c.hidden, F = c.expert_ffn, S = c.shared_ffn, K = c.topk;
  MoeForward f;
  f.routing = route_tokens(c, w, x, tokens);
  f.permutation = permute_by_expert(f.routing);
  const MoePermutation& p = f.permutation;
  const int rows = p.rows();
  f.x_perm.resize(sz(rows) * sz(H));
  permute_rows(p, x, H, f.x_perm.data());
  f.up1.resize(sz(rows) * sz(F));
  f.up3.resize(sz(rows) * sz(F));
  f.act.resize(sz(rows) * sz(F));
  std::vector<float> weighted(sz(rows) * sz(F));
  std::vector<float> y_perm(sz(rows) * sz(H));
  // Grouped GEMMs: one contiguous block of rows per expert.
  for (int e = 0; e < c.experts; ++e) {
    const int r0 = p.offsets[sz(e)], n = p.counts[sz(e)];
    if (n == 0) continue;
    const float* w1 = w.w1.data() + sz(e) * sz(F) * sz(H);
    const float* w3 = w.w3.data() + sz(e) * sz(F) * sz(H);
    const float* w2 = w.w2.data() + sz(e) * sz(H) * sz(F);
    swiglu_up(n, H, F, f.x_perm.data() + at(r0, 0, H), w1, w3, f.up1.data() + at(r0, 0, F),
              f.up3.data() + at(r0, 0, F), f.act.data() + at(r0, 0, F));
    for (int r = r0; r < r0 + n; ++r) {
      const float g = f.routing.weights[at(p.token[sz(r)], p.slot[sz(r)], K)];
      for (int j = 0; j < F; ++j) weighted[at(r, j, F)] = g * f.act[at(r, j, F)];
    }
    gemm_nt(n, H, F, weighted.data() + at(r0, 0, F), F, w2, F, y_perm.data() + at(r0, 0, H), H);
  }
  f.y.assign(sz(tokens) * sz(H), 0.0f);
  unpermute_add_rows(p, y_perm.data(), H, f.y.data());
  if (S > 0) {
    f.shared_up1.resize(sz(tokens) * sz(S));
    f.shared_up3.resize(sz(tokens) * sz(S));
    f.shared_act.resize(sz(tokens) * sz(S));
    swiglu_up(tokens, H, S, x, w.shared_w1.data(), w.shared_w3.data(), f.shared_up1.data(), f.shared_up3.data(),
              f.shared_act.data());
    gemm_nt(tokens, H, S, f.shared_act.data(), S, w.shared_w2.data(), S, f.y.data(), H, true);
  }
  return f;
}

MoeGrads moe_backward(const MoeConfig& c, const MoeWeights& w, const float* x, const MoeForward& f,
                      const float* dy) {
  validate(c);
  check_weights(c, w);
  const int H = c.hidden, F = c.expert_ffn, S = c.shared_ffn, K = c.topk, E = c.experts;
  const int T = f.routing.tokens;
  const MoePermutation& p = f.permutation;
  const int rows = p.rows();
  MoeGrads g;
  g.dx.assign(sz(T) * sz(H), 0.0f);
  g.d_gate.assign(w.gate.size(), 0.0f);
  g.d_w1.assign(w.w1.size(), 0.0f);
  g.d_w3.assign(w.w3.size(), 0.0f);
  g.d_w2.assign(w.w2.size(), 0.0f);
  g.d_shared_w1.assign(w.shared_w1.size(), 0.0f);
  g.d_shared_w3.assign(w.shared_w3.size(), 0.0f);
  g.d_shared_w2.assign(w.shared_w2.size(), 0.0f);
  g.d_weights.assign(sz(T) * sz(K), 0.0f);
  g.d_logits.assign(sz(T) * sz(E), 0.0f);

  std::vector<float> dy_perm(sz(rows) * sz(H));
  permute_rows(p, dy, H, dy_perm.data());
  std::vector<float> dx_perm(sz(rows) * sz(H));
  std::vector<float> weighted(sz(F) * sz(rows));
  std::vector<float> d_weighted(sz(rows) * sz(F));
  for (int e = 0; e < E; ++e) {
    const int r0 = p.offsets[sz(e)], n = p.counts[sz(e)];
    if (n == 0) continue;
    const std::size_t wo = sz(e) * sz(F) * sz(H);
    const float* dyb = dy_perm.data() + at(r0, 0, H);
    // Routing-weighted SwiGLU output of this block (not saved by the forward).
    for (int r = r0; r < r0 + n; ++r) {
      const float gw = f.routing.weights[at(p.token[sz(r)], p.slot[sz(r)], K)];
      for (int j = 0; j < F; ++j) weighted[at(r, j, F)] = gw * f.act[at(r, j, F)];
    }
    // Down projection: y = weighted W2^T.
    gemm_tn(H, F, n, dyb, H, weighted.data() + at(r0, 0, F), F, g.d_w2.data() + wo, F, true);
    gemm_nn(n, F, H, dyb, H, w.w2.data() + wo, F, d_weighted.data() + at(r0, 0, F), F);
    // Routing weight: weighted = gw * act.
    std::vector<float> d_act(sz(n) * sz(F));
    for (int r = r0; r < r0 + n; ++r) {
      const std::size_t ts = at(p.token[sz(r)], p.slot[sz(r)], K);
      const float gw = f.routing.weights[ts];
      double dot = 0.0;
      for (int j = 0; j < F; ++j) {
        const float d = d_weighted[at(r, j, F)];
        dot += double(d) * double(f.act[at(r, j, F)]);
        d_act[at(r - r0, j, F)] = gw * d;
      }
      g.d_weights[ts] = static_cast<float>(dot);
    }
    swiglu_up_backward(n, H, F, f.x_perm.data() + at(r0, 0, H), w.w1.data() + wo, w.w3.data() + wo,
                       f.up1.data() + at(r0, 0, F), f.up3.data() + at(r0, 0, F), d_act.data(),
                       g.d_w1.data() + wo, g.d_w3.data() + wo, dx_perm.data() + at(r0, 0, H));
  }
  unpermute_add_rows(p, dx_perm.data(), H, g.dx.data());

  // Router: w_k = r s_k / sum_j s_j over the selected experts, s = sigmoid(logit).
  for (int t = 0; t < T; ++t) {
    const int* sel = f.routing.selected.data() + at(t, 0, K);
    const float* s = f.routing.scores.data() + at(t, 0, E);
    double sum = 0.0, dot = 0.0;
    for (int k = 0; k < K; ++k) {
      sum += s[sel[k]];
      dot += double(g.d_weights[at(t, k, K)]) * s[sel[k]];
    }
    for (int k = 0; k < K; ++k) {
      const double ds = c.route_scale * (double(g.d_weights[at(t, k, K)]) / sum - dot / (sum * sum));
      const double sk = s[sel[k]];
      g.d_logits[at(t, sel[k], E)] = static_cast<float>(ds * sk * (1.0 - sk));
    }
  }
  gemm_tn(E, H, T, g.d_logits.data(), E, x, H, g.d_gate.data(), H, true);
  gemm_nn(T, H, E, g.d_logits.data(), E, w.gate.data(), H, g.dx.data(), H, true);

  if (S > 0) {
    std::vector<float> d_act(sz(T) * sz(S));
    gemm_tn(H, S, T, dy, H, f.shared_act.data(), S, g.d_shared_w2.data(), S, true);
    gemm_nn(T, S, H, dy, H, w.shared_w2.data(), S, d_act.data(), S);
    std::vector<float> dxs(sz(T) * sz(H));
    swiglu_up_backward(T, H, S, x, w.shared_w1.data(), w.shared_w3.data(), f.shared_up1.data(),
                       f.shared_up3.data(), d_act.data(), g.d_shared_w1.data(), g.d_shared_w3.data(), dxs.data());
    for (std::size_t i = 0; i < dxs.size(); ++i) g.dx[i] += dxs[i];
  }
  return g;
}

}  // namespace trainsim::kernels
