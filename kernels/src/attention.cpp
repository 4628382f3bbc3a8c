#include "trainsim/kernels/attention.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <stdexcept>

#include "trainsim/kernels/tensor.hpp"

namespace trainsim::kernels {
namespace {

constexpr int kBlockQ = 64;

std::size_t sz(long long v) { return static_cast<std::size_t>(v); }

// Keys visible to query rows [i0, i1).
int visible_keys(const AttentionShape& s, int i1) { return s.causal ? i1 : s.seq; }

// Copy head h of a seq x heads x d tensor into a contiguous seq x d matrix.
void gather_head(const float* x, int seq, int heads, int d, int h, float* out) {
  for (int i = 0; i < seq; ++i) std::copy_n(x + (sz(i) * sz(heads) + sz(h)) * sz(d), d, out + sz(i) * sz(d));
}

// Head h of a seq x heads x d tensor, transposed: d x seq, contiguous.
void gather_head_transposed(const float* x, int seq, int heads, int d, int h, float* out) {
  for (int i = 0; i < seq; ++i) {
    const float* src = x + (sz(i) * sz(heads) + sz(h)) * sz(d);
    for (int c = 0; c < d; ++c) out[sz(c) * sz(seq) + sz(i)] = src[c];
  }
}

// P for query rows [i0, i0 + rows) from S (rows x nk, already scaled): masked
// entries become 0. With lse == nullptr the row softmax is computed and the
// LSE written to lse_out; otherwise P = exp(S - lse).
void softmax_rows(const AttentionShape& s, int i0, int rows, int nk, float* p, const float* lse, float* lse_out) {
  for (int r = 0; r < rows; ++r) {
    float* row = p + sz(r) * sz(nk);
    const int n = s.causal ? i0 + r + 1 : nk;  // visible keys of this row
    if (lse) {
      const float l = lse[r];
      for (int j = 0; j < n; ++j) row[j] = std::exp(row[j] - l);
    } else {
      float mx = row[0];
      for (int j = 1; j < n; ++j) mx = std::max(mx, row[j]);
      double sum = 0.0;
      for (int j = 0; j < n; ++j) {
        row[j] = std::exp(row[j] - mx);
        sum += row[j];
      }
      const float inv = static_cast<float>(1.0 / sum);
      for (int j = 0; j < n; ++j) row[j] *= inv;
      lse_out[r] = mx + static_cast<float>(std::log(sum));
    }
    std::fill(row + n, row + nk, 0.0f);
  }
}

}  // namespace

void validate(const AttentionShape& s) {
  if (s.seq <= 0 || s.heads <= 0 || s.dqk <= 0 || s.dv <= 0) {
    throw std::invalid_argument(
        fmt::format("attention: sizes must be positive (seq {}, heads {}, dqk {}, dv {})", s.seq, s.heads, s.dqk, s.dv));
  }
  if (!std::isfinite(s.scale) || s.scale == 0.0f) {
    throw std::invalid_argument("attention: softmax scale must be finite and non-zero");
  }
}

AttentionForward attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v) {
  validate(s);
  const int N = s.seq, Hn = s.heads, Dq = s.dqk, Dv = s.dv;
  const int ldq = Hn * Dq, ldv = Hn * Dv;
  AttentionForward f;
  f.o.assign(sz(N) * sz(ldv), 0.0f);
  f.lse.assign(sz(Hn) * sz(N), 0.0f);
  std::vector<float> kt(sz(Dq) * sz(N));  // K_h^T, so that S = Q_b K^T is an i-k-j GEMM
  std::vector<float> sc(sz(kBlockQ) * sz(N));
  for (int h = 0; h < Hn; ++h) {
    gather_head_transposed(k, N, Hn, Dq, h, kt.data());
    for (int i0 = 0; i0 < N; i0 += kBlockQ) {
      const int rows = std::min(kBlockQ, N - i0);
      const int nk = visible_keys(s, i0 + rows);
      const float* qb = q + sz(i0) * sz(ldq) + sz(h) * sz(Dq);
      gemm_nn(rows, nk, Dq, qb, ldq, kt.data(), N, sc.data(), nk);
      for (std::size_t i = 0; i < sz(rows) * sz(nk); ++i) sc[i] *= s.scale;
      softmax_rows(s, i0, rows, nk, sc.data(), nullptr, f.lse.data() + sz(h) * sz(N) + sz(i0));
      gemm_nn(rows, Dv, nk, sc.data(), nk, v + sz(h) * sz(Dv), ldv, f.o.data() + sz(i0) * sz(ldv) + sz(h) * sz(Dv),
              ldv);
    }
  }
  return f;
}

