#include "trainsim/hardware/gpu.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "trainsim/common/embedded_data.hpp"
#include "trainsim/common/json_reader.hpp"

namespace trainsim::hw {

namespace {

constexpr const char* kPresetDir = "gpus/";

// Every key of the schema except "sources"; also the keys "sources" may name.
constexpr const char* kFieldKeys[] = {
    "name",             "full_name",        "sms",
    "bf16_dense_TFLOPS", "fp16_dense_TFLOPS", "fp8_dense_TFLOPS",
    "fp32_simt_TFLOPS", "hbm_capacity_GiB", "hbm_TBps",
    "nvlink_unidir_GBps", "nvlink_latency_us", "clock_boost_MHz",
    "tdp_W"};

// Generous physical bounds: they catch unit slips (GB/s written as TB/s) and
// sign errors, not plausible future parts.
constexpr double kMaxTflops = 1e6;
// Lower bounds (DeviceBounds in gpu.hpp): TFLOPS and TB/s.
constexpr double kMinDatasheetRate = 1e-3;  // 1 GFLOP/s, 1 GB/s
constexpr double kMinMeasuredRate = 1e-6;   // 1 MFLOP/s, 1 MB/s

}  // namespace

bool GpuSpec::supports(Precision p) const { return peak(p).value() > 0.0; }

FlopsPerSecond GpuSpec::peak(Precision p) const {
  switch (p) {
    case Precision::BF16: return peak_bf16;
    case Precision::FP16: return peak_fp16;
    case Precision::FP8: return peak_fp8;
    case Precision::FP32: return peak_fp32_simt;
  }
  return FlopsPerSecond(0.0);
}

GpuSpec parse_gpu(JsonObject& obj, DeviceBounds bounds) {
  const double lo = bounds == DeviceBounds::Measured ? kMinMeasuredRate : kMinDatasheetRate;
  GpuSpec g;
  g.name = obj.string("name");
  if (g.name.empty()) obj.fail("name", "a non-empty preset id such as \"H800\"");
  g.full_name = obj.string("full_name");
  g.sms = static_cast<int>(obj.integer("sms", 1, 100000));
  g.peak_bf16 = tflops_per_s(obj.number("bf16_dense_TFLOPS", lo, kMaxTflops));
  g.peak_fp16 = tflops_per_s(obj.number("fp16_dense_TFLOPS", lo, kMaxTflops));
  if (const Json* fp8 = obj.raw_optional("fp8_dense_TFLOPS"); fp8 == nullptr) {
    obj.raw("fp8_dense_TFLOPS");  // throws: required key (null when unsupported)
  } else if (fp8->is_null()) {
    g.peak_fp8 = FlopsPerSecond(0.0);
  } else {
    g.peak_fp8 = tflops_per_s(obj.number("fp8_dense_TFLOPS", lo, kMaxTflops));
  }
  g.peak_fp32_simt = tflops_per_s(obj.number("fp32_simt_TFLOPS", lo, kMaxTflops));
  g.hbm_capacity = bytes(obj.number("hbm_capacity_GiB", 1e-3, 1e6) * kGiB);
  g.hbm_bandwidth = BytesPerSecond(obj.number("hbm_TBps", lo, 1e3) * 1e12);
  g.nvlink_unidir = gbytes_per_s(obj.number("nvlink_unidir_GBps", 1e-3, 1e6));
  g.nvlink_latency = Time::us(obj.number("nvlink_latency_us", 0.0, 1e4));
  g.clock_boost_mhz = obj.number("clock_boost_MHz", 1.0, 1e5);
  g.tdp_watts = obj.number("tdp_W", 1.0, 1e5);

  JsonObject src = obj.object("sources");
  for (const char* key : kFieldKeys) {
    if (src.has(key)) g.sources[key] = src.string(key);
  }
  src.finish();  // a source for a key that does not exist is a misspelling
  obj.finish();
  return g;
}

std::vector<std::string> gpu_preset_names() {
  std::vector<std::string> names;
  const std::string prefix = kPresetDir;
  const std::string suffix = ".json";
  for (std::string_view p : embedded_files(prefix)) {
    std::string s(p);
    if (s.size() <= prefix.size() + suffix.size() || s.compare(s.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    std::string id = s.substr(prefix.size(), s.size() - prefix.size() - suffix.size());
    if (id.find('/') == std::string::npos) names.push_back(id);
  }
  return names;  // embedded_files is sorted
}

GpuSpec gpu_preset(const std::string& name, const std::string& file, const std::string& json_path) {
  const std::string rel = kPresetDir + name + ".json";
  auto text = embedded_file(rel);
  if (!text || name.find('/') != std::string::npos) {
    std::string list;
    for (const auto& n : gpu_preset_names()) list += (list.empty() ? "" : ", ") + n;
    throw InputError(file, json_path, fmt::format("\"{}\" (string)", name),
                     fmt::format("a GPU preset name, one of: {}; or an inline GPU object", list));
  }
  const std::string origin = "data/" + rel;
  Json j = parse_json_text(std::string(*text), origin);
  JsonObject obj(j, origin, "");
  GpuSpec g = parse_gpu(obj);
  if (g.name != name)
    throw InputError(origin, "/name", fmt::format("\"{}\" (string)", g.name),
                     fmt::format("\"{}\", the preset id the file is named after", name));
  return g;
}

nlohmann::json to_json(const GpuSpec& g) {
  Json j = Json::object();
  j["name"] = g.name;
  j["full_name"] = g.full_name;
  j["sms"] = g.sms;
  j["bf16_dense_TFLOPS"] = g.peak_bf16.value() / 1e12;
  j["fp16_dense_TFLOPS"] = g.peak_fp16.value() / 1e12;
  j["fp8_dense_TFLOPS"] = g.peak_fp8.value() > 0.0 ? Json(g.peak_fp8.value() / 1e12) : Json(nullptr);
  j["fp32_simt_TFLOPS"] = g.peak_fp32_simt.value() / 1e12;
  j["hbm_capacity_GiB"] = g.hbm_capacity.value() / kGiB;
  j["hbm_TBps"] = g.hbm_bandwidth.value() / 1e12;
  j["nvlink_unidir_GBps"] = g.nvlink_unidir.value() / 1e9;
  j["nvlink_latency_us"] = g.nvlink_latency.to_us();
  j["clock_boost_MHz"] = g.clock_boost_mhz;
  j["tdp_W"] = g.tdp_watts;
  Json src = Json::object();
  for (const auto& [k, v] : g.sources) src[k] = v;
  j["sources"] = src;
  return j;
}

}  // namespace trainsim::hw
