#pragma once
// Fitting helpers shared by the calibration front ends (import of published
// tables, local CPU measurements). Internal to calibrate/.
#include <Eigen/Dense>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <optional>
#include <string>
#include <utility>
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

// ---- Checked fits: rank, conditioning and undetermined parameters ----
//
// Every fit is t_i ~ x_i . c, solved for relative error (rows x_i / t_i,
// targets 1). Before trusting c, the design matrix is checked: its columns are
// scaled to unit length (so the parameters' units do not matter) and its
// singular values give the condition number (largest / smallest) and the
// rank (singular values above kRankTolerance x the largest). A direction of
// parameter space with a singular value below the tolerance is one the data
// cannot see (e.g. every point has the same K, so the per-wave time alpha and
// the per-K time beta only appear as alpha + K beta): the parameters with a
// large share (> kNullShare) of such a direction are undetermined. Each of
// those with a documented prior is fixed to it, in the caller's order, until
// the rest is full rank, and the rest is refitted; one without a prior keeps
// the minimum-norm solution. The fit block then records rank, condition
// number, the undetermined parameters and which priors were used, and the
// caller turns that into a warning. A full-rank fit is solved exactly as
// before (column-pivoting QR), so its coefficients do not change.
//
// Physical floors. A prior marked `floor` is also the parameter's least
// physical value (a duration cannot be negative). Noisy timings can pull a
// least-squares intercept below it (seen: a CPU GEMM fit under a sanitizer
// and a loaded machine gave t0 = -1.2 ms); such a parameter is fixed at its
// floor and the rest refitted, one parameter at a time in parameter order,
// until none is below (an active-set step of bounded least squares). The fit
// block lists them under "below_floor" with the value the free fit gave, and
// the warning says so.

// 1e-9: far above double rounding (1e-16) of exactly dependent columns, far
// below the smallest singular value of any fit of distinct shapes seen here
// (about 1e-3 after scaling).
inline constexpr double kRankTolerance = 1e-9;
inline constexpr double kNullShare = 0.1;
// Above this condition number (after column scaling) a 1% measurement noise can
// move the coefficients by 100% or more: the fit is reported as poorly conditioned.
inline constexpr double kWarnCondition = 1e4;

struct Prior {
  double value = 0;
  std::string why;
  bool floor = false;  // the value is also the least physical one (see "Physical floors")
};

struct FitCheck {
  int parameters = 0;
  int rank = 0;
  double condition = 0;                  // of the column-scaled design matrix
  std::vector<std::string> undetermined;  // parameters the data cannot determine
  std::vector<std::pair<std::string, Prior>> priors;  // the undetermined parameters fixed to a prior
  bool resolved = true;  // false when some undetermined parameter had no prior to fix it
  struct Floored {
    std::string name;
    double free_fit = 0;  // the value the fit gave before the floor held it
    Prior floor;
  };
  std::vector<Floored> below_floor;  // parameters a free fit put below their floor
  bool poorly_conditioned() const { return condition > kWarnCondition; }
  // The "rank" part of a profile's fit block.
  nlohmann::json to_json() const {
    nlohmann::json j = {{"parameters", parameters}, {"rank", rank},
                        {"condition_number", std::isfinite(condition) ? nlohmann::json(condition) : nlohmann::json(nullptr)},
                        {"undetermined", undetermined}, {"fixed_to_prior", priors_json()}};
    // Only when it happened, so profiles of sound fits keep their bytes.
    if (!below_floor.empty()) {
      j["below_floor"] = nlohmann::json::object();
      for (const auto& b : below_floor)
        j["below_floor"][b.name] = {{"free_fit", b.free_fit}, {"fixed_at", b.floor.value}, {"why", b.floor.why}};
    }
    return j;
  }
  nlohmann::json priors_json() const {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& [name, p] : priors) j[name] = {{"value", p.value}, {"why", p.why}};
    return j;
  }
  // One line for stderr, empty when the fit is sound.
  std::string warning(const std::string& what) const;
  std::string rank_warning(const std::string& what) const;  // the rank and conditioning part
};

template <int N>
struct CheckedFit {
  Eigen::Matrix<double, N, 1> c;
  FitCheck check;
};

