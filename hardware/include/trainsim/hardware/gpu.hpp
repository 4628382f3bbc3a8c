#pragma once
// GPU specifications as data.
//
// One JSON file per GPU under data/gpus/ (compiled into the binary), units in
// the key names, and a "sources" object saying where every number came from.
// A GPU is never an `if` chain: adding one is adding a file. Peaks are the
// vendor's dense (non-sparse) figures; what a kernel achieves of them is the
// business of calibration profiles, not of this struct.
//
// File schema (all keys required; "fp8_dense_TFLOPS" may be null = no FP8):
//   name, full_name            strings (name is the preset id, e.g. "H800")
//   sms                        integer
//   bf16_dense_TFLOPS, fp16_dense_TFLOPS, fp8_dense_TFLOPS   tensor-core peaks
//   fp32_simt_TFLOPS           non-tensor FP32 peak
//   hbm_capacity_GiB           usable capacity as the device reports it
//   hbm_TBps                   HBM bandwidth (1 TB = 1e12 B)
//   nvlink_unidir_GBps         per GPU, one direction (1 GB = 1e9 B)
//   nvlink_latency_us          small-message GPU-to-GPU latency within a node
//   clock_boost_MHz, tdp_W
//   sources                    {key: text}; keys must name fields above
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "trainsim/common/precision.hpp"
#include "trainsim/common/units.hpp"

namespace trainsim {
class JsonObject;
}

namespace trainsim::hw {

struct GpuSpec {
  std::string name, full_name;
  int sms = 0;
  FlopsPerSecond peak_bf16{}, peak_fp16{}, peak_fp8{}, peak_fp32_simt{};  // 0 = unsupported
  ByteCount hbm_capacity{};
  BytesPerSecond hbm_bandwidth{};
  BytesPerSecond nvlink_unidir{};  // per GPU, one direction
  Time nvlink_latency{};           // GPU -> NVSwitch -> GPU, small message
  double clock_boost_mhz = 0.0;
  double tdp_watts = 0.0;
  std::map<std::string, std::string> sources;  // key name in the file -> where it came from

  bool supports(Precision p) const;
  // Dense peak for tensor-core work in `p`; FP32 gives the non-tensor (SIMT)
  // peak; an unsupported format gives 0.
  FlopsPerSecond peak(Precision p) const;
};

// Which lower bounds a device's rates are checked against: a datasheet (a GPU
// preset or a scenario's inline GPU) must be at least 1 GFLOP/s and 1 GB/s
// (anything slower is a unit slip); a device measured by `trainsim calibrate`
// (a profile's "device" block) may be as slow as 1 MFLOP/s and 1 MB/s, since a
// CPU kernel in an instrumented build (ASan, Valgrind, a debug build) runs
// below 1 GFLOP/s, and the rate is then true, if slow.
enum class DeviceBounds { Datasheet, Measured };

// Strict parse of one GPU object: every key required (fp8 may be null), numbers
// range-checked, unknown keys rejected (finish() is called). InputError on any
// problem, naming file and JSON path.
GpuSpec parse_gpu(JsonObject& obj, DeviceBounds bounds = DeviceBounds::Datasheet);

// The embedded preset data/gpus/<name>.json. An unknown name throws InputError
// whose `expected` lists the available presets; `file` and `json_path` say
// where the name was written (for the message).
GpuSpec gpu_preset(const std::string& name, const std::string& file = "",
                   const std::string& json_path = "");

// Preset ids available, sorted ("A100-80GB", "B200", "H100", "H200", "H800").
std::vector<std::string> gpu_preset_names();

// Echo for reports: the same keys and units as the data file.
nlohmann::json to_json(const GpuSpec& gpu);

}  // namespace trainsim::hw
