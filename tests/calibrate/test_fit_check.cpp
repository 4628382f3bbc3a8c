// Rank and conditioning checks of the calibration fits (calibrate/src/fit.hpp):
// a full-rank fit recovers its coefficients and says nothing; a fit whose
// points cannot separate two parameters says which, fixes the one with a
// prior and refits the rest; without a prior it keeps the minimum-norm
// solution and says so.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "../../calibrate/src/fit.hpp"
#include "trainsim/calibrate/import.hpp"
#include "trainsim/common/embedded_data.hpp"
#include "trainsim/common/json_reader.hpp"

using namespace trainsim;
using calibrate::detail::CheckedFit;
using calibrate::detail::fit_relative_checked;
using calibrate::detail::Prior;

namespace {

// Exact times of the wave model t = t0 + w alpha + w K beta at (waves, K) points.
struct Points {
  std::vector<Eigen::Vector3d> x;
  std::vector<double> t;
};
Points wave_points(const std::vector<std::pair<double, double>>& waves_k, double t0, double alpha, double beta) {
  Points p;
  for (const auto& [w, k] : waves_k) {
    p.x.emplace_back(1.0, w, w * k);
    p.t.push_back(t0 + w * alpha + w * k * beta);
  }
  return p;
}
constexpr std::array<const char*, 3> kNames{"t0_s", "alpha_s", "beta_s"};

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("a full-rank fit recovers its coefficients and reports rank 3, no warning") {
  // Four (waves, K) points with two K values: the columns 1, w, w K are independent.
  const Points p = wave_points({{1, 512}, {2, 512}, {1, 4096}, {3, 4096}}, 2e-6, 1.5e-6, 3e-9);
  const CheckedFit<3> f = fit_relative_checked<3>(p.x, p.t, kNames);
  CHECK(f.check.rank == 3);
  CHECK(f.check.undetermined.empty());
  CHECK(f.check.priors.empty());
  CHECK(f.check.condition < calibrate::detail::kWarnCondition);
  CHECK(f.c(0) == doctest::Approx(2e-6).epsilon(1e-9));
  CHECK(f.c(1) == doctest::Approx(1.5e-6).epsilon(1e-9));
  CHECK(f.c(2) == doctest::Approx(3e-9).epsilon(1e-9));
  CHECK(f.check.warning("gemm").empty());
  const nlohmann::json j = f.check.to_json();
  CHECK(j["rank"] == 3);
  CHECK(j["undetermined"].empty());
}

TEST_CASE("one K for every point: alpha and beta are undetermined, alpha is fixed to its prior") {
  // All K = 4096: the w and w K columns are proportional (w K = 4096 w), rank 2.
  // The data fix only t0 and alpha + 4096 beta = 1.5e-6 + 4096 * 3e-9 = 13.788e-6.
  const Points p = wave_points({{1, 4096}, {2, 4096}, {5, 4096}, {7, 4096}}, 2e-6, 1.5e-6, 3e-9);
  SUBCASE("with a prior for alpha") {
    const CheckedFit<3> f =
        fit_relative_checked<3>(p.x, p.t, kNames, {std::nullopt, Prior{1e-6, "test prior"}, std::nullopt});
    CHECK(f.check.rank == 2);
    CHECK(f.check.undetermined == std::vector<std::string>{"alpha_s", "beta_s"});
    REQUIRE(f.check.priors.size() == 1);
    CHECK(f.check.priors[0].first == "alpha_s");
    CHECK(f.check.resolved);
    CHECK(f.c(0) == doctest::Approx(2e-6).epsilon(1e-9));
    CHECK(f.c(1) == 1e-6);
    // beta = (13.788e-6 - 1e-6) / 4096
    CHECK(f.c(2) == doctest::Approx((13.788e-6 - 1e-6) / 4096).epsilon(1e-9));
    const std::string w = f.check.warning("gemm_fp8_wgrad");
    CHECK(w.find("cannot determine alpha_s, beta_s (rank 2 of 3)") != std::string::npos);
    CHECK(w.find("fixed to prior: alpha_s") != std::string::npos);
    CHECK(w.find("test prior") != std::string::npos);
    CHECK(f.check.to_json()["fixed_to_prior"]["alpha_s"]["value"] == 1e-6);
    CHECK(f.check.to_json()["condition_number"].is_null() == false);
  }
  SUBCASE("without a prior: minimum-norm solution, said so") {
    const CheckedFit<3> f = fit_relative_checked<3>(p.x, p.t, kNames);
    CHECK(f.check.rank == 2);
    CHECK_FALSE(f.check.resolved);
    // Still reproduces the measured points.
    for (std::size_t i = 0; i < p.t.size(); ++i) CHECK(p.x[i].dot(f.c) == doctest::Approx(p.t[i]).epsilon(1e-9));
    CHECK(f.check.warning("fit").find("minimum-norm") != std::string::npos);
  }
}

TEST_CASE("fewer points than parameters: the extra parameters are undetermined") {
  const Points p = wave_points({{1, 512}, {2, 4096}}, 2e-6, 1.5e-6, 3e-9);
  const CheckedFit<3> f = fit_relative_checked<3>(p.x, p.t, kNames);
  CHECK(f.check.rank == 2);
  CHECK_FALSE(f.check.undetermined.empty());
  CHECK_FALSE(f.check.warning("fit").empty());
}

TEST_CASE("a free fit below a physical floor is held there and the rest refitted") {
  // Exact points of t = -1 + 2 k (k = 1, 2, 3: t = 1, 3, 5). The free fit
  // recovers t0 = -1, slope 2; a duration cannot be negative, so with t0's
  // floor at 0 the fit is t = s k with s minimising sum (s k_i / t_i - 1)^2:
  // s = sum(k/t) / sum((k/t)^2) = (1 + 2/3 + 3/5) / (1 + 4/9 + 9/25)
  //   = 2.266667 / 1.804444 = 1.256158.
  std::vector<Eigen::Vector2d> x{{1, 1}, {1, 2}, {1, 3}};
  const std::vector<double> t{1, 3, 5};
  const std::array<const char*, 2> names{"t0_s", "s_per_k"};
  SUBCASE("without a floor: the free fit") {
    const auto f = fit_relative_checked<2>(x, t, names, {Prior{0.0, "no fixed time"}, std::nullopt});
    CHECK(f.c(0) == doctest::Approx(-1.0).epsilon(1e-12));
    CHECK(f.check.below_floor.empty());
    CHECK(f.check.warning("fit").empty());
    CHECK_FALSE(f.check.to_json().contains("below_floor"));
  }
  SUBCASE("with the floor") {
    const auto f = fit_relative_checked<2>(x, t, names, {Prior{0.0, "no fixed time", true}, std::nullopt});
    CHECK(f.c(0) == 0.0);
    CHECK(f.c(1) == doctest::Approx((1 + 2.0 / 3 + 3.0 / 5) / (1 + 4.0 / 9 + 9.0 / 25)).epsilon(1e-12));
    REQUIRE(f.check.below_floor.size() == 1);
    CHECK(f.check.below_floor[0].name == "t0_s");
    CHECK(f.check.below_floor[0].free_fit == doctest::Approx(-1.0).epsilon(1e-12));
    CHECK(f.check.rank == 2);  // the data determined t0; the floor, not the rank, fixed it
    CHECK(f.check.priors.empty());
    const std::string w = f.check.warning("gemm");
    CHECK(w.find("gemm: below the physical floor") == 0);
    CHECK(w.find("t0_s = -1") != std::string::npos);
    CHECK(f.check.to_json()["below_floor"]["t0_s"]["fixed_at"] == 0.0);
  }
  SUBCASE("a floor the fit respects changes nothing") {
    const std::vector<double> t_up{3, 5, 7};  // t = 1 + 2 k
    const auto f = fit_relative_checked<2>(x, t_up, names, {Prior{0.0, "no fixed time", true}, std::nullopt});
    CHECK(f.c(0) == doctest::Approx(1.0).epsilon(1e-12));
    CHECK(f.check.below_floor.empty());
  }
}

TEST_CASE("the published H800 tables: the forward fit is full rank, the weight-gradient fit is not") {
  const Json tables = parse_json_text(std::string(*embedded_file("calibration/h800-published-tables.json")),
                                      "h800-published-tables.json");
  const Json p = calibrate::import_published_tables(tables, "tables.json");
  const auto& fwd = p["gemm_fp8"]["fit"]["conditioning"];
  CHECK(fwd["rank"] == 3);
  CHECK(fwd["undetermined"].empty());
  // All seven weight-gradient points have K = 4096 tokens.
  const auto& wg = p["gemm_fp8_wgrad"]["fit"]["conditioning"];
  CHECK(wg["rank"] == 2);
  CHECK(wg["undetermined"] == nlohmann::json::array({"alpha_s", "beta_s"}));
  CHECK(wg["fixed_to_prior"].contains("alpha_s"));
  // alpha is the forward fit's, so alpha is no longer 0 and the profile says why.
  CHECK(p["gemm_fp8_wgrad"]["alpha_us"].get<double>() == p["gemm_fp8"]["alpha_us"].get<double>());
  REQUIRE(p["warnings"].size() == 1);
  CHECK(p["warnings"][0].get<std::string>().find("gemm_fp8_wgrad") == 0);
}
}

TEST_SUITE("golden") {
TEST_CASE("CLI: calibrate --import warns on stderr about the undetermined weight-gradient parameters") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(TRAINSIM_BINARY_DIR) / "cli-calibrate-warn";
  fs::create_directories(dir);
  const std::string cmd = std::string(TRAINSIM_BINARY_DIR) + "/trainsim calibrate --import " + TRAINSIM_SOURCE_DIR +
                          "/data/calibration/h800-published-tables.json --out " + (dir / "p.json").string() +
                          " >/dev/null 2>" + (dir / "err.txt").string();
  const int status = std::system(cmd.c_str());
  REQUIRE(status != -1);
  CHECK(WEXITSTATUS(status) == 0);
  std::ifstream err(dir / "err.txt");
  const std::string msg((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
  CHECK(msg.find("trainsim: warning: gemm_fp8_wgrad: the data cannot determine alpha_s, beta_s") == 0);
}
}