// Singular values of `a` with its columns scaled to unit length, and the right
// singular vectors.
inline Eigen::JacobiSVD<Eigen::MatrixXd> scaled_svd(const Eigen::MatrixXd& a) {
  Eigen::MatrixXd s = a;
  for (Eigen::Index j = 0; j < s.cols(); ++j) {
    const double n = s.col(j).norm();
    if (n > 0) s.col(j) /= n;
  }
  return Eigen::JacobiSVD<Eigen::MatrixXd>(s, Eigen::ComputeFullV);
}

// Indices of the columns of `a` in null directions of its scaled SVD.
inline std::vector<int> null_columns(const Eigen::MatrixXd& a) {
  const auto svd = scaled_svd(a);
  const auto& sv = svd.singularValues();
  std::vector<int> out;
  for (Eigen::Index i = 0; i < sv.size(); ++i) {
    if (sv(i) > kRankTolerance * sv(0)) continue;
    for (Eigen::Index j = 0; j < a.cols(); ++j)
      if (std::abs(svd.matrixV()(j, i)) > kNullShare && std::find(out.begin(), out.end(), j) == out.end())
        out.push_back(static_cast<int>(j));
  }
  // Columns past the number of rows are undetermined too (fewer points than parameters).
  for (Eigen::Index j = sv.size(); j < a.cols(); ++j)
    if (std::find(out.begin(), out.end(), j) == out.end()) out.push_back(static_cast<int>(j));
  std::sort(out.begin(), out.end());
  return out;
}

// The columns of `a` at `cols`.
inline Eigen::MatrixXd columns(const Eigen::MatrixXd& a, const std::vector<int>& cols) {
  Eigen::MatrixXd sub(a.rows(), static_cast<Eigen::Index>(cols.size()));
  for (std::size_t k = 0; k < cols.size(); ++k) sub.col(static_cast<Eigen::Index>(k)) = a.col(cols[k]);
  return sub;
}

// 0..n-1 without `fixed`.
inline std::vector<int> free_columns(int n, const std::vector<int>& fixed) {
  std::vector<int> free;
  for (int k = 0; k < n; ++k)
    if (std::find(fixed.begin(), fixed.end(), k) == fixed.end()) free.push_back(k);
  return free;
}

// The undetermined columns (`null`) fixed to their priors, in order, until the
// rest is full rank.
template <int N>
std::vector<int> columns_to_fix(const Eigen::MatrixXd& a, const std::vector<int>& null,
                                const std::array<std::optional<Prior>, N>& priors) {
  std::vector<int> fixed;
  for (int j : null) {
    if (!priors[static_cast<std::size_t>(j)]) continue;
    fixed.push_back(j);
    if (null_columns(columns(a, free_columns(N, fixed))).empty()) break;
  }
  return fixed;
}

// c with the `fixed` parameters at their priors and the rest the
// minimum-norm least-squares fit of what remains.
template <int N>
Eigen::Matrix<double, N, 1> solve_with_fixed(const Eigen::MatrixXd& a, const std::vector<int>& fixed,
                                             const std::array<std::optional<Prior>, N>& priors) {
  Eigen::Matrix<double, N, 1> c;
  Eigen::VectorXd y = Eigen::VectorXd::Ones(a.rows());
  for (int j : fixed) {
    c(j) = priors[static_cast<std::size_t>(j)]->value;
    y -= a.col(j) * c(j);
  }
  const std::vector<int> free = free_columns(N, fixed);
  const Eigen::VectorXd cs = columns(a, free).completeOrthogonalDecomposition().solve(y);
  for (std::size_t k = 0; k < free.size(); ++k) c(free[k]) = cs(static_cast<Eigen::Index>(k));
  return c;
}

// Physical floors (see above): the first free parameter below its floor is
// fixed there and the rest refitted, until none is below.
template <int N>
void apply_floors(const Eigen::MatrixXd& a, std::vector<int>& fixed, const std::array<const char*, N>& names,
                  const std::array<std::optional<Prior>, N>& priors, CheckedFit<N>& f) {
  for (;;) {
    int below = -1;
    for (int j : free_columns(N, fixed)) {
      const auto& p = priors[static_cast<std::size_t>(j)];
      if (p && p->floor && f.c(j) < p->value) {
        below = j;
        break;
      }
    }
    if (below < 0) return;
    f.check.below_floor.push_back({names[static_cast<std::size_t>(below)], f.c(below), *priors[static_cast<std::size_t>(below)]});
    fixed.push_back(below);
    f.c = solve_with_fixed<N>(a, fixed, priors);
  }
}

