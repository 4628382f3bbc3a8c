// calibrate_cuda (see calibrate/cuda.hpp): GPU microbenchmarks through the
// host wrappers of trainsim::kernels (no CUDA headers here), fitted with the
// helpers of fit.hpp into the profile format of calibrate_cpu.
// UNVERIFIED: never run on a GPU; without one it throws before measuring.
#include "trainsim/calibrate/cuda.hpp"

#include <Eigen/Dense>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <map>
#include <random>
#include <stdexcept>
#include <utility>
#include <vector>

#include "fit.hpp"
#include "trainsim/hardware/calibration.hpp"
#include "trainsim/hardware/gpu.hpp"
#include "trainsim/kernels/attention_cuda.hpp"
#include "trainsim/kernels/block_quant.hpp"
#include "trainsim/kernels/cublas_gemm.hpp"
#include "trainsim/kernels/cuda_device.hpp"
#include "trainsim/kernels/fp8_gemm_cuda.hpp"
#include "trainsim/kernels/moe_cuda.hpp"

namespace trainsim::calibrate {
namespace {

struct Point {
  long long m = 0, n = 0, k = 0, groups = 1;
  double seconds = 0;
};

struct WaveFit {
  bool ok = false;
  Eigen::Vector3d c = Eigen::Vector3d::Zero();
  detail::FitCheck check;
  double mean_abs = 0, max_abs = 0;
  nlohmann::json residuals = nlohmann::json::array();
  std::size_t points = 0;
};

// A kernel's fixed time is at least 0 (fit.hpp, "Physical floors").
const std::array<std::optional<detail::Prior>, 2> kFixedTimeFloor{
    detail::Prior{0.0, "a kernel's fixed time is not negative", true}, std::nullopt};

WaveFit fit_waves(const std::vector<Point>& pts, int sms, const detail::Tiling& tiling) {
  WaveFit f;
  if (pts.size() < 3) return f;
  std::vector<Eigen::Vector3d> x;
  std::vector<double> t;
  for (const Point& p : pts) {
    x.push_back(detail::wave_features(p.m, p.n, p.k, p.groups, sms, tiling));
    t.push_back(p.seconds);
  }
  // Durations cannot be negative: noisy timings that pull the intercept or
  // the per-wave time below zero fix it there (fit.hpp, "Physical floors").
  const auto fit = detail::fit_relative_checked<3>(
      x, t, {"t0_s", "alpha_s", "beta_s"},
      {detail::Prior{0.0, "a kernel's fixed time is not negative", true},
       detail::Prior{0.0, "a wave's fixed time is not negative", true}, std::nullopt});
  f.c = fit.c;
  f.check = fit.check;
  f.points = pts.size();
  for (std::size_t i = 0; i < pts.size(); ++i) {
    const double pred = x[i].dot(f.c);
    const double err = pred / t[i] - 1.0;
    f.mean_abs += std::abs(err);
    f.max_abs = std::max(f.max_abs, std::abs(err));
    f.residuals.push_back({{"m", pts[i].m},
                           {"n", pts[i].n},
                           {"k", pts[i].k},
                           {"groups", pts[i].groups},
                           {"measured_us", t[i] * 1e6},
                           {"predicted_us", pred * 1e6},
                           {"relative_error", err},
                           {"fitted", true}});
  }
  f.mean_abs /= static_cast<double>(pts.size());
  f.ok = f.c(2) > 0;
  return f;
}

double predict(const WaveFit& f, long long m, long long n, long long k, long long groups, int sms,
               const detail::Tiling& tiling) {
  return detail::wave_features(m, n, k, groups, sms, tiling).dot(f.c);
}

nlohmann::json fit_json(const WaveFit& f, const detail::Tiling& tiling, bool with_residuals) {
  return {{"t0_us", f.c(0) * 1e6},
          {"alpha_us", f.c(1) * 1e6},
          {"beta_ns_per_k", f.c(2) * 1e9},
          {"tile_m", tiling.tile_m},
          {"small_tile_m", tiling.small_tile_m},
          {"tile_n", tiling.tile_n},
          {"fit",
           {{"points", f.points},
            {"mean_abs_rel_error", f.mean_abs},
            {"max_abs_rel_error", f.max_abs},
            {"conditioning", f.check.to_json()},
            {"residuals", with_residuals ? f.residuals : nlohmann::json::array()}}}};
}

// Random E4M3 codes (NaN codes avoided) with unit scales: the wgmma kernel's
// timing does not depend on the values.
kernels::QuantizedMatrix random_fp8(int rows, int cols, int tile_rows, int tile_cols, std::mt19937& rng) {
  kernels::QuantizedMatrix q;
  q.rows = rows;
  q.cols = cols;
  q.tile_rows = tile_rows;
  q.tile_cols = tile_cols;
  q.format = kernels::Fp8Format::E4M3;
  q.codes.resize(static_cast<std::size_t>(rows) * static_cast<std::size_t>(cols));
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& c : q.codes) {
    const int b = byte(rng);
    c = static_cast<std::uint8_t>((b & 0x7F) == 0x7F ? 0x38 : b);  // 0x38 = 1.0
  }
  q.scales.assign(static_cast<std::size_t>(q.tile_grid_rows()) * static_cast<std::size_t>(q.tile_grid_cols()), 1.0f);
  return q;
}

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

}  // namespace

