#include <doctest/doctest.h>

#include "../support/test_support.hpp"

#include <string>

#include <nlohmann/json.hpp>

#include "trainsim/common/embedded_data.hpp"
#include "trainsim/common/json_reader.hpp"
#include "trainsim/hardware/gpu.hpp"

using namespace trainsim;
using namespace trainsim::hw;

namespace {

// A complete inline GPU object (H800 numbers) that tests then break one way at a time.
Json good_gpu() {
  return parse_json_text(R"({
    "name": "X", "full_name": "Test GPU", "sms": 132,
    "bf16_dense_TFLOPS": 989, "fp16_dense_TFLOPS": 989, "fp8_dense_TFLOPS": 1979,
    "fp32_simt_TFLOPS": 66.9, "hbm_capacity_GiB": 79.1, "hbm_TBps": 3.35,
    "nvlink_unidir_GBps": 200, "nvlink_latency_us": 3.33, "clock_boost_MHz": 1830, "tdp_W": 700,
    "sources": {"sms": "test"}})",
                         "gpu.json");
}

InputError parse_error(const Json& j) {
  return test::input_error_of([&] {
    JsonObject o(j, "gpu.json", "/cluster/gpu");
    parse_gpu(o);
  });
}

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("all five GPU presets load with their datasheet peaks") {
  CHECK(gpu_preset_names() == std::vector<std::string>{"A100-80GB", "B200", "H100", "H200", "H800"});

  GpuSpec h800 = gpu_preset("H800");
  CHECK(h800.name == "H800");
  CHECK(h800.sms == 132);
  // 989 TFLOPS = 1830 MHz x 132 SMs x 4096 FLOP/clk/SM (FlashMLA deep-dive).
  CHECK(h800.peak(Precision::BF16).value() == doctest::Approx(989e12));
  CHECK(h800.peak(Precision::FP8).value() == doctest::Approx(1979e12));
  CHECK(h800.peak(Precision::FP32).value() == doctest::Approx(66.9e12));
  CHECK(h800.clock_boost_mhz * 1e6 * h800.sms * 4096 == doctest::Approx(989e12).epsilon(0.001));
  CHECK(h800.hbm_capacity.value() == doctest::Approx(79.1 * kGiB));
  CHECK(h800.hbm_bandwidth.value() == doctest::Approx(3.35e12));
  CHECK(h800.nvlink_unidir.value() == doctest::Approx(200e9));
  CHECK(h800.nvlink_latency == Time::us(3.33));

  GpuSpec h100 = gpu_preset("H100");
  CHECK(h100.peak(Precision::BF16).value() == doctest::Approx(989.4e12));
  CHECK(h100.nvlink_unidir.value() == doctest::Approx(450e9));
  GpuSpec h200 = gpu_preset("H200");
  CHECK(h200.hbm_bandwidth.value() == doctest::Approx(4.8e12));
  CHECK(h200.hbm_capacity > h100.hbm_capacity);

  GpuSpec a100 = gpu_preset("A100-80GB");
  CHECK(a100.peak(Precision::BF16).value() == doctest::Approx(312e12));
  CHECK_FALSE(a100.supports(Precision::FP8));
  CHECK(a100.peak(Precision::FP8).value() == 0.0);
  CHECK(a100.supports(Precision::BF16));
  CHECK(a100.supports(Precision::FP32));
  CHECK(a100.nvlink_unidir.value() == doctest::Approx(300e9));

  GpuSpec b200 = gpu_preset("B200");
  CHECK(b200.peak(Precision::FP8).value() == doctest::Approx(4500e12));
  CHECK(b200.nvlink_unidir.value() == doctest::Approx(900e9));
  CHECK(b200.sms == 148);
}

TEST_CASE("every number of every preset has a source") {
  for (const auto& name : gpu_preset_names()) {
    CAPTURE(name);
    Json j = parse_json_text(std::string(*embedded_file("gpus/" + name + ".json")), name);
    GpuSpec g = gpu_preset(name);
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (it.key() == "name" || it.key() == "full_name" || it.key() == "sources") continue;
      CAPTURE(it.key());
      CHECK(g.sources.count(it.key()) == 1);
      CHECK_FALSE(g.sources[it.key()].empty());
    }
  }
}

TEST_CASE("to_json echoes the file's keys and parses back to the same spec") {
  for (const auto& name : gpu_preset_names()) {
    CAPTURE(name);
    GpuSpec g = gpu_preset(name);
    Json j = to_json(g);
    Json file = parse_json_text(std::string(*embedded_file("gpus/" + name + ".json")), name);
    for (auto it = file.begin(); it != file.end(); ++it) CHECK(j.contains(it.key()));
    JsonObject o(j, "echo", "");
    GpuSpec back = parse_gpu(o);
    CHECK(back.peak_bf16.value() == doctest::Approx(g.peak_bf16.value()));
    CHECK(back.peak_fp8.value() == doctest::Approx(g.peak_fp8.value()));
    CHECK(back.hbm_capacity.value() == doctest::Approx(g.hbm_capacity.value()));
    CHECK(back.nvlink_latency == g.nvlink_latency);
    CHECK(back.sources == g.sources);
  }
  CHECK(to_json(gpu_preset("A100-80GB"))["fp8_dense_TFLOPS"].is_null());
}