AttentionGrads attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v,
                                  const float* o, const float* lse, const float* d_o) {
  validate(s);
  const int N = s.seq, Hn = s.heads, Dq = s.dqk, Dv = s.dv;
  const int ldq = Hn * Dq, ldv = Hn * Dv;
  AttentionGrads g;
  g.dq.assign(sz(N) * sz(ldq), 0.0f);
  g.dk.assign(sz(N) * sz(ldq), 0.0f);
  g.dv.assign(sz(N) * sz(ldv), 0.0f);
  std::vector<float> kh(sz(N) * sz(Dq)), kt(sz(Dq) * sz(N)), vt(sz(Dv) * sz(N));
  std::vector<float> dkh(sz(N) * sz(Dq)), dvh(sz(N) * sz(Dv));
  std::vector<float> p(sz(kBlockQ) * sz(N)), dp(sz(kBlockQ) * sz(N));
  std::vector<float> drow(sz(kBlockQ));
  for (int h = 0; h < Hn; ++h) {
    gather_head(k, N, Hn, Dq, h, kh.data());
    gather_head_transposed(k, N, Hn, Dq, h, kt.data());
    gather_head_transposed(v, N, Hn, Dv, h, vt.data());
    std::fill(dkh.begin(), dkh.end(), 0.0f);
    std::fill(dvh.begin(), dvh.end(), 0.0f);
    for (int i0 = 0; i0 < N; i0 += kBlockQ) {
      const int rows = std::min(kBlockQ, N - i0);
      const int nk = visible_keys(s, i0 + rows);
      const float* qb = q + sz(i0) * sz(ldq) + sz(h) * sz(Dq);
      const float* ob = o + sz(i0) * sz(ldv) + sz(h) * sz(Dv);
      const float* dob = d_o + sz(i0) * sz(ldv) + sz(h) * sz(Dv);
      // P = exp(scale * Q K^T - LSE), masked.
      gemm_nn(rows, nk, Dq, qb, ldq, kt.data(), N, p.data(), nk);
      for (std::size_t i = 0; i < sz(rows) * sz(nk); ++i) p[i] *= s.scale;
      softmax_rows(s, i0, rows, nk, p.data(), lse + sz(h) * sz(N) + sz(i0), nullptr);
      // D = rowsum(dO * O).
      for (int r = 0; r < rows; ++r) {
        double d = 0.0;
        for (int j = 0; j < Dv; ++j) d += double(dob[sz(r) * sz(ldv) + sz(j)]) * ob[sz(r) * sz(ldv) + sz(j)];
        drow[sz(r)] = static_cast<float>(d);
      }
      // dV += P^T dO.
      gemm_tn(nk, Dv, rows, p.data(), nk, dob, ldv, dvh.data(), Dv, true);
      // dP = dO V^T; dS = P * (dP - D) * scale (scale folded in here).
      gemm_nn(rows, nk, Dv, dob, ldv, vt.data(), N, dp.data(), nk);
      for (int r = 0; r < rows; ++r) {
        float* dpr = dp.data() + sz(r) * sz(nk);
        const float* pr = p.data() + sz(r) * sz(nk);
        for (int j = 0; j < nk; ++j) dpr[j] = pr[j] * (dpr[j] - drow[sz(r)]) * s.scale;
      }
      // dQ = dS K; dK += dS^T Q.
      gemm_nn(rows, Dq, nk, dp.data(), nk, kh.data(), Dq, g.dq.data() + sz(i0) * sz(ldq) + sz(h) * sz(Dq), ldq);
      gemm_tn(nk, Dq, rows, dp.data(), nk, qb, ldq, dkh.data(), Dq, true);
    }
    for (int i = 0; i < N; ++i) {
      std::copy_n(dkh.data() + sz(i) * sz(Dq), Dq, g.dk.data() + sz(i) * sz(ldq) + sz(h) * sz(Dq));
      std::copy_n(dvh.data() + sz(i) * sz(Dv), Dv, g.dv.data() + sz(i) * sz(ldv) + sz(h) * sz(Dv));
    }
  }
  return g;
}

void apply_rope(float* x, int seq, int heads, int head_dim, int rope_offset, int rope_dim, double theta,
                int position_offset, bool inverse) {
  if (rope_dim % 2 != 0 || rope_offset < 0 || rope_dim < 0 || rope_offset + rope_dim > head_dim) {
    throw std::invalid_argument(fmt::format("apply_rope: bad rope range [{}, {}) of head dim {}", rope_offset,
                                            rope_offset + rope_dim, head_dim));
  }
  const int pairs = rope_dim / 2;
  std::vector<double> freq(sz(pairs));
  for (int i = 0; i < pairs; ++i) freq[sz(i)] = std::pow(theta, -2.0 * i / rope_dim);
  for (int t = 0; t < seq; ++t) {
    const double pos = double(position_offset + t);
    for (int i = 0; i < pairs; ++i) {
      const double ang = pos * freq[sz(i)] * (inverse ? -1.0 : 1.0);
      const float c = static_cast<float>(std::cos(ang)), sn = static_cast<float>(std::sin(ang));
      for (int h = 0; h < heads; ++h) {
        float* e = x + (sz(t) * sz(heads) + sz(h)) * sz(head_dim) + sz(rope_offset) + 2 * sz(i);
        const float a = e[0], b = e[1];
        e[0] = a * c - b * sn;
        e[1] = a * sn + b * c;
      }
    }
  }
}

}  // namespace trainsim::kernels
