#pragma once
// Fitting helpers shared by the calibration front ends (import of published
// tables, local CPU measurements). Internal to calibrate/.
#include <Eigen/Dense>

#include <algorithm>
#include <vector>

namespace trainsim::calibrate::detail {

inline long long ceil_div(long long a, long long b) { return (a + b - 1) / b; }

// Tiling of the GEMM kernel being modelled.
struct Tiling {
  int tile_m = 128;        // output tile height
  int small_tile_m = 64;   // height used when M <= small_tile_m
  int tile_n = 128;        // output tile width
  bool partial_tiles = false;  // edge tiles cost only their real work (CPU)
};

// Regressors of the wave model t = t0 + waves * (alpha + beta * K * tm / tile_m)
// (the model of hw::KernelTimer::gemm): (1, waves, waves * K * tm / tile_m).
inline Eigen::Vector3d wave_features(long long m, long long n, long long k, long long groups, int sms,
                                     const Tiling& t) {
  const long long tm = m <= t.small_tile_m ? t.small_tile_m : t.tile_m;
  const long long waves = ceil_div(groups * ceil_div(m, tm) * ceil_div(n, t.tile_n), sms);
  if (t.partial_tiles)
    return Eigen::Vector3d(1.0, static_cast<double>(waves),
                           static_cast<double>(groups) * static_cast<double>(m) * static_cast<double>(n) /
                               (static_cast<double>(t.tile_m) * t.tile_n * sms) * static_cast<double>(k));
  return Eigen::Vector3d(1.0, static_cast<double>(waves),
                         static_cast<double>(waves) * static_cast<double>(k) * static_cast<double>(tm) / t.tile_m);
}

// Weighted least squares minimising relative error: rows x_i / t_i, targets 1.
template <int N>
Eigen::Matrix<double, N, 1> fit_relative(const std::vector<Eigen::Matrix<double, N, 1>>& x, const std::vector<double>& t) {
  Eigen::MatrixXd A(static_cast<Eigen::Index>(x.size()), N);
  Eigen::VectorXd y = Eigen::VectorXd::Ones(static_cast<Eigen::Index>(x.size()));
  for (std::size_t i = 0; i < x.size(); ++i) A.row(static_cast<Eigen::Index>(i)) = x[i].transpose() / t[i];
  return A.colPivHouseholderQr().solve(y);
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace trainsim::calibrate::detail