TEST_CASE("unknown preset names the available presets and where it was written") {
  try {
    gpu_preset("H900", "s.json", "/cluster/gpu");
    FAIL("expected an error");
  } catch (const InputError& e) {
    CHECK(e.file() == "s.json");
    CHECK(e.json_path() == "/cluster/gpu");
    CHECK(e.value().find("H900") != std::string::npos);
    for (const char* n : {"A100-80GB", "B200", "H100", "H200", "H800"})
      CHECK(e.expected().find(n) != std::string::npos);
  }
  CHECK_THROWS_AS(gpu_preset("../gpus/H800"), InputError);
}

TEST_CASE("inline GPU object parses; null fp8 means unsupported") {
  Json j = good_gpu();
  JsonObject o(j, "gpu.json", "/cluster/gpu");
  GpuSpec g = parse_gpu(o);
  CHECK(g.supports(Precision::FP8));
  CHECK(g.sources.at("sms") == "test");
  j["fp8_dense_TFLOPS"] = nullptr;
  JsonObject o2(j, "gpu.json", "/cluster/gpu");
  CHECK_FALSE(parse_gpu(o2).supports(Precision::FP8));
}

TEST_CASE("a measured device may be slower than any datasheet (instrumented CPU builds)") {
  // A single-thread CPU GEMM under ASan measures about 0.3 GFLOP/s = 3e-4 TFLOPS:
  // below the 1 GFLOP/s datasheet bound (a unit slip there), above the 1 MFLOP/s
  // bound of a measured device (slower than that is a broken measurement).
  Json j = good_gpu();
  for (const char* k : {"bf16_dense_TFLOPS", "fp16_dense_TFLOPS", "fp8_dense_TFLOPS", "fp32_simt_TFLOPS"}) j[k] = 3e-4;
  j["hbm_TBps"] = 5e-4;  // 0.5 GB/s
  const InputError e = parse_error(j);
  CHECK(e.json_path() == "/cluster/gpu/bf16_dense_TFLOPS");
  JsonObject o(j, "gpu.json", "/device");
  const GpuSpec g = parse_gpu(o, DeviceBounds::Measured);
  CHECK(g.peak_fp32_simt.value() == doctest::Approx(3e8));
  CHECK(g.hbm_bandwidth.value() == doctest::Approx(5e8));
  j["fp32_simt_TFLOPS"] = 1e-7;  // 0.1 MFLOP/s
  const InputError slow = test::input_error_of([&] {
    JsonObject o2(j, "gpu.json", "/device");
    parse_gpu(o2, DeviceBounds::Measured);
  });
  CHECK(slow.json_path() == "/device/fp32_simt_TFLOPS");
}

TEST_CASE("bad inline GPU objects are InputErrors at the right path") {
  {
    Json j = good_gpu();
    j.erase("hbm_TBps");
    InputError e = parse_error(j);
    CHECK(e.file() == "gpu.json");
    CHECK(e.json_path() == "/cluster/gpu/hbm_TBps");
  }
  {
    Json j = good_gpu();
    j.erase("fp8_dense_TFLOPS");  // required even though null is allowed
    CHECK(parse_error(j).json_path() == "/cluster/gpu/fp8_dense_TFLOPS");
  }
  {
    Json j = good_gpu();
    j["bf16_dense_TFLOPS"] = -989;
    InputError e = parse_error(j);
    CHECK(e.json_path() == "/cluster/gpu/bf16_dense_TFLOPS");
    CHECK(e.value().find("-989") != std::string::npos);
  }
  {
    Json j = good_gpu();
    j["nvlink_latency_us"] = -1;
    CHECK(parse_error(j).json_path() == "/cluster/gpu/nvlink_latency_us");
  }
  {
    Json j = good_gpu();
    j["sms"] = 131.5;
    CHECK(parse_error(j).json_path() == "/cluster/gpu/sms");
  }
  {
    Json j = good_gpu();
    j["hbm_TBPS"] = j["hbm_TBps"];  // misspelled extra key
    j.erase("hbm_TBps");
    InputError e = parse_error(j);
    CHECK(e.json_path() == "/cluster/gpu/hbm_TBps");  // the missing key is reported first
  }
  {
    Json j = good_gpu();
    j["tdp_w"] = 700;  // unknown key next to the correct one
    InputError e = parse_error(j);
    CHECK(e.json_path() == "/cluster/gpu/tdp_w");
    CHECK(e.expected().find("did you mean 'tdp_W'") != std::string::npos);
  }
  {
    Json j = good_gpu();
    j["sources"]["hbm_TBPS"] = "typo";  // a source for a key that does not exist
    CHECK(parse_error(j).json_path() == "/cluster/gpu/sources/hbm_TBPS");
  }
  {
    Json j = good_gpu();
    j["name"] = "";
    CHECK(parse_error(j).json_path() == "/cluster/gpu/name");
  }
}
}
