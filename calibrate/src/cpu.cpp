#include "trainsim/calibrate/cpu.hpp"

#include <Eigen/Dense>
#include <fmt/format.h>

#include <array>
#include <chrono>
#include <cmath>
#include <ctime>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <vector>

#include "fit.hpp"
#include "trainsim/kernels/attention.hpp"
#include "trainsim/kernels/cpu_gemm.hpp"

namespace trainsim::calibrate {

ThreadCpuClock::time_point ThreadCpuClock::now() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return time_point(duration(static_cast<rep>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec));
}

double time_median_s(const std::function<void()>& fn, int repeats) {
  using Clock = ThreadCpuClock;
  fn();  // warm-up: caches, page faults, lazy allocation
  std::vector<double> t;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = Clock::now();
    fn();
    t.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return detail::median(t);
}

namespace {

std::vector<float> random_vector(std::size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = u(rng);
  return v;
}

// "model name" and "cpu MHz" of the first processor in /proc/cpuinfo, if any.
std::pair<std::string, double> cpu_identity() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, name = "unknown CPU";
  double mhz = 0;
  while (std::getline(in, line)) {
    auto value = [&] { return line.substr(line.find(':') + 2); };
    if (line.rfind("model name", 0) == 0 && name == "unknown CPU") name = value();
    if (line.rfind("cpu MHz", 0) == 0 && mhz == 0) mhz = std::stod(value());
  }
  return {name, mhz};
}

double system_memory_gib() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  double kb = 0;
  while (in >> key >> kb) {
    if (key == "MemTotal:") return kb / (1024.0 * 1024.0);
    std::string unit;
    in >> unit;
  }
  return 1.0;
}

}  // namespace

CalibrationGrid grid_for_model(const model::Architecture& arch, const model::OpContext& ctx) {
  std::set<std::array<int, 3>> own, grid;
  for (model::LayerKind k : {model::LayerKind::Dense, model::LayerKind::Moe}) {
    if (k == model::LayerKind::Dense && arch.dense_layer_count() == 0) continue;
    if (k == model::LayerKind::Moe && arch.moe_layer_count() == 0) continue;
    for (const auto& op : model::layer_ops(arch, k, ctx))
      if (op.kind == model::OpKind::Gemm || op.kind == model::OpKind::GroupedGemm)
        own.insert({static_cast<int>(op.gemm.m), static_cast<int>(op.gemm.n), static_cast<int>(op.gemm.k)});
  }
  auto scaled = [](int v, double f) { return std::max(16, static_cast<int>(std::lround(v * f / 16.0)) * 16); };
  for (const auto& [m, n, k] : own)
    for (const std::array<int, 3>& c : {std::array<int, 3>{scaled(m, 0.75), scaled(n, 1.25), scaled(k, 0.75)},
                                        std::array<int, 3>{scaled(m, 1.25), scaled(n, 0.75), scaled(k, 1.25)}})
      if (!own.count(c)) grid.insert(c);
  CalibrationGrid g;
  g.gemm_shapes.assign(grid.begin(), grid.end());
  const int s = static_cast<int>(ctx.seq_len);
  g.attention_seqs = {std::max(16, s * 3 / 4), s * 5 / 4};
  return g;
}

