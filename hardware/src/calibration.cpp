#include "trainsim/hardware/calibration.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <stdexcept>

#include "trainsim/common/embedded_data.hpp"
#include "trainsim/common/json_reader.hpp"

namespace trainsim::hw {

namespace {

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

}  // namespace

KernelTimer::KernelTimer(const CalibrationProfile& profile, const GpuSpec& gpu, int compute_sms)
    : p_(&profile), gpu_(&gpu), sms_(compute_sms) {
  if (compute_sms < 1 || compute_sms > gpu.sms)
    throw std::invalid_argument(fmt::format("KernelTimer: {} compute SMs on a GPU with {}", compute_sms, gpu.sms));
  transferred_ = gpu.name != profile.gpu;
  hbm_Bps_ = gpu.hbm_bandwidth.value();
  per_sm_scale_ = 1.0;
}

Time KernelTimer::gemm(std::int64_t m, std::int64_t n, std::int64_t k, std::int64_t groups,
                       Precision precision, bool weight_gradient) const {
  if (m <= 0 || n <= 0 || k <= 0 || groups <= 0) return Time::zero();
  const GemmFit& f = weight_gradient ? p_->gemm_fp8_wgrad : p_->gemm_fp8;
  const double peak = gpu_->peak(precision).value();
  if (peak <= 0)
    throw std::invalid_argument(fmt::format("{} has no {} tensor-core rate", gpu_->name, to_string(precision)));
  // beta was measured for FP8 on the reference GPU; per-SM throughput in this
  // precision on this GPU relative to that sets the scale.
  const double ref_per_sm = p_->ref_peak_gemm_flops / p_->ref_sms;
  const double this_per_sm = peak / gpu_->sms;
  const double beta = f.beta_s * ref_per_sm / this_per_sm;
  const std::int64_t tile_m = m <= f.small_tile_m ? f.small_tile_m : f.tile_m;
  const std::int64_t tiles = groups * ceil_div(m, tile_m) * ceil_div(n, f.tile_n);
  const std::int64_t waves = ceil_div(tiles, sms_);
  // K-proportional work in units of "one full tile for one element of K":
  // per wave on GPUs (edge tiles padded); the real work spread over the SMs
  // when edge tiles cost only what they compute.
  const double k_work =
      f.partial_tiles
          ? static_cast<double>(groups) * static_cast<double>(m) * static_cast<double>(n) /
                (static_cast<double>(f.tile_m) * f.tile_n * sms_) * static_cast<double>(k)
          : static_cast<double>(waves) * static_cast<double>(k) * static_cast<double>(tile_m) / f.tile_m;
  const double compute = f.t0_s + static_cast<double>(waves) * f.alpha_s + beta * k_work;
  // HBM roofline: read A (m x k) and B (k x n) per group in the input format,
  // write C (m x n) in BF16.
  const double in_b = bytes_per_element(precision);
  const double g = static_cast<double>(groups), md = static_cast<double>(m), nd = static_cast<double>(n),
               kd = static_cast<double>(k);
  const double bytes = g * (md * kd + kd * nd) * in_b + g * md * nd * 2.0;
  const double memory = f.t0_s + bytes / (p_->hbm_efficiency * hbm_Bps_);
  return Time::seconds(std::max(compute, memory));
}

Time KernelTimer::attention(double executed_flops, bool backward) const {
  if (executed_flops <= 0) return Time::zero();
  const double ref_per_sm = p_->ref_peak_attention_flops / p_->ref_sms;
  const double scale = (gpu_->peak_bf16.value() / gpu_->sms) / ref_per_sm;
  const double rate = (backward ? p_->attn_bwd_flops_per_sm : p_->attn_fwd_flops_per_sm) * scale * sms_;
  return Time::seconds(p_->attn_t0_s + executed_flops / rate);
}

Time KernelTimer::memory(ByteCount bytes) const {
  if (bytes.value() <= 0) return Time::zero();
  return Time::seconds(p_->memory_t0_s + bytes.value() / (p_->hbm_efficiency * hbm_Bps_));
}

double KernelTimer::ep_bandwidth(int ep, int gpus_per_node, bool dispatch, BytesPerSecond nic,
                                 BytesPerSecond nvlink, int comm_sms) const {
  const bool intranode = ep <= gpus_per_node;
  std::vector<const EpPoint*> pts;
  for (const auto& p : p_->ep_points)
    if (p.nvlink == intranode) pts.push_back(&p);
  if (pts.empty())
    throw std::invalid_argument(fmt::format("profile {} has no {} all-to-all points", p_->name,
                                            intranode ? "intranode" : "internode"));
  auto bw_of = [&](const EpPoint* p) { return dispatch ? p->dispatch_Bps : p->combine_Bps; };
  double bw;
  if (pts.size() == 1 || ep <= pts.front()->ep) {
    bw = bw_of(pts.front());
  } else if (ep >= pts.back()->ep) {
    bw = bw_of(pts.back());
  } else {
    std::size_t i = 1;
    while (pts[i]->ep < ep) ++i;
    const double x0 = std::log2(pts[i - 1]->ep), x1 = std::log2(pts[i]->ep), x = std::log2(ep);
    const double t = (x - x0) / (x1 - x0);
    bw = bw_of(pts[i - 1]) * (1 - t) + bw_of(pts[i]) * t;
  }
  // Scale with the bottleneck link relative to the measured system.
  bw *= intranode ? nvlink.value() / p_->ep_ref_nvlink_Bps : nic.value() / p_->ep_ref_nic_Bps;
  if (comm_sms < p_->ep_saturating_sms) bw *= static_cast<double>(comm_sms) / p_->ep_saturating_sms;
  return bw;
}

Time KernelTimer::ep_dispatch(ByteCount bytes, int ep, int gpus_per_node, BytesPerSecond nic,
                              BytesPerSecond nvlink, int comm_sms) const {
  if (bytes.value() <= 0 || ep <= 1) return Time::zero();
  return Time::seconds(bytes.value() / ep_bandwidth(ep, gpus_per_node, true, nic, nvlink, comm_sms));
}

Time KernelTimer::ep_combine(ByteCount bytes, int ep, int gpus_per_node, BytesPerSecond nic,
                             BytesPerSecond nvlink, int comm_sms) const {
  if (bytes.value() <= 0 || ep <= 1) return Time::zero();
  return Time::seconds(bytes.value() / ep_bandwidth(ep, gpus_per_node, false, nic, nvlink, comm_sms));
}

CalibrationProfile parse_profile(const nlohmann::json& j, const std::string& file) {
  CalibrationProfile p;
  JsonObject o(j, file, "");
  p.name = o.string("name");
  p.gpu = o.string("gpu");
  p.origin = o.string("origin");
  {
    auto r = o.object("reference");
    p.ref_sms = static_cast<int>(r.integer("sms", 1, 100000));
    const std::string prec = r.choice("gemm_precision", {"fp8", "bf16", "fp16", "fp32"});
    p.ref_gemm_precision = prec == "fp8" ? Precision::FP8 : prec == "bf16" ? Precision::BF16
                           : prec == "fp16" ? Precision::FP16 : Precision::FP32;
    p.ref_peak_gemm_flops = r.number("peak_gemm_TFLOPS", 1e-6, 1e6) * 1e12;
    p.ref_peak_attention_flops = r.number("peak_attention_TFLOPS", 1e-6, 1e6) * 1e12;
    p.ref_hbm_Bps = r.number("hbm_TBps", 1e-6, 1000) * 1e12;
    r.finish();
  }
  if (auto dev = o.object_optional("device")) {
    p.device = parse_gpu(*dev, DeviceBounds::Measured);
  }
  auto read_fit = [&](const char* key, GemmFit& f) {
    auto g = o.object(key);
    f.t0_s = g.number("t0_us", -1e3, 1e6) * 1e-6;
    f.alpha_s = g.number("alpha_us", -1e3, 1e6) * 1e-6;
    f.beta_s = g.number("beta_ns_per_k", 1e-9, 1e6) * 1e-9;
    f.tile_m = static_cast<int>(g.integer("tile_m", 1, 4096));
    f.small_tile_m = static_cast<int>(g.integer("small_tile_m", 1, 4096));
    f.tile_n = static_cast<int>(g.integer("tile_n", 1, 4096));
    f.partial_tiles = g.boolean_or("partial_tiles", false);
    auto fit = g.object("fit");
    f.points_fitted = static_cast<int>(fit.integer("points", 0, 1000000));
    f.mean_abs_rel_error = fit.number("mean_abs_rel_error", 0, 100);
    f.max_abs_rel_error = fit.number("max_abs_rel_error", 0, 100);
    fit.raw("residuals");
    fit.raw_optional("conditioning");  // rank, condition number, undetermined parameters (informative)
    fit.finish();
    g.finish();
  };
  read_fit("gemm_fp8", p.gemm_fp8);
  read_fit("gemm_fp8_wgrad", p.gemm_fp8_wgrad);
  {
    auto a = o.object("attention_bf16");
    p.attn_fwd_flops_per_sm = a.number("forward_TFLOPS_per_sm", 1e-6, 1e6) * 1e12;
    p.attn_bwd_flops_per_sm = a.number("backward_TFLOPS_per_sm", 1e-6, 1e6) * 1e12;
    p.attn_t0_s = a.number("t0_us", 0, 1e7) * 1e-6;
    a.raw_optional("checks");  // informative residuals, not used for timing
    a.finish();
  }
  {
    auto m = o.object("memory_bound");
    p.hbm_efficiency = m.number("hbm_efficiency", 0.01, 1.0);
    p.memory_t0_s = m.number("t0_us", 0, 1e6) * 1e-6;
    m.finish();
  }
  {
    auto e = o.object("ep_all_to_all");
    p.ep_saturating_sms = static_cast<int>(e.integer("saturating_sms", 1, 1000));
    p.ep_ref_nic_Bps = e.number("ref_nic_GBps", 0.001, 1e6) * 1e9;
    p.ep_ref_nvlink_Bps = e.number("ref_nvlink_GBps", 0.001, 1e6) * 1e9;
    const Json& pts = e.raw("points");
    if (!pts.is_array() || pts.empty()) e.fail("points", "a non-empty array of {ep, link, dispatch_GBps, combine_GBps}");
    for (std::size_t i = 0; i < pts.size(); ++i) {
      JsonObject q(pts[i], file, fmt::format("{}/points/{}", e.path(), i));
      EpPoint pt;
      pt.ep = static_cast<int>(q.integer("ep", 2, 1 << 20));
      pt.nvlink = q.choice("link", {"nvlink", "rdma"}) == "nvlink";
      pt.dispatch_Bps = q.number("dispatch_GBps", 0.001, 1e6) * 1e9;
      pt.combine_Bps = q.number("combine_GBps", 0.001, 1e6) * 1e9;
      q.finish();
      p.ep_points.push_back(pt);
    }
    std::sort(p.ep_points.begin(), p.ep_points.end(), [](const EpPoint& a, const EpPoint& b) { return a.ep < b.ep; });
    e.finish();
  }
  const Json& src = o.raw("sources");
  if (!src.is_array()) o.fail("sources", "an array of strings");
  for (const auto& s : src) {
    if (!s.is_string()) o.fail("sources", "an array of strings");
    p.sources.push_back(s.get<std::string>());
  }
  o.raw_optional("fitted_points");  // informative copy of the inputs, not read
  o.raw_optional("software");       // compiler and kernel versions of a measured profile, not read
  o.raw_optional("warnings");       // what the fits could not determine (printed by trainsim calibrate)
  o.finish();
  return p;
}

nlohmann::json to_json(const CalibrationProfile& p) {
  nlohmann::json j;
  j["name"] = p.name;
  j["gpu"] = p.gpu;
  j["origin"] = p.origin;
  j["reference"] = {{"sms", p.ref_sms},
                    {"gemm_precision", to_string(p.ref_gemm_precision)},
                    {"peak_gemm_TFLOPS", p.ref_peak_gemm_flops / 1e12},
                    {"peak_attention_TFLOPS", p.ref_peak_attention_flops / 1e12},
                    {"hbm_TBps", p.ref_hbm_Bps / 1e12}};
  if (!p.device.name.empty()) j["device"] = hw::to_json(p.device);
  j["gemm_fp8"] = {{"t0_us", p.gemm_fp8.t0_s * 1e6},
                   {"alpha_us", p.gemm_fp8.alpha_s * 1e6},
                   {"beta_ns_per_k", p.gemm_fp8.beta_s * 1e9},
                   {"tile_m", p.gemm_fp8.tile_m},
                   {"small_tile_m", p.gemm_fp8.small_tile_m},
                   {"tile_n", p.gemm_fp8.tile_n},
                   {"fit",
                    {{"points", p.gemm_fp8.points_fitted},
                     {"mean_abs_rel_error", p.gemm_fp8.mean_abs_rel_error},
                     {"max_abs_rel_error", p.gemm_fp8.max_abs_rel_error},
                     {"residuals", nlohmann::json::array()}}}};
  const GemmFit& w = p.gemm_fp8_wgrad;
  j["gemm_fp8_wgrad"] = {{"t0_us", w.t0_s * 1e6},
                         {"alpha_us", w.alpha_s * 1e6},
                         {"beta_ns_per_k", w.beta_s * 1e9},
                         {"tile_m", w.tile_m},
                         {"small_tile_m", w.small_tile_m},
                         {"tile_n", w.tile_n},
                         {"fit",
                          {{"points", w.points_fitted},
                           {"mean_abs_rel_error", w.mean_abs_rel_error},
                           {"max_abs_rel_error", w.max_abs_rel_error},
                           {"residuals", nlohmann::json::array()}}}};
  j["attention_bf16"] = {{"t0_us", p.attn_t0_s * 1e6},
                         {"forward_TFLOPS_per_sm", p.attn_fwd_flops_per_sm / 1e12},
                         {"backward_TFLOPS_per_sm", p.attn_bwd_flops_per_sm / 1e12}};
  j["memory_bound"] = {{"hbm_efficiency", p.hbm_efficiency}, {"t0_us", p.memory_t0_s * 1e6}};
  nlohmann::json pts = nlohmann::json::array();
  for (const auto& e : p.ep_points)
    pts.push_back({{"ep", e.ep},
                   {"link", e.nvlink ? "nvlink" : "rdma"},
                   {"dispatch_GBps", e.dispatch_Bps / 1e9},
                   {"combine_GBps", e.combine_Bps / 1e9}});
  j["ep_all_to_all"] = {{"saturating_sms", p.ep_saturating_sms},
                        {"ref_nic_GBps", p.ep_ref_nic_Bps / 1e9},
                        {"ref_nvlink_GBps", p.ep_ref_nvlink_Bps / 1e9},
                        {"points", pts}};
  j["sources"] = p.sources;
  return j;
}

CalibrationProfile load_profile(const std::string& name_or_path) {
  if (auto e = embedded_file("calibration/" + name_or_path + ".json")) {
    return parse_profile(parse_json_text(std::string(*e), "data/calibration/" + name_or_path + ".json"),
                         "data/calibration/" + name_or_path + ".json");
  }
  if (std::filesystem::exists(name_or_path))
    return parse_profile(parse_json_file(name_or_path), name_or_path);
  throw InputError(name_or_path, "", fmt::format("\"{}\"", name_or_path),
                   "a calibration profile name (e.g. \"h800\") or the path of a profile JSON file");
}

}  // namespace trainsim::hw
