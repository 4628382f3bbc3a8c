#include "trainsim/kernels/tensor.hpp"

#include <algorithm>
#include <cstddef>
#include <vector>

namespace trainsim::kernels {
namespace {

constexpr int kBlockK = 128;
constexpr int kBlockN = 256;

std::size_t at(int r, int c, int ld) {
  return static_cast<std::size_t>(r) * static_cast<std::size_t>(ld) + static_cast<std::size_t>(c);
}

// c[0..n) += a * b[0..n)
inline void axpy(int n, float a, const float* __restrict b, float* __restrict c) {
  for (int j = 0; j < n; ++j) c[j] += a * b[j];
}

// Four C rows at once: each B row is loaded once and feeds four rows.
inline void axpy4(int n, float a0, float a1, float a2, float a3, const float* __restrict b, float* __restrict c0,
                  float* __restrict c1, float* __restrict c2, float* __restrict c3) {
  for (int j = 0; j < n; ++j) {
    const float bj = b[j];
    c0[j] += a0 * bj;
    c1[j] += a1 * bj;
    c2[j] += a2 * bj;
    c3[j] += a3 * bj;
  }
}

// Transposed copy: out (cols x rows, contiguous) = in^T (in is rows x cols, ld).
std::vector<float> transpose(int rows, int cols, const float* in, int ld) {
  std::vector<float> out(static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols));
  constexpr int T = 32;
  for (int r0 = 0; r0 < rows; r0 += T) {
    const int r1 = std::min(rows, r0 + T);
    for (int c0 = 0; c0 < cols; c0 += T) {
      const int c1 = std::min(cols, c0 + T);
      for (int r = r0; r < r1; ++r)
        for (int c = c0; c < c1; ++c) out[at(c, r, rows)] = in[at(r, c, ld)];
    }
  }
  return out;
}

}  // namespace

void gemm_nn(int m, int n, int k, const float* a, int lda, const float* b, int ldb, float* c, int ldc,
             bool accumulate) {
  if (m <= 0 || n <= 0) return;
  if (!accumulate) {
    for (int i = 0; i < m; ++i) std::fill_n(c + at(i, 0, ldc), n, 0.0f);
  }
  for (int j0 = 0; j0 < n; j0 += kBlockN) {
    const int jn = std::min(kBlockN, n - j0);
    for (int k0 = 0; k0 < k; k0 += kBlockK) {
      const int k1 = std::min(k, k0 + kBlockK);
      int i = 0;
      for (; i + 4 <= m; i += 4) {
        const float* a0 = a + at(i, 0, lda);
        const float* a1 = a0 + lda;
        const float* a2 = a1 + lda;
        const float* a3 = a2 + lda;
        float* c0 = c + at(i, j0, ldc);
        for (int kk = k0; kk < k1; ++kk) {
          axpy4(jn, a0[kk], a1[kk], a2[kk], a3[kk], b + at(kk, j0, ldb), c0, c0 + ldc, c0 + 2 * ldc, c0 + 3 * ldc);
        }
      }
      for (; i < m; ++i) {
        const float* ar = a + at(i, 0, lda);
        float* cr = c + at(i, j0, ldc);
        for (int kk = k0; kk < k1; ++kk) axpy(jn, ar[kk], b + at(kk, j0, ldb), cr);
      }
    }
  }
}

void gemm_nt(int m, int n, int k, const float* a, int lda, const float* b, int ldb, float* c, int ldc,
             bool accumulate) {
  if (m <= 0 || n <= 0) return;
  const std::vector<float> bt = transpose(n, k, b, ldb);  // k x n
  gemm_nn(m, n, k, a, lda, bt.data(), n, c, ldc, accumulate);
}

void gemm_tn(int m, int n, int k, const float* a, int lda, const float* b, int ldb, float* c, int ldc,
             bool accumulate) {
  if (m <= 0 || n <= 0) return;
  const std::vector<float> at_ = transpose(k, m, a, lda);  // m x k
  gemm_nn(m, n, k, at_.data(), k, b, ldb, c, ldc, accumulate);
}

}  // namespace trainsim::kernels