// Weighted least squares minimising relative error, checked as described above.
// names[j] is parameter j's key in the profile; priors[j] its fallback, if any.
template <int N>
CheckedFit<N> fit_relative_checked(const std::vector<Eigen::Matrix<double, N, 1>>& x, const std::vector<double>& t,
                                   const std::array<const char*, N>& names,
                                   const std::array<std::optional<Prior>, N>& priors = {}) {
  const auto rows = static_cast<Eigen::Index>(x.size());
  Eigen::MatrixXd a(rows, N);
  for (Eigen::Index i = 0; i < rows; ++i) a.row(i) = x[static_cast<std::size_t>(i)].transpose() / t[static_cast<std::size_t>(i)];
  CheckedFit<N> f;
  f.check.parameters = N;
  const auto svd = scaled_svd(a);
  const auto& sv = svd.singularValues();
  f.check.rank = static_cast<int>((sv.array() > kRankTolerance * sv(0)).count());
  f.check.condition = sv.size() < N ? INFINITY : sv(0) / sv(sv.size() - 1);  // inf: exactly singular
  const std::vector<int> null = null_columns(a);
  for (int j : null) f.check.undetermined.push_back(names[static_cast<std::size_t>(j)]);
  std::vector<int> fixed;
  if (null.empty()) {
    f.c = a.colPivHouseholderQr().solve(Eigen::VectorXd::Ones(rows));
  } else {
    fixed = columns_to_fix<N>(a, null, priors);
    for (int j : fixed) f.check.priors.emplace_back(names[static_cast<std::size_t>(j)], *priors[static_cast<std::size_t>(j)]);
    f.check.resolved = null_columns(columns(a, free_columns(N, fixed))).empty();
    // Parameters still undetermined (no prior) get the smallest coefficients that fit.
    f.c = solve_with_fixed<N>(a, fixed, priors);
  }
  apply_floors<N>(a, fixed, names, priors, f);
  return f;
}

inline std::string FitCheck::warning(const std::string& what) const {
  std::string w = rank_warning(what);
  if (below_floor.empty()) return w;
  w += (w.empty() ? what + ": " : "; ");
  w += "below the physical floor, fixed there and the rest refitted:";
  for (const auto& b : below_floor)
    w += " " + b.name + " = " + nlohmann::json(b.free_fit).dump() + " -> " + nlohmann::json(b.floor.value).dump() +
         " (" + b.floor.why + ")";
  return w;
}

inline std::string FitCheck::rank_warning(const std::string& what) const {
  std::string w;
  if (!undetermined.empty()) {
    w = what + ": the data cannot determine ";
    for (std::size_t i = 0; i < undetermined.size(); ++i) w += (i ? ", " : "") + undetermined[i];
    w += " (rank " + std::to_string(rank) + " of " + std::to_string(parameters) + ")";
    if (!priors.empty()) {
      w += "; fixed to prior:";
      for (const auto& [name, p] : priors) w += " " + name + " = " + nlohmann::json(p.value).dump() + " (" + p.why + ")";
    }
    w += resolved ? "; the others refitted" : "; without a prior, the rest keep the minimum-norm solution";
  } else if (poorly_conditioned()) {
    w = what + ": poorly conditioned fit (condition number " + nlohmann::json(condition).dump() +
        " > 1e4): its coefficients are uncertain; predictions near the measured shapes are not";
  }
  return w;
}

// The non-empty warnings of named fits, for a profile's "warnings" array
// (printed on stderr by `trainsim calibrate`).
inline nlohmann::json fit_warnings(const std::vector<std::pair<std::string, FitCheck>>& fits) {
  nlohmann::json w = nlohmann::json::array();
  for (const auto& [name, check] : fits)
    if (std::string s = check.warning(name); !s.empty()) w.push_back(s);
  return w;
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace trainsim::calibrate::detail