int cuda_device_count(std::string* message) {
  const kernels::DeviceInfo info = kernels::query_cuda_devices();
  if (message != nullptr) *message = info.message;
  return info.count;
}

nlohmann::json calibrate_cuda(const CudaCalibrationOptions& opt) {
  const auto say = [&](const std::string& s) {
    if (opt.progress) opt.progress(s);
  };
  const kernels::DeviceInfo info = kernels::query_cuda_devices();
  if (info.count == 0) throw std::runtime_error("calibrate_cuda: no usable CUDA device: " + info.message);
  if (opt.device < 0 || opt.device >= info.count) {
    throw std::runtime_error(fmt::format("calibrate_cuda: device {} does not exist ({})", opt.device, info.message));
  }
  const kernels::CudaDevicePeaks dev = kernels::cuda_device_peaks(opt.device);
  if (!dev.ok) throw std::runtime_error("calibrate_cuda: cannot read the device attributes: " + dev.message);
  const int sms = dev.sms;
  const int repeats = opt.quick ? 5 : 10;
  const detail::Tiling tiling{128, 64, 128};
  say(fmt::format("device {}: {} (sm_{}{}, {} SMs, {:.0f} MHz, HBM peak {:.2f} TB/s from attributes)", opt.device,
                  dev.name, dev.compute_major, dev.compute_minor, sms, dev.sm_clock_mhz, dev.hbm_peak_Bps / 1e12));

  // ---- Dense GEMM grid ----
  const std::vector<int> ms = opt.quick ? std::vector<int>{256, 2048} : std::vector<int>{128, 512, 2048, 4096};
  const std::vector<int> ns = opt.quick ? std::vector<int>{2048, 7168} : std::vector<int>{1536, 4096, 7168};
  const std::vector<int> ks = opt.quick ? std::vector<int>{1024, 7168} : std::vector<int>{512, 2048, 7168};
  say(fmt::format("GEMM grid: {} shapes x {} repeats, FP8 (wgmma kernel, cuBLASLt) and BF16 (cuBLASLt)",
                  ms.size() * ns.size() * ks.size(), repeats));
  std::mt19937 rng(20240601);
  std::map<std::pair<int, int>, kernels::QuantizedMatrix> a_cache, b_cache;
  std::vector<Point> ours, lt_fp8, lt_bf16;
  std::vector<std::string> failures;
  nlohmann::json grid = nlohmann::json::array();
  for (int m : ms) {
    for (int n : ns) {
      for (int k : ks) {
        auto a_it = a_cache.find({m, k});
        if (a_it == a_cache.end())
          a_it = a_cache.emplace(std::make_pair(m, k), random_fp8(m, k, 1, kernels::kActivationTileCols, rng)).first;
        auto b_it = b_cache.find({n, k});
        if (b_it == b_cache.end())
          b_it = b_cache.emplace(std::make_pair(n, k), random_fp8(n, k, kernels::kWeightBlock, kernels::kWeightBlock, rng))
                     .first;
        nlohmann::json row = {{"m", m}, {"n", n}, {"k", k}};
        // fp8_gemm_cuda always runs on device 0: on another device only cuBLASLt FP8 is timed.
        kernels::Fp8GemmCudaResult w;
        if (opt.device == 0) {
          w = kernels::fp8_gemm_cuda(a_it->second, b_it->second, repeats);
        } else {
          w.message = "fp8_gemm_cuda runs on device 0 only; calibrating device " + std::to_string(opt.device);
        }
        if (w.ran) {
          ours.push_back({m, n, k, 1, w.seconds});
          row["fp8_wgmma_us"] = w.seconds * 1e6;
        } else {
          failures.push_back(w.message);
        }
        const kernels::GemmCudaResult f8 = kernels::cublaslt_gemm_fp8(m, n, k, repeats, 1, opt.device);
        if (f8.ran) {
          lt_fp8.push_back({m, n, k, 1, f8.seconds});
          row["fp8_cublaslt_us"] = f8.seconds * 1e6;
        } else {
          failures.push_back(f8.message);
        }
        const kernels::GemmCudaResult b16 = kernels::cublaslt_gemm_bf16(m, n, k, repeats, 1, opt.device);
        if (b16.ran) {
          lt_bf16.push_back({m, n, k, 1, b16.seconds});
          row["bf16_cublaslt_us"] = b16.seconds * 1e6;
        } else {
          failures.push_back(b16.message);
        }
        grid.push_back(row);
      }
    }
  }
  const std::size_t shapes = grid.size();
  const WaveFit fit_ours = ours.size() == shapes ? fit_waves(ours, sms, tiling) : WaveFit{};
  const WaveFit fit_lt8 = lt_fp8.size() == shapes ? fit_waves(lt_fp8, sms, tiling) : WaveFit{};
  const WaveFit fit_b16 = lt_bf16.size() == shapes ? fit_waves(lt_bf16, sms, tiling) : WaveFit{};
  const bool use_ours = fit_ours.ok;
  const WaveFit& fp8 = use_ours ? fit_ours : fit_lt8;
  if (!fp8.ok) {
    throw std::runtime_error(fmt::format("calibrate_cuda: no FP8 GEMM series could be timed and fitted on device {} "
                                         "({} failures; first: {})",
                                         opt.device, failures.size(), failures.empty() ? "none" : failures.front()));
  }
  const std::string fp8_kernel = use_ours ? "trainsim wgmma FP8 kernel (kernels/fp8_gemm_cuda.hpp)"
                                          : "cuBLASLt FP8 (per-tensor scales): the wgmma kernel did not run";
  // Asymptotic rate per SM: a 128 x 128 tile does 2 * 128 * 128 FLOPs per element of K.
  const double fp8_rate_per_sm = 2.0 * tiling.tile_m * tiling.tile_n / fp8.c(2);
  const double bf16_rate_per_sm = fit_b16.ok ? 2.0 * tiling.tile_m * tiling.tile_n / fit_b16.c(2) : 0.0;

  // ---- Grouped GEMMs (contiguous expert layout, equal groups) ----
  const std::vector<int> group_counts = opt.quick ? std::vector<int>{8} : std::vector<int>{8, 32};
  const std::vector<int> group_ms = opt.quick ? std::vector<int>{256} : std::vector<int>{128, 512};
  const std::array<std::pair<int, int>, 2> expert_nk{{{2 * 2048, 7168}, {7168, 2048}}};  // up [W1;W3], down W2
  say(fmt::format("grouped GEMMs: {} configurations, FP8 and BF16 cuBLASLt strided batches",
                  group_counts.size() * group_ms.size() * expert_nk.size()));
  nlohmann::json grouped = nlohmann::json::array();
  for (int g : group_counts) {
    for (int m : group_ms) {
      for (const auto& [n, k] : expert_nk) {
        nlohmann::json row = {{"groups", g}, {"m", m}, {"n", n}, {"k", k}};
        const auto f8 = kernels::cublaslt_gemm_fp8(m, n, k, repeats, g, opt.device);
        if (f8.ran) {
          row["fp8_cublaslt_us"] = f8.seconds * 1e6;
          if (fit_lt8.ok) {
            const double pred = predict(fit_lt8, m, n, k, g, sms, tiling);
            row["fp8_cublaslt_predicted_us"] = pred * 1e6;
            row["fp8_cublaslt_relative_error"] = pred / f8.seconds - 1.0;
          }
        } else {
          row["fp8_cublaslt_error"] = f8.message;
        }
        const auto b16 = kernels::cublaslt_gemm_bf16(m, n, k, repeats, g, opt.device);
        if (b16.ran) {
          row["bf16_cublaslt_us"] = b16.seconds * 1e6;
          if (fit_b16.ok) {
            const double pred = predict(fit_b16, m, n, k, g, sms, tiling);
            row["bf16_cublaslt_predicted_us"] = pred * 1e6;
            row["bf16_cublaslt_relative_error"] = pred / b16.seconds - 1.0;
          }
        } else {
          row["bf16_cublaslt_error"] = b16.message;
        }
        grouped.push_back(row);
      }
    }
  }

  // ---- MoE expert path (dispatch, BF16 GEMM loop, combine) ----
  kernels::MoeConfig moe;
  moe.hidden = 7168;
  moe.expert_ffn = 2048;
  moe.experts = 16;  // local experts of one GPU (V3: 256 experts over EP ranks)
  moe.topk = 8;
  moe.route_scale = 2.5;
  const std::vector<int> moe_tokens = opt.quick ? std::vector<int>{1024} : std::vector<int>{512, 2048, 4096};
  say(fmt::format("MoE expert path: {} token counts, {} experts, top-{}", moe_tokens.size(), moe.experts, moe.topk));
  nlohmann::json moe_points = nlohmann::json::array();
  for (int tokens : moe_tokens) {
    const kernels::MoeRouting r = kernels::balanced_routing(moe, tokens);
    const auto res = kernels::moe_forward_cuda_timing(moe, tokens, r.selected, r.weights, repeats, opt.device);
    nlohmann::json row = {{"tokens", tokens}, {"hidden", moe.hidden}, {"expert_ffn", moe.expert_ffn},
                          {"experts", moe.experts}, {"topk", moe.topk}};
    if (res.ran) {
      const long long per_expert = static_cast<long long>(tokens) * moe.topk / moe.experts;
      row["rows_per_expert"] = per_expert;
      row["total_us"] = res.seconds * 1e6;
      row["dispatch_us"] = res.dispatch_seconds * 1e6;
      row["expert_gemms_us"] = res.expert_gemm_seconds * 1e6;
      if (fit_b16.ok) {
        // One GEMM per expert (a loop): groups = 1 each, `experts` of them.
        const double pred = moe.experts * (predict(fit_b16, per_expert, 2 * moe.expert_ffn, moe.hidden, 1, sms, tiling) +
                                           predict(fit_b16, per_expert, moe.hidden, moe.expert_ffn, 1, sms, tiling));
        row["expert_gemms_predicted_us"] = pred * 1e6;
        row["expert_gemms_relative_error"] = res.expert_gemm_seconds > 0 ? pred / res.expert_gemm_seconds - 1.0 : 0.0;
      }
    } else {
      row["error"] = res.message;
    }
    moe_points.push_back(row);
  }

  // ---- Memory-bound kernel (stream triad) ----
  const std::vector<std::size_t> sizes = opt.quick ? std::vector<std::size_t>{1u << 24, 1u << 26}
                                                   : std::vector<std::size_t>{1u << 22, 1u << 24, 1u << 26, 1u << 28};
  say(fmt::format("memory: stream triad at {} sizes x {} repeats", sizes.size(), repeats));
  std::vector<Eigen::Vector2d> mx;
  std::vector<double> mt;
  nlohmann::json mem_points = nlohmann::json::array();
  for (std::size_t n : sizes) {
    const auto r = kernels::cuda_stream_triad(n, repeats, opt.device);
    if (!r.ran) {
      mem_points.push_back({{"floats", n}, {"error", r.message}});
      continue;
    }
    mx.push_back(Eigen::Vector2d(1.0, r.bytes));
    mt.push_back(r.seconds);
    mem_points.push_back({{"bytes", r.bytes}, {"measured_us", r.seconds * 1e6}, {"GBps", r.bandwidth_Bps / 1e9}});
  }
  if (mt.size() < 2) throw std::runtime_error("calibrate_cuda: the stream triad did not run: " + mem_points.dump());
  const auto mem_fit = detail::fit_relative_checked<2>(mx, mt, {"t0_s", "s_per_byte"}, kFixedTimeFloor);
  const Eigen::Vector2d cm = mem_fit.c;
  const double bandwidth = cm(1) > 0 ? 1.0 / cm(1) : mx.back()(1) / mt.back();
  for (std::size_t i = 0, j = 0; i < mem_points.size(); ++i) {
    if (!mem_points[i].contains("bytes")) continue;
    const double pred = mx[j].dot(cm);
    mem_points[i]["predicted_us"] = pred * 1e6;
    mem_points[i]["relative_error"] = pred / mt[j] - 1.0;
    ++j;
  }

  // ---- The device: a preset when name and SM count match, else estimated ----
  std::string preset;
  hw::GpuSpec spec;
  for (const std::string& name : hw::gpu_preset_names()) {
    const hw::GpuSpec g = hw::gpu_preset(name);
    if (g.sms == sms && lower(dev.name).find(lower(name)) != std::string::npos) {
      preset = name;
      spec = g;
      break;
    }
  }
  nlohmann::json device_json;
  double peak_fp8 = 0, peak_bf16 = 0, peak_hbm = 0;
  if (!preset.empty()) {
    peak_fp8 = spec.peak_fp8.value();
    peak_bf16 = spec.peak_bf16.value();
    peak_hbm = spec.hbm_bandwidth.value();
  } else {
    // Hopper's dense tensor rates per SM per clock: 4096 BF16 and 8192 FP8
    // FLOPs (989.4 / 1978.9 TFLOPS = 132 SMs x 1830 MHz x that).
    const double clock = dev.sm_clock_mhz * 1e6;
    peak_bf16 = sms * clock * 4096.0;
    peak_fp8 = 2.0 * peak_bf16;
    peak_hbm = dev.hbm_peak_Bps > 0 ? dev.hbm_peak_Bps : bandwidth;
    device_json = {
        {"name", fmt::format("cuda{}", opt.device)},
        {"full_name", dev.name},
        {"sms", sms},
        {"bf16_dense_TFLOPS", peak_bf16 / 1e12},
        {"fp16_dense_TFLOPS", peak_bf16 / 1e12},
        {"fp8_dense_TFLOPS", peak_fp8 / 1e12},
        {"fp32_simt_TFLOPS", sms * clock * 256.0 / 1e12},
        {"hbm_capacity_GiB", dev.memory_bytes / (1024.0 * 1024.0 * 1024.0)},
        {"hbm_TBps", peak_hbm / 1e12},
        {"nvlink_unidir_GBps", 450.0},
        {"nvlink_latency_us", 3.33},
        {"clock_boost_MHz", dev.sm_clock_mhz > 0 ? dev.sm_clock_mhz : 1.0},
        {"tdp_W", 700.0},
        {"sources",
         {{"sms", "cudaDevAttrMultiProcessorCount"},
          {"bf16_dense_TFLOPS", "ESTIMATE: SMs x max SM clock x 4096 FLOP/clk/SM (Hopper's dense BF16 rate); not a datasheet"},
          {"fp16_dense_TFLOPS", "as bf16_dense_TFLOPS"},
          {"fp8_dense_TFLOPS", "ESTIMATE: twice bf16_dense_TFLOPS (Hopper); not a datasheet"},
          {"fp32_simt_TFLOPS", "ESTIMATE: SMs x clock x 128 FMA/clk/SM"},
          {"hbm_capacity_GiB", "cudaDeviceProp::totalGlobalMem"},
          {"hbm_TBps", "2 x cudaDevAttrMemoryClockRate x cudaDevAttrGlobalMemoryBusWidth / 8"},
          {"nvlink_unidir_GBps", "NOT MEASURED: H100 SXM placeholder (one GPU measures no interconnect)"},
          {"nvlink_latency_us", "NOT MEASURED: H800 placeholder"},
          {"clock_boost_MHz", "cudaDevAttrClockRate"},
          {"tdp_W", "NOT MEASURED: placeholder required by the spec format, unused"}}}};
  }

  // ---- All-to-all: not measurable on one GPU; copied from the shipped H800 profile ----
  nlohmann::json ep;
  std::string ep_source;
  try {
    ep = hw::to_json(hw::load_profile("h800"))["ep_all_to_all"];
    ep_source = "ep_all_to_all: NOT MEASURED (one GPU); copied from the shipped h800 profile (DeepEP's published tables)";
  } catch (const std::exception& e) {
    ep = {{"saturating_sms", 20},
          {"ref_nic_GBps", 50.0},
          {"ref_nvlink_GBps", 160.0},
          {"points", nlohmann::json::array({{{"ep", 2}, {"link", "nvlink"}, {"dispatch_GBps", 160.0}, {"combine_GBps", 160.0}}})}};
    ep_source = std::string("ep_all_to_all: NOT MEASURED (one GPU) and the h800 profile could not be loaded (") +
                e.what() + "): placeholder";
  }

  nlohmann::json out;
  out["name"] = fmt::format("cuda{}-local", opt.device);
  out["gpu"] = preset.empty() ? fmt::format("cuda{}", opt.device) : preset;
  out["origin"] = fmt::format(
      "trainsim calibrate --device cuda:{}{} on {} (local microbenchmarks, CUDA events, median of {} runs after a "
      "warm-up; gemm_fp8 from the {})",
      opt.device, opt.quick ? " --quick" : "", dev.name, repeats, fp8_kernel);
  out["reference"] = {{"sms", sms},
                      {"gemm_precision", "fp8"},
                      {"peak_gemm_TFLOPS", peak_fp8 / 1e12},
                      {"peak_attention_TFLOPS", peak_bf16 / 1e12},
                      {"hbm_TBps", peak_hbm / 1e12}};
  if (!device_json.is_null()) out["device"] = device_json;
  out["gemm_fp8"] = fit_json(fp8, tiling, true);
  out["gemm_fp8_wgrad"] = fit_json(fp8, tiling, false);
  std::vector<std::pair<std::string, detail::FitCheck>> fit_checks{{"gemm_fp8", fp8.check},
                                                                   {"memory_bound", mem_fit.check}};
  // Attention: the CUDA baseline kernel (kernels/attention_cuda.hpp), causal,
  // V3's head dims, fitted as t = t0 + FLOPs / rate per pass with the
  // simulator's FLOP counts (forward 2*h*s^2/2*(dqk+dv), backward 2.5x).
  std::string attention_source;
  {
    std::vector<Eigen::Vector2d> fx, bx;
    std::vector<double> ft, bt;
    nlohmann::json pts = nlohmann::json::array();
    std::mt19937 arng(7);
    std::normal_distribution<float> an(0.0f, 1.0f);
    const std::vector<int> seqs = opt.quick ? std::vector<int>{1024, 2048} : std::vector<int>{1024, 2048, 4096};
    std::string why;
    for (int seq : seqs) {
      kernels::AttentionShape sh;
      sh.seq = seq;
      sh.heads = 16;
      sh.dqk = 192;
      sh.dv = 128;
      sh.scale = 1.0f / std::sqrt(192.0f);
      sh.causal = true;
      auto fill = [&](std::size_t n) {
        std::vector<float> v(n);
        for (auto& x : v) x = an(arng);
        return v;
      };
      const std::size_t nq = static_cast<std::size_t>(seq) * sh.heads * sh.dqk;
      const std::size_t nv = static_cast<std::size_t>(seq) * sh.heads * sh.dv;
      const auto q = fill(nq), k = fill(nq), v = fill(nv), d_o = fill(nv);
      const auto r = kernels::attention_cuda(sh, q, k, v, d_o, repeats);
      if (!r.ran) {
        why = r.message;
        break;
      }
      const double flops = 2.0 * sh.heads * double(seq) * seq / 2.0 * (sh.dqk + sh.dv);
      fx.push_back(Eigen::Vector2d(1.0, flops));
      ft.push_back(r.forward_seconds);
      bx.push_back(Eigen::Vector2d(1.0, 2.5 * flops));
      bt.push_back(r.backward_seconds);
      pts.push_back({{"seq", seq}, {"heads", sh.heads}, {"forward_us", r.forward_seconds * 1e6},
                     {"backward_us", r.backward_seconds * 1e6}});
    }
    if (ft.size() == seqs.size()) {
      const auto fwd_fit = detail::fit_relative_checked<2>(fx, ft, {"t0_s", "s_per_flop"}, kFixedTimeFloor);
      const auto bwd_fit = detail::fit_relative_checked<2>(bx, bt, {"t0_s", "s_per_flop"}, kFixedTimeFloor);
      const Eigen::Vector2d cf = fwd_fit.c, cb = bwd_fit.c;
      fit_checks.emplace_back("attention forward", fwd_fit.check);
      fit_checks.emplace_back("attention backward", bwd_fit.check);
      out["attention_bf16"] = {{"t0_us", std::max(0.0, 0.5 * (cf(0) + cb(0)) * 1e6)},
                               {"forward_TFLOPS_per_sm", 1.0 / cf(1) / sms / 1e12},
                               {"backward_TFLOPS_per_sm", 1.0 / cb(1) / sms / 1e12},
                               {"checks", {{"measured", true}, {"points", pts}}}};
      attention_source = "attention_bf16: trainsim's CUDA baseline attention kernel (not FlashAttention-3), causal, 16 heads, 192/128";
    } else {
      // The BF16 GEMM rate stands in when the attention kernel cannot run.
      const double attn_rate = bf16_rate_per_sm > 0 ? bf16_rate_per_sm : 0.5 * fp8_rate_per_sm;
      out["attention_bf16"] = {{"t0_us", std::max(0.0, (fit_b16.ok ? fit_b16.c(0) : fp8.c(0)) * 1e6)},
                               {"forward_TFLOPS_per_sm", attn_rate / 1e12},
                               {"backward_TFLOPS_per_sm", attn_rate / 1e12},
                               {"checks", {{"measured", false}, {"reason", why}}}};
      attention_source = "attention_bf16: NOT MEASURED (" + why + "); cuBLASLt BF16 GEMM rate per SM as a stand-in";
    }
  }
  out["memory_bound"] = {{"hbm_efficiency", std::clamp(bandwidth / peak_hbm, 0.01, 1.0)},
                         {"t0_us", std::max(0.0, cm(0) * 1e6)}};
  out["ep_all_to_all"] = ep;
  out["warnings"] = detail::fit_warnings(fit_checks);
  out["sources"] = {
      fmt::format("measured on {} (device {}) by trainsim calibrate --device cuda", dev.name, opt.device),
      preset.empty() ? std::string("device peaks: ESTIMATED from runtime attributes (no preset matched the name and SM count)")
                     : fmt::format("device peaks: datasheet values of the {} preset (name and {} SMs match)", preset, sms),
      "gemm_fp8: " + fp8_kernel + fmt::format(", wave model with 128x128 tiles over {} SMs", sms),
      "gemm_fp8_wgrad: same fit as gemm_fp8 (weight-gradient shapes not measured separately)",
      attention_source,
      fmt::format("memory_bound: stream triad, fitted {:.0f} GB/s of {:.0f} GB/s peak", bandwidth / 1e9, peak_hbm / 1e9),
      ep_source};
  nlohmann::json fits = nlohmann::json::object();
  if (fit_ours.ok) fits["fp8_wgmma"] = fit_json(fit_ours, tiling, true);
  if (fit_lt8.ok) fits["fp8_cublaslt"] = fit_json(fit_lt8, tiling, true);
  if (fit_b16.ok) fits["bf16_cublaslt"] = fit_json(fit_b16, tiling, true);
  out["fitted_points"] = {{"gemm_grid", grid},
                          {"fits", fits},
                          {"asymptotic_TFLOPS", {{"fp8_profile", fp8_rate_per_sm * sms / 1e12},
                                                 {"bf16_cublaslt", bf16_rate_per_sm * sms / 1e12}}},
                          {"grouped", grouped},
                          {"moe_expert_path", moe_points},
                          {"memory", mem_points},
                          {"failures", failures}};
  out["software"] = {{"cuda_devices", info.message},
                     {"device", {{"index", opt.device},
                                 {"name", dev.name},
                                 {"compute_capability", fmt::format("{}.{}", dev.compute_major, dev.compute_minor)},
                                 {"sm_clock_MHz", dev.sm_clock_mhz},
                                 {"memory_clock_MHz", dev.memory_clock_mhz},
                                 {"memory_bus_width_bits", dev.memory_bus_width_bits},
                                 {"l2_bytes", dev.l2_bytes}}},
                     {"kernels", "fp8_gemm_cuda (wgmma, sm_90a), cuBLASLt, cuBLAS, moe_cuda, stream triad"}};
  return out;
}

}  // namespace trainsim::calibrate
