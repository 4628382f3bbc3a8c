#include "trainsim/calibrate/import.hpp"

#include <Eigen/Dense>
#include <fmt/format.h>

#include <cmath>
#include <vector>

#include "trainsim/common/json_reader.hpp"
#include "trainsim/hardware/gpu.hpp"

namespace trainsim::calibrate {

namespace {

struct GemmPoint {
  long long m, n, k, groups;
  std::string layout;
  double tflops;
  double seconds() const { return 2.0 * static_cast<double>(m * n) * static_cast<double>(k * groups) / (tflops * 1e12); }
};

long long ceil_div(long long a, long long b) { return (a + b - 1) / b; }

}  // namespace

nlohmann::json import_published_tables(const nlohmann::json& tables, const std::string& file,
                                       const ImportOptions& options) {
  JsonObject root(tables, file, "");
  const std::string name = root.string("name");
  const std::string gpu_name = root.string("gpu");
  root.string("device");
  root.string("description");
  const hw::GpuSpec gpu = hw::gpu_preset(gpu_name, file, "/gpu");

  // ---- GEMM ----
  auto g = root.object("gemm_fp8");
  const int sms = static_cast<int>(g.integer("sms_used", 1, 100000));
  g.string("settings");
  const Json& pts = g.raw("points");
  if (!pts.is_array() || pts.empty()) g.fail("points", "a non-empty array of GEMM measurements");
  std::vector<GemmPoint> points;
  std::vector<std::string> gemm_sources;
  for (std::size_t i = 0; i < pts.size(); ++i) {
    JsonObject q(pts[i], file, fmt::format("{}/points/{}", g.path(), i));
    GemmPoint p{q.integer("m", 1, 1 << 24), q.integer("n", 1, 1 << 24), q.integer("k", 1, 1 << 24),
                q.integer("groups", 1, 1 << 16),
                q.choice("layout", {"dense", "grouped_contiguous", "grouped_masked"}),
                q.number("TFLOPS", 1e-3, 1e6)};
    std::string src = q.string("source");
    if (std::find(gemm_sources.begin(), gemm_sources.end(), src) == gemm_sources.end()) gemm_sources.push_back(src);
    q.finish();
    points.push_back(p);
  }
  g.finish();

  const int tile_m = 128, small_tile_m = 64, tile_n = 128;
  auto features = [&](const GemmPoint& p) {
    const long long tm = p.m <= small_tile_m ? small_tile_m : tile_m;
    const long long waves = ceil_div(p.groups * ceil_div(p.m, tm) * ceil_div(p.n, tile_n), sms);
    return Eigen::Vector3d(1.0, static_cast<double>(waves),
                           static_cast<double>(waves) * static_cast<double>(p.k) * static_cast<double>(tm) / tile_m);
  };
  auto fitted = [&](const GemmPoint& p) {
    return p.layout != "grouped_masked" && p.m * p.groups >= options.min_rows_fitted;
  };
  std::vector<const GemmPoint*> fit_set;
  for (const auto& p : points)
    if (fitted(p)) fit_set.push_back(&p);
  if (fit_set.size() < 3)
    throw InputError(file, "/gemm_fp8/points", fmt::format("{} compute-bound points", fit_set.size()),
                     "at least 3 dense or contiguous-grouped points with M*groups >= " +
                         std::to_string(options.min_rows_fitted));
  Eigen::MatrixXd A(static_cast<Eigen::Index>(fit_set.size()), 3);
  Eigen::VectorXd y(static_cast<Eigen::Index>(fit_set.size()));
  for (std::size_t i = 0; i < fit_set.size(); ++i) {
    const double t = fit_set[i]->seconds();
    A.row(static_cast<Eigen::Index>(i)) = features(*fit_set[i]).transpose() / t;  // relative-error weights
    y(static_cast<Eigen::Index>(i)) = 1.0;
  }
  const Eigen::Vector3d c = A.colPivHouseholderQr().solve(y);

  // Memory-bound roofline parameters (used for residuals of the other points).
  auto mb = root.object("memory_bound");
  const double hbm_eff = mb.number("hbm_efficiency", 0.01, 1.0);
  const std::string mb_source = mb.string("source");
  mb.finish();
  const double hbm = gpu.hbm_bandwidth.value();

  nlohmann::json residuals = nlohmann::json::array();
  double sum_abs = 0, max_abs = 0;
  for (const auto& p : points) {
    const double compute = features(p).dot(c);
    const double bytes = static_cast<double>(p.groups) *
                         (static_cast<double>(p.m * p.k + p.k * p.n) + 2.0 * static_cast<double>(p.m * p.n));
    const double memory = c(0) + bytes / (hbm_eff * hbm);
    const double pred = std::max(compute, memory);
    const double err = pred / p.seconds() - 1.0;
    if (fitted(p)) {
      sum_abs += std::abs(err);
      max_abs = std::max(max_abs, std::abs(err));
    }
    residuals.push_back({{"m", p.m},
                         {"n", p.n},
                         {"k", p.k},
                         {"groups", p.groups},
                         {"layout", p.layout},
                         {"measured_us", p.seconds() * 1e6},
                         {"predicted_us", pred * 1e6},
                         {"relative_error", err},
                         {"regime", compute >= memory ? "compute" : "memory"},
                         {"fitted", fitted(p)}});
  }

  // ---- Attention ----
  auto a = root.object("attention_bf16");
  const double fwd_tflops = a.number("forward_TFLOPS", 1e-3, 1e6);
  const double ratio = a.number("backward_to_forward_rate_ratio", 1e-3, 10);
  const int attn_sms = static_cast<int>(a.integer("sms_used", 1, 100000));
  const std::string fwd_src = a.string("forward_source");
  const std::string bwd_src = a.string("backward_source");
  a.finish();

  // ---- All-to-all ----
  auto e = root.object("ep_all_to_all");
  e.string("settings");
  e.integer("sms_used", 1, 100000);
  e.string("sms_note");
  const auto sat = e.integer("saturating_sms", 1, 100000);
  const double nic = e.number("nic_GBps", 1e-3, 1e6);
  const double nvl = e.number("nvlink_GBps", 1e-3, 1e6);
  e.string("bytes_definition");
  e.integer("tokens_per_batch", 1, 1 << 30);
  const Json& ep_pts = e.raw("points");
  const std::string ep_src = e.string("source");
  nlohmann::json ep_out = nlohmann::json::array();
  if (!ep_pts.is_array() || ep_pts.empty()) e.fail("points", "a non-empty array");
  for (std::size_t i = 0; i < ep_pts.size(); ++i) {
    JsonObject q(ep_pts[i], file, fmt::format("{}/points/{}", e.path(), i));
    ep_out.push_back({{"ep", q.integer("ep", 2, 1 << 20)},
                      {"link", q.choice("link", {"nvlink", "rdma"})},
                      {"dispatch_GBps", q.number("dispatch_GBps", 1e-3, 1e6)},
                      {"combine_GBps", q.number("combine_GBps", 1e-3, 1e6)}});
    q.finish();
  }
  e.finish();
  root.finish();

  nlohmann::json sources = nlohmann::json::array();
  for (const auto& s : gemm_sources) sources.push_back("GEMM: " + s);
  sources.push_back("Attention forward: " + fwd_src);
  sources.push_back("Attention backward: " + bwd_src);
  sources.push_back("Memory-bound: " + mb_source);
  sources.push_back("All-to-all: " + ep_src);
  sources.push_back(fmt::format("Reference GPU datasheet: {} ({})", gpu.full_name, gpu_name));

  nlohmann::json out;
  out["name"] = name;
  out["gpu"] = gpu_name;
  out["origin"] = fmt::format("trainsim calibrate --import {} (least-squares fit, {} of {} GEMM points in the compute-bound regime)",
                              file, fit_set.size(), points.size());
  out["reference"] = {{"sms", sms}, {"peak_fp8_TFLOPS", gpu.peak_fp8.value() / 1e12}, {"hbm_TBps", hbm / 1e12}};
  out["gemm_fp8"] = {{"t0_us", c(0) * 1e6},
                     {"alpha_us", c(1) * 1e6},
                     {"beta_ns_per_k", c(2) * 1e9},
                     {"tile_m", tile_m},
                     {"small_tile_m", small_tile_m},
                     {"tile_n", tile_n},
                     {"fit",
                      {{"points", fit_set.size()},
                       {"mean_abs_rel_error", sum_abs / static_cast<double>(fit_set.size())},
                       {"max_abs_rel_error", max_abs},
                       {"residuals", residuals}}}};
  out["attention_bf16"] = {{"forward_TFLOPS_per_sm", fwd_tflops / attn_sms},
                           {"backward_TFLOPS_per_sm", fwd_tflops * ratio / attn_sms}};
  out["memory_bound"] = {{"hbm_efficiency", hbm_eff}, {"t0_us", std::max(0.0, c(0) * 1e6)}};
  out["ep_all_to_all"] = {{"saturating_sms", sat}, {"ref_nic_GBps", nic}, {"ref_nvlink_GBps", nvl}, {"points", ep_out}};
  out["sources"] = sources;
  return out;
}

}  // namespace trainsim::calibrate