nlohmann::json calibrate_cpu(const CpuCalibrationOptions& opt) {
  auto say = [&](const std::string& s) {
    if (opt.progress) opt.progress(s);
  };
  const int repeats = opt.quick ? 3 : 5;
  std::mt19937 rng(12345);  // fixed seed: the inputs do not affect timing, but keep runs reproducible

  // ---- GEMM grid (single thread, 64 x 64 tiles) ----
  // The CPU kernel computes only the real part of an edge tile.
  const detail::Tiling tiling{kernels::kCpuGemmTile, kernels::kCpuGemmTile, kernels::kCpuGemmTile, true};
  std::vector<std::array<int, 3>> shapes = opt.gemm_shapes;
  const std::vector<int> ms = opt.quick ? std::vector<int>{64, 256} : std::vector<int>{64, 192, 448};
  const std::vector<int> ns = opt.quick ? std::vector<int>{128, 512} : std::vector<int>{128, 320, 576};
  const std::vector<int> ks = opt.quick ? std::vector<int>{128, 768} : std::vector<int>{64, 256, 768};
  if (shapes.empty())
    for (int m : ms)
      for (int n : ns)
        for (int k : ks) shapes.push_back({m, n, k});
  const std::vector<int> seqs = !opt.attention_seqs.empty() ? opt.attention_seqs
                                : opt.quick                   ? std::vector<int>{128, 320}
                                                              : std::vector<int>{128, 256, 448};
  const std::vector<std::size_t> sizes = opt.quick ? std::vector<std::size_t>{1u << 18, 1u << 22}
                                                   : std::vector<std::size_t>{1u << 18, 1u << 20, 1u << 22};
  std::size_t done = 0;
  auto measured = [&, total = shapes.size() + seqs.size() + sizes.size()] {
    if (opt.measured) opt.measured(++done, total);
  };
  say(fmt::format("GEMM: {} shapes x {} repeats", shapes.size(), repeats));
  std::vector<Eigen::Vector3d> gx;
  std::vector<double> gt;
  nlohmann::json gemm_points = nlohmann::json::array();
  for (const auto& [m, n, k] : shapes) {
    const auto a = random_vector(static_cast<std::size_t>(m) * k, rng);
    const auto b = random_vector(static_cast<std::size_t>(k) * n, rng);
    std::vector<float> c(static_cast<std::size_t>(m) * n);
    // Copies: clang before 16 cannot capture structured bindings.
    const double t = time_median_s([&, m = m, n = n, k = k] { kernels::gemm_tiled(m, n, k, a.data(), b.data(), c.data()); },
                                   repeats);
    gx.push_back(detail::wave_features(m, n, k, 1, 1, tiling));
    gt.push_back(t);
    gemm_points.push_back({{"m", m}, {"n", n}, {"k", k}, {"measured_us", t * 1e6}});
    measured();
  }
  const auto gemm_fit = detail::fit_relative_checked<3>(
      gx, gt, {"t0_s", "alpha_s", "beta_s"},
      {detail::Prior{0.0, "a CPU function call has no launch time", true},
       detail::Prior{0.0, "no per-tile fixed cost: it is folded into beta", true}, std::nullopt});
  const Eigen::Vector3d cg = gemm_fit.c;
  double g_sum = 0, g_max = 0;
  for (std::size_t i = 0; i < gt.size(); ++i) {
    const double pred = gx[i].dot(cg);
    const double err = pred / gt[i] - 1.0;
    g_sum += std::abs(err);
    g_max = std::max(g_max, std::abs(err));
    gemm_points[i]["predicted_us"] = pred * 1e6;
    gemm_points[i]["relative_error"] = err;
    gemm_points[i]["fitted"] = true;
  }
  // Asymptotic rate: a 64 x 64 tile does 2 * 64 * 64 FLOPs per element of K.
  const double gemm_rate = 2.0 * tiling.tile_m * tiling.tile_n / cg(2);

  // ---- Attention (causal, MLA-like head dims scaled down) ----
  say(fmt::format("attention: {} sequence lengths x {} repeats, forward and backward", seqs.size(), repeats));
  std::vector<Eigen::Vector2d> fx, bx;
  std::vector<double> ft, bt;
  nlohmann::json attn_points = nlohmann::json::array();
  for (int seq : seqs) {
    kernels::AttentionShape s;
    s.seq = seq;
    s.heads = 4;
    s.dqk = 96;
    s.dv = 64;
    s.scale = 1.0f / std::sqrt(static_cast<float>(s.dqk));
    s.causal = true;
    const auto q = random_vector(static_cast<std::size_t>(seq) * s.heads * s.dqk, rng);
    const auto k = random_vector(static_cast<std::size_t>(seq) * s.heads * s.dqk, rng);
    const auto v = random_vector(static_cast<std::size_t>(seq) * s.heads * s.dv, rng);
    const auto d_o = random_vector(static_cast<std::size_t>(seq) * s.heads * s.dv, rng);
    kernels::AttentionForward fwd;
    const double tf = time_median_s([&] { fwd = kernels::attention_forward(s, q.data(), k.data(), v.data()); }, repeats);
    const double tb = time_median_s(
        [&] { kernels::attention_backward(s, q.data(), k.data(), v.data(), fwd.o.data(), fwd.lse.data(), d_o.data()); },
        repeats);
    // The simulator's FLOP counts (model/accounting): forward 2*h*s^2/2*(dqk+dv)
    // for a causal mask, backward 2.5x that.
    const double flops = 2.0 * s.heads * double(seq) * seq / 2.0 * (s.dqk + s.dv);
    fx.push_back(Eigen::Vector2d(1.0, flops));
    ft.push_back(tf);
    bx.push_back(Eigen::Vector2d(1.0, 2.5 * flops));
    bt.push_back(tb);
    attn_points.push_back({{"seq", seq}, {"heads", s.heads}, {"dqk", s.dqk}, {"dv", s.dv},
                           {"forward_us", tf * 1e6}, {"backward_us", tb * 1e6}});
    measured();
  }
  const std::array<std::optional<detail::Prior>, 2> no_fixed_time{
      detail::Prior{0.0, "no fixed time: a CPU function call has no launch time", true}, std::nullopt};
  const auto fwd_fit = detail::fit_relative_checked<2>(fx, ft, {"t0_s", "s_per_flop"}, no_fixed_time);
  const auto bwd_fit = detail::fit_relative_checked<2>(bx, bt, {"t0_s", "s_per_flop"}, no_fixed_time);
  const Eigen::Vector2d cf = fwd_fit.c, cb = bwd_fit.c;

  // ---- Memory-bound (stream triad) ----
  say(fmt::format("memory: {} sizes x {} repeats", sizes.size(), repeats));
  std::vector<Eigen::Vector2d> mx;
  std::vector<double> mt;
  nlohmann::json mem_points = nlohmann::json::array();
  for (std::size_t n : sizes) {
    auto a = random_vector(n, rng);
    const auto b = random_vector(n, rng);
    const auto c = random_vector(n, rng);
    const double t = time_median_s([&] { kernels::stream_triad(a.data(), b.data(), c.data(), 0.5f, n); }, repeats);
    const double bytes = 12.0 * static_cast<double>(n);
    mx.push_back(Eigen::Vector2d(1.0, bytes));
    mt.push_back(t);
    mem_points.push_back({{"bytes", bytes}, {"measured_us", t * 1e6}});
    measured();
  }
  const auto mem_fit = detail::fit_relative_checked<2>(mx, mt, {"t0_s", "s_per_byte"}, no_fixed_time);
  const Eigen::Vector2d cm = mem_fit.c;
  const double bandwidth = 1.0 / cm(1);

  const auto [cpu_name, mhz] = cpu_identity();
  const double tflops = gemm_rate / 1e12;
  nlohmann::json device = {
      {"name", "cpu"},
      {"full_name", cpu_name + " (one thread)"},
      {"sms", 1},
      {"bf16_dense_TFLOPS", tflops},
      {"fp16_dense_TFLOPS", tflops},
      {"fp8_dense_TFLOPS", tflops},
      {"fp32_simt_TFLOPS", tflops},
      {"hbm_capacity_GiB", system_memory_gib()},
      {"hbm_TBps", bandwidth / 1e12},
      {"nvlink_unidir_GBps", bandwidth / 1e9},
      {"nvlink_latency_us", 0.0},
      {"clock_boost_MHz", mhz > 0 ? mhz : 1.0},
      {"tdp_W", 1.0},
      {"sources",
       {{"sms", "one thread: the CPU kernels are single-threaded"},
        {"bf16_dense_TFLOPS", "every format runs in FP32 on the CPU: the fitted asymptotic GEMM rate"},
        {"fp16_dense_TFLOPS", "as bf16_dense_TFLOPS"},
        {"fp8_dense_TFLOPS", "as bf16_dense_TFLOPS"},
        {"fp32_simt_TFLOPS", "fitted asymptotic GEMM rate (2*64*64 / beta)"},
        {"hbm_capacity_GiB", "/proc/meminfo MemTotal"},
        {"hbm_TBps", "fitted stream-triad bandwidth"},
        {"nvlink_unidir_GBps", "no interconnect: set to the memory bandwidth, unused (no communication on one CPU)"},
        {"clock_boost_MHz", "/proc/cpuinfo cpu MHz"},
        {"tdp_W", "not measured; required by the spec format, unused"}}}};

  nlohmann::json out;
  out["name"] = "cpu-local";
  out["gpu"] = "cpu";
  out["origin"] = fmt::format("trainsim calibrate --device cpu{} (local microbenchmarks, median of {} runs after a warm-up)",
                              opt.quick ? " --quick" : "", repeats);
  out["reference"] = {{"sms", 1},
                      {"gemm_precision", "fp32"},
                      {"peak_gemm_TFLOPS", tflops},
                      {"peak_attention_TFLOPS", tflops},
                      {"hbm_TBps", bandwidth / 1e12}};
  out["device"] = device;
  out["software"] = {{"compiler", fmt::format("{} {}",
#if defined(__clang__)
                                              "clang",
#elif defined(__GNUC__)
                                              "g++",
#else
                                              "unknown compiler",
#endif
                                              __VERSION__)},
                     {"kernels", "trainsim kernels/cpu_gemm.hpp gemm_tiled (64x64 tiles), kernels/attention.hpp, stream_triad; FP32, one thread"},
                     {"build", TRAINSIM_BUILD_TYPE}};
  auto gemm_json = [&](const nlohmann::json& residuals) {
    return nlohmann::json{{"t0_us", cg(0) * 1e6},
                          {"alpha_us", cg(1) * 1e6},
                          {"beta_ns_per_k", cg(2) * 1e9},
                          {"tile_m", tiling.tile_m},
                          {"small_tile_m", tiling.small_tile_m},
                          {"tile_n", tiling.tile_n},
                          {"partial_tiles", true},
                          {"fit",
                           {{"points", gt.size()},
                            {"mean_abs_rel_error", g_sum / static_cast<double>(gt.size())},
                            {"max_abs_rel_error", g_max},
                            {"conditioning", gemm_fit.check.to_json()},
                            {"residuals", residuals}}}};
  };
  out["gemm_fp8"] = gemm_json(gemm_points);
  // One kernel serves forward, input-gradient and weight-gradient GEMMs here.
  out["gemm_fp8_wgrad"] = gemm_json(nlohmann::json::array());
  // One fixed time for forward and backward kernels: the mean of the two fits.
  out["attention_bf16"] = {{"t0_us", std::max(0.0, 0.5 * (cf(0) + cb(0)) * 1e6)},
                           {"forward_TFLOPS_per_sm", 1.0 / cf(1) / 1e12},
                           {"backward_TFLOPS_per_sm", 1.0 / cb(1) / 1e12},
                           {"checks",
                            {{"points", attn_points},
                             {"forward_t0_us", cf(0) * 1e6},
                             {"backward_t0_us", cb(0) * 1e6},
                             {"forward_conditioning", fwd_fit.check.to_json()},
                             {"backward_conditioning", bwd_fit.check.to_json()}}}};
  out["memory_bound"] = {{"hbm_efficiency", 1.0}, {"t0_us", std::max(0.0, cm(0) * 1e6)}, };
  out["ep_all_to_all"] = {{"saturating_sms", 1},
                          {"ref_nic_GBps", bandwidth / 1e9},
                          {"ref_nvlink_GBps", bandwidth / 1e9},
                          {"points", nlohmann::json::array({{{"ep", 2}, {"link", "nvlink"}, {"dispatch_GBps", bandwidth / 1e9}, {"combine_GBps", bandwidth / 1e9}}})}};
  out["sources"] = {"measured on this machine by trainsim calibrate --device cpu",
                    "all-to-all: no communication on one CPU; placeholder at the memory bandwidth, unused by the replay"};
  out["fitted_points"] = {{"memory", mem_points}, {"memory_conditioning", mem_fit.check.to_json()}};
  out["warnings"] = detail::fit_warnings({{"gemm_fp8", gemm_fit.check},
                                          {"attention forward", fwd_fit.check},
                                          {"attention backward", bwd_fit.check},
                                          {"memory_bound", mem_fit.check}});
  return out;
}

}  // namespace trainsim::calibrate
