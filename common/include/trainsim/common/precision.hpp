#pragma once
// Numeric formats of tensor-core work. Shared by hardware (peak rates per
// format) and model (the format each operation runs in).
namespace trainsim {

enum class Precision { BF16, FP16, FP8, FP32 };

inline const char* to_string(Precision p) {
  switch (p) {
    case Precision::BF16: return "bf16";
    case Precision::FP16: return "fp16";
    case Precision::FP8: return "fp8";
    case Precision::FP32: return "fp32";
  }
  return "?";
}

// Bytes per element as stored in HBM.
inline constexpr double bytes_per_element(Precision p) {
  switch (p) {
    case Precision::BF16: return 2.0;
    case Precision::FP16: return 2.0;
    case Precision::FP8: return 1.0;
    case Precision::FP32: return 4.0;
  }
  return 0.0;
}

}  // namespace trainsim
