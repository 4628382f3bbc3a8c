#include "trainsim/kernels/cpu_gemm.hpp"

#include <algorithm>

namespace trainsim::kernels {

void gemm_tiled(int m, int n, int k, const float* a, const float* b, float* c) {
  constexpr int T = kCpuGemmTile;
  alignas(64) float acc[T][T];
  for (int i0 = 0; i0 < m; i0 += T) {
    const int ti = std::min(T, m - i0);
    for (int j0 = 0; j0 < n; j0 += T) {
      const int tj = std::min(T, n - j0);
      for (int i = 0; i < ti; ++i)
        for (int j = 0; j < T; ++j) acc[i][j] = 0.0f;
      // The tile's accumulator stays in cache while K streams through it.
      for (int kk = 0; kk < k; ++kk) {
        const float* brow = b + static_cast<std::size_t>(kk) * static_cast<std::size_t>(n) + j0;
        for (int i = 0; i < ti; ++i) {
          const float av = a[static_cast<std::size_t>(i0 + i) * static_cast<std::size_t>(k) + kk];
          float* row = acc[i];
          for (int j = 0; j < tj; ++j) row[j] += av * brow[j];
        }
      }
      for (int i = 0; i < ti; ++i)
        std::copy(acc[i], acc[i] + tj, c + static_cast<std::size_t>(i0 + i) * static_cast<std::size_t>(n) + j0);
    }
  }
}

void stream_triad(float* a, const float* b, const float* c, float s, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) a[i] = b[i] + s * c[i];
}

}  // namespace trainsim::kernels
