// Host-side part of attention_cuda.hpp, built in every configuration: shape
// and input validation, BF16 rounding, device choice and the result message.
// With CUDA it hands BF16 bit arrays to cuda/attention_cuda.cu (kernels +
// runtime calls); without CUDA, attention_cuda() validates and then says so.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "trainsim/kernels/attention_cuda.hpp"
#include "trainsim/kernels/cuda_device.hpp"

#if TRAINSIM_HAVE_CUDA
#include "cuda/attention_cuda_launch.hpp"
#endif

namespace trainsim::kernels {
namespace {

std::uint16_t to_bf16_bits(float x) {
  std::uint32_t bits = 0;
  std::memcpy(&bits, &x, sizeof bits);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) {  // NaN: keep it a (quiet) NaN
    return static_cast<std::uint16_t>((bits >> 16) | 0x0040u);
  }
  const std::uint32_t rounding_bias = 0x7FFFu + ((bits >> 16) & 1u);  // nearest, ties to even
  return static_cast<std::uint16_t>((bits + rounding_bias) >> 16);
}

[[maybe_unused]] std::vector<std::uint16_t> to_bf16(const std::vector<float>& x) {
  std::vector<std::uint16_t> out(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) out[i] = to_bf16_bits(x[i]);
  return out;
}

// Validation shared by the CUDA and stub builds: the shape, then the sizes.
std::string check_inputs(const AttentionShape& s, const std::vector<float>& q, const std::vector<float>& k,
                         const std::vector<float>& v, const std::vector<float>& d_o, int repeats) {
  if (std::string why = attention_cuda_check(s); !why.empty()) return why;
  const std::size_t rows = static_cast<std::size_t>(s.seq) * static_cast<std::size_t>(s.heads);
  const std::size_t nqk = rows * static_cast<std::size_t>(s.dqk);
  const std::size_t nv = rows * static_cast<std::size_t>(s.dv);
  if (q.size() != nqk || k.size() != nqk || v.size() != nv || (!d_o.empty() && d_o.size() != nv)) {
    return fmt::format("input sizes q {}, k {}, v {}, dO {} do not match seq {} x heads {} x dqk {} / dv {} "
                       "(expected {}, {}, {}, {} or 0)",
                       q.size(), k.size(), v.size(), d_o.size(), s.seq, s.heads, s.dqk, s.dv, nqk, nqk, nv, nv);
  }
  if (repeats < 1) return fmt::format("repeats must be >= 1 (got {})", repeats);
  return {};
}

}  // namespace

float attention_cuda_round_bf16(float x) {
  const std::uint32_t wide = static_cast<std::uint32_t>(to_bf16_bits(x)) << 16;
  float out = 0.0f;
  std::memcpy(&out, &wide, sizeof out);
  return out;
}

std::string attention_cuda_check(const AttentionShape& s) {
  if (s.seq < 1 || s.heads < 1) {
    return fmt::format("seq and heads must be positive (seq {}, heads {})", s.seq, s.heads);
  }
  if (s.heads > 65535) return fmt::format("heads {} above the supported 65535 (grid y)", s.heads);
  if (s.dqk < 1 || s.dqk > kAttentionCudaMaxHeadDim || s.dv < 1 || s.dv > kAttentionCudaMaxHeadDim) {
    return fmt::format("head dims dqk {} and dv {} unsupported: each must be in [1, {}]", s.dqk, s.dv,
                       kAttentionCudaMaxHeadDim);
  }
  if (!std::isfinite(s.scale) || s.scale == 0.0f) {
    return fmt::format("softmax scale must be finite and non-zero (got {})", s.scale);
  }
  const double elems = static_cast<double>(s.seq) * s.heads * std::max(s.dqk, s.dv);
  if (elems >= 2147483648.0) {
    return fmt::format("seq {} x heads {} x head dim {} = {:.0f} elements per tensor, above the supported 2^31", s.seq,
                       s.heads, std::max(s.dqk, s.dv), elems);
  }
  return {};
}

#if TRAINSIM_HAVE_CUDA
AttentionCudaResult attention_cuda(const AttentionShape& s, const std::vector<float>& q, const std::vector<float>& k,
                                   const std::vector<float>& v, const std::vector<float>& d_o, int repeats,
                                   AttentionCudaOutput output) {
  AttentionCudaResult r;
  if (const std::string why = check_inputs(s, q, k, v, d_o, repeats); !why.empty()) {
    r.message = "attention_cuda: " + why;
    return r;
  }
  const DeviceInfo info = query_cuda_devices();
  if (info.count == 0) {
    r.message = "attention_cuda: " + info.message;
    return r;
  }
  // Runs on device 0; the kernels are sm_90a code, so only compute
  // capability 9.0 can run them.
  const CudaDevice& dev = info.devices.front();
  if (dev.compute_major != 9 || dev.compute_minor != 0) {
    r.message = fmt::format("attention_cuda: needs a compute capability 9.0 (Hopper, sm_90a) device; device {} is {} "
                            "(sm_{}{})",
                            dev.index, dev.name, dev.compute_major, dev.compute_minor);
    return r;
  }
  const std::vector<std::uint16_t> qb = to_bf16(q), kb = to_bf16(k), vb = to_bf16(v), dob = to_bf16(d_o);
  detail::AttentionCudaLaunch p;
  p.q = qb.data();
  p.k = kb.data();
  p.v = vb.data();
  p.d_o = d_o.empty() ? nullptr : dob.data();
  p.seq = s.seq;
  p.heads = s.heads;
  p.dqk = s.dqk;
  p.dv = s.dv;
  p.scale = s.scale;
  p.causal = s.causal;
  p.bf16_output = output == AttentionCudaOutput::bf16;
  p.repeats = repeats;
  p.device = dev.index;
  detail::AttentionCudaOutputs out;
  if (const std::string err = detail::attention_cuda_run(p, out); !err.empty()) {
    r.message = "attention_cuda: " + err;
    return r;
  }
  r.ran = true;
  r.o = std::move(out.o);
  r.lse = std::move(out.lse);
  r.dq = std::move(out.dq);
  r.dk = std::move(out.dk);
  r.dv = std::move(out.dv);
  r.forward_seconds = out.forward_seconds;
  r.backward_seconds = out.backward_seconds;
  r.message = fmt::format("attention_cuda: seq {} heads {} dqk {} dv {} {} {} O on [{}] {}: forward {:.1f} us{}, "
                          "median of {} runs",
                          s.seq, s.heads, s.dqk, s.dv, s.causal ? "causal" : "full", p.bf16_output ? "bf16" : "f32",
                          dev.index, dev.name, r.forward_seconds * 1e6,
                          d_o.empty() ? std::string(", no backward")
                                      : fmt::format(", backward {:.1f} us", r.backward_seconds * 1e6),
                          repeats);
  return r;
}
#else
AttentionCudaResult attention_cuda(const AttentionShape& s, const std::vector<float>& q, const std::vector<float>& k,
                                   const std::vector<float>& v, const std::vector<float>& d_o, int repeats,
                                   AttentionCudaOutput) {
  AttentionCudaResult r;
  if (const std::string why = check_inputs(s, q, k, v, d_o, repeats); !why.empty()) {
    r.message = "attention_cuda: " + why;
    return r;
  }
  r.message = "attention_cuda: built without CUDA (TRAINSIM_CUDA=OFF or no nvcc found at configure time)";
  return r;
}
#endif

}  // namespace trainsim::kernels
