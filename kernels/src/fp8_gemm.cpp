#include "trainsim/kernels/fp8_gemm.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace trainsim::kernels {
namespace {

std::size_t idx(int r, int c, int cols) {
  return static_cast<std::size_t>(r) * static_cast<std::size_t>(cols) + static_cast<std::size_t>(c);
}

// Column j of B as doubles (from the 256-entry decode table, optionally times
// the scale), so the inner loops walk contiguous memory.
std::vector<double> column(const QuantizedMatrix& b, int j, bool scaled, const double* table) {
  std::vector<double> col(static_cast<std::size_t>(b.rows));
  for (int k = 0; k < b.rows; ++k) {
    double v = table[b.code(k, j)];
    if (scaled) v *= static_cast<double>(b.scale(k, j));
    col[static_cast<std::size_t>(k)] = v;
  }
  return col;
}

}  // namespace

double round_to_mantissa_bits(double v, int mantissa_bits, AccumulatorRounding rounding) {
  if (v == 0.0 || !std::isfinite(v)) return v;
  int e = 0;
  const double f = std::frexp(v, &e);  // v = f * 2^e, |f| in [0.5, 1)
  // Significand as an integer with mantissa_bits + 1 bits.
  const double s = std::ldexp(f, mantissa_bits + 1);
  double r = 0.0;
  if (rounding == AccumulatorRounding::toward_zero) {
    r = std::trunc(s);
  } else {
    const double a = std::fabs(s);
    const double fl = std::floor(a);
    const double diff = a - fl;
    double n = fl;
    if (diff > 0.5 || (diff == 0.5 && std::fmod(fl, 2.0) != 0.0)) n = fl + 1.0;
    r = std::copysign(n, s);
  }
  return std::ldexp(r, e - mantissa_bits - 1);
}

std::vector<float> gemm_fp8(const QuantizedMatrix& a, const QuantizedMatrix& b, const Fp8GemmOptions& o) {
  if (a.cols != b.rows) {
    throw std::invalid_argument(fmt::format("gemm_fp8: A is {}x{} but B is {}x{}", a.rows, a.cols, b.rows, b.cols));
  }
  if (o.accumulator_mantissa_bits < 0 || o.accumulator_mantissa_bits > 52 || o.mma_k < 1 ||
      o.promotion_interval < 1) {
    throw std::invalid_argument(fmt::format("gemm_fp8: bad options (mantissa bits {}, mma_k {}, interval {})",
                                            o.accumulator_mantissa_bits, o.mma_k, o.promotion_interval));
  }
  const bool promoted = o.accumulation == Fp8Accumulation::promoted;
  if (promoted && (a.tile_cols % o.promotion_interval != 0 || b.tile_rows % o.promotion_interval != 0)) {
    throw std::invalid_argument(
        fmt::format("gemm_fp8: promotion interval {} straddles scale tiles (A tiles 1x{} along K, B tiles {} along K)",
                    o.promotion_interval, a.tile_cols, b.tile_rows));
  }
  const int M = a.rows, K = a.cols, N = b.cols;
  double table_a[256], table_b[256];
  for (int c = 0; c < 256; ++c) {
    table_a[c] = static_cast<double>(from_fp8(a.format, static_cast<std::uint8_t>(c)));
    table_b[c] = static_cast<double>(from_fp8(b.format, static_cast<std::uint8_t>(c)));
  }
  const auto limit = [&](double v) {
    return round_to_mantissa_bits(v, o.accumulator_mantissa_bits, o.accumulator_rounding);
  };
  // Limited accumulator over [k0, k1): exact sums of mma_k products, each
  // added to the running sum and rounded.
  const auto accumulate = [&](const double* arow, const double* bcol, int k0, int k1) {
    double acc = 0.0;
    for (int g = k0; g < k1; g += o.mma_k) {
      const int g1 = std::min(k1, g + o.mma_k);
      double s = 0.0;
      for (int k = g; k < g1; ++k) s += arow[k] * bcol[k];
      acc = limit(acc + s);
    }
    return acc;
  };

  std::vector<float> c(static_cast<std::size_t>(M) * static_cast<std::size_t>(N), 0.0f);
  std::vector<double> arow(static_cast<std::size_t>(K));
  std::vector<std::vector<double>> bcols(static_cast<std::size_t>(N));
  for (int j = 0; j < N; ++j) bcols[static_cast<std::size_t>(j)] = column(b, j, !promoted, table_b);
  for (int i = 0; i < M; ++i) {
    for (int k = 0; k < K; ++k) {
      double v = table_a[a.code(i, k)];
      if (!promoted) v *= static_cast<double>(a.scale(i, k));
      arow[static_cast<std::size_t>(k)] = v;
    }
    for (int j = 0; j < N; ++j) {
      const double* bcol = bcols[static_cast<std::size_t>(j)].data();
      float out = 0.0f;
      if (promoted) {
        for (int k0 = 0; k0 < K; k0 += o.promotion_interval) {
          const int k1 = std::min(K, k0 + o.promotion_interval);
          const float partial = static_cast<float>(accumulate(arow.data(), bcol, k0, k1));
          const float s = a.scale(i, k0) * b.scale(k0, j);
          out += s * partial;  // FP32 CUDA-core promotion
        }
      } else {
        out = static_cast<float>(accumulate(arow.data(), bcol, 0, K));
      }
      c[idx(i, j, N)] = out;
    }
  }
  return c;
}

std::vector<double> gemm_reference(std::span<const float> a, std::span<const float> b, int m, int k, int n) {
  if (m < 0 || k < 0 || n < 0 || a.size() != static_cast<std::size_t>(m) * static_cast<std::size_t>(k) ||
      b.size() != static_cast<std::size_t>(k) * static_cast<std::size_t>(n)) {
    throw std::invalid_argument(
        fmt::format("gemm_reference: sizes {} and {} do not match {}x{} * {}x{}", a.size(), b.size(), m, k, k, n));
  }
  std::vector<double> c(static_cast<std::size_t>(m) * static_cast<std::size_t>(n), 0.0);
  for (int i = 0; i < m; ++i) {
    for (int kk = 0; kk < k; ++kk) {
      const double av = static_cast<double>(a[idx(i, kk, k)]);
      for (int j = 0; j < n; ++j) c[idx(i, j, n)] += av * static_cast<double>(b[idx(kk, j, n)]);
    }
  }
  return c;
}

GemmError compare_to_reference(std::span<const float> c, std::span<const double> ref) {
  if (c.size() != ref.size()) {
    throw std::invalid_argument(fmt::format("compare_to_reference: {} vs {} entries", c.size(), ref.size()));
  }
  GemmError e;
  for (std::size_t i = 0; i < c.size(); ++i) {
    e.max_abs_error = std::max(e.max_abs_error, std::fabs(static_cast<double>(c[i]) - ref[i]));
    e.max_abs_reference = std::max(e.max_abs_reference, std::fabs(ref[i]));
  }
  if (e.max_abs_reference > 0.0) {
    e.max_relative_error = e.max_abs_error / e.max_abs_reference;
    for (std::size_t i = 0; i < c.size(); ++i) {
      if (std::fabs(ref[i]) >= 0.1 * e.max_abs_reference) {
        e.max_elementwise_relative_error = std::max(
            e.max_elementwise_relative_error, std::fabs(static_cast<double>(c[i]) - ref[i]) / std::fabs(ref[i]));
      }
    }
  }
  return e;
}

}  // namespace trainsim::kernels
