// Host side of moe_cuda.hpp, built in every configuration: validation of the
// configuration, weights and routing, device choice and messages. With CUDA
// it hands plain arrays to cuda/moe_cuda.cu; without CUDA the calls return
// ran = false, "built without CUDA". Nothing here has run on a GPU.
#include "trainsim/kernels/moe_cuda.hpp"

#include <fmt/format.h>

#include <cstddef>
#include <stdexcept>

#include "trainsim/kernels/cuda_device.hpp"

#if TRAINSIM_HAVE_CUDA
#include "cuda/moe_cuda_launch.hpp"
#endif

namespace trainsim::kernels {
namespace {

std::size_t sz(long long v) { return static_cast<std::size_t>(v); }

// Empty when the routing fits the configuration, else why not.
std::string check_routing(const MoeConfig& c, int tokens, const std::vector<int>& selected,
                          const std::vector<float>& weights) {
  if (tokens <= 0) return fmt::format("tokens must be positive (got {})", tokens);
  const std::size_t n = sz(tokens) * sz(c.topk);
  if (selected.size() != n || weights.size() != n) {
    return fmt::format("routing has {} expert ids and {} weights, expected tokens x topk = {}", selected.size(),
                       weights.size(), n);
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (selected[i] < 0 || selected[i] >= c.experts) {
      return fmt::format("expert id {} (token {}, slot {}) out of range [0, {})", selected[i], i / sz(c.topk),
                         i % sz(c.topk), c.experts);
    }
  }
  return {};
}

std::string check_config(const MoeConfig& c) {
  try {
    validate(c);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return {};
}

#if TRAINSIM_HAVE_CUDA
MoeCudaResult run(const char* what, detail::MoeCudaLaunch p, int repeats) {
  MoeCudaResult r;
  if (repeats < 1) {
    r.message = fmt::format("{}: repeats must be >= 1 (got {})", what, repeats);
    return r;
  }
  const DeviceInfo info = query_cuda_devices();
  if (info.count == 0) {
    r.message = fmt::format("{}: {}", what, info.message);
    return r;
  }
  if (p.device < 0 || p.device >= info.count) {
    r.message = fmt::format("{}: device {} does not exist ({})", what, p.device, info.message);
    return r;
  }
  p.repeats = repeats;
  detail::MoeCudaTimes t;
  if (const std::string err = detail::moe_forward_cuda_run(p, r.y, r.counts, t); !err.empty()) {
    r.message = fmt::format("{}: {}", what, err);
    return r;
  }
  r.ran = true;
  r.seconds = t.total;
  r.dispatch_seconds = t.dispatch;
  r.expert_gemm_seconds = t.expert_gemms;
  r.shared_seconds = t.shared;
  const double rows = static_cast<double>(p.tokens) * p.topk;
  const double gemm_flops = 2.0 * rows * 3.0 * p.hidden * static_cast<double>(p.ffn);
  r.message = fmt::format(
      "{}: tokens={} hidden={} ffn={} experts={} topk={} shared_ffn={} on [{}] {}: median {:.1f} us "
      "(dispatch {:.1f}, expert GEMMs {:.1f} = {:.1f} TFLOPS, shared {:.1f}) over {} runs",
      what, p.tokens, p.hidden, p.ffn, p.experts, p.topk, p.shared_ffn, p.device,
      info.devices[sz(p.device)].name, t.total * 1e6, t.dispatch * 1e6, t.expert_gemms * 1e6,
      t.expert_gemms > 0 ? gemm_flops / t.expert_gemms * 1e-12 : 0.0, t.shared * 1e6, repeats);
  return r;
}

detail::MoeCudaLaunch launch_for(const MoeConfig& c, int tokens, const std::vector<int>& selected,
                                 const std::vector<float>& weights, int device) {
  detail::MoeCudaLaunch p;
  p.tokens = tokens;
  p.hidden = c.hidden;
  p.ffn = c.expert_ffn;
  p.experts = c.experts;
  p.topk = c.topk;
  p.shared_ffn = c.shared_ffn;
  p.selected = selected.data();
  p.weights = weights.data();
  p.device = device;
  return p;
}
#endif

}  // namespace

MoeRouting balanced_routing(const MoeConfig& c, int tokens) {
  validate(c);
  MoeRouting r;
  r.tokens = tokens;
  r.experts = c.experts;
  r.topk = c.topk;
  r.selected.resize(sz(tokens) * sz(c.topk));
  r.weights.assign(sz(tokens) * sz(c.topk), static_cast<float>(c.route_scale / c.topk));
  for (int t = 0; t < tokens; ++t)
    for (int k = 0; k < c.topk; ++k)
      r.selected[sz(t) * sz(c.topk) + sz(k)] = static_cast<int>((sz(t) * sz(c.topk) + sz(k)) % sz(c.experts));
  return r;
}

MoeCudaResult moe_forward_cuda(const MoeConfig& c, const MoeWeights& w, const float* x, int tokens,
                               const MoeRouting& routing, int repeats, int device) {
  MoeCudaResult r;
  std::string why = check_config(c);
  if (why.empty() && x == nullptr) why = "x is null";
  if (why.empty() && (routing.tokens != tokens || routing.topk != c.topk || routing.experts != c.experts)) {
    why = fmt::format("routing is for {} tokens, top-{} of {} experts; the call has {} tokens, top-{} of {}",
                      routing.tokens, routing.topk, routing.experts, tokens, c.topk, c.experts);
  }
  if (why.empty()) why = check_routing(c, tokens, routing.selected, routing.weights);
  if (why.empty()) {
    const std::size_t E = sz(c.experts), H = sz(c.hidden), F = sz(c.expert_ffn), S = sz(c.shared_ffn);
    if (w.w1.size() != E * F * H || w.w3.size() != E * F * H || w.w2.size() != E * H * F ||
        w.shared_w1.size() != S * H || w.shared_w3.size() != S * H || w.shared_w2.size() != H * S) {
      why = "weight sizes do not match the configuration";
    }
  }
  if (!why.empty()) {
    r.message = "moe_forward_cuda: " + why;
    return r;
  }
#if TRAINSIM_HAVE_CUDA
  detail::MoeCudaLaunch p = launch_for(c, tokens, routing.selected, routing.weights, device);
  p.x = x;
  p.w1 = w.w1.data();
  p.w3 = w.w3.data();
  p.w2 = w.w2.data();
  if (c.shared_ffn > 0) {
    p.shared_w1 = w.shared_w1.data();
    p.shared_w3 = w.shared_w3.data();
    p.shared_w2 = w.shared_w2.data();
  }
  p.want_output = true;
  return run("moe_forward_cuda", p, repeats);
#else
  (void)repeats;
  (void)device;
  r.message = "moe_forward_cuda: built without CUDA (TRAINSIM_CUDA=OFF or no nvcc found at configure time)";
  return r;
#endif
}

MoeCudaResult moe_forward_cuda_timing(const MoeConfig& c, int tokens, const std::vector<int>& selected,
                                      const std::vector<float>& weights, int repeats, int device) {
  MoeCudaResult r;
  std::string why = check_config(c);
  if (why.empty()) why = check_routing(c, tokens, selected, weights);
  if (!why.empty()) {
    r.message = "moe_forward_cuda_timing: " + why;
    return r;
  }
#if TRAINSIM_HAVE_CUDA
  detail::MoeCudaLaunch p = launch_for(c, tokens, selected, weights, device);
  p.want_output = false;
  return run("moe_forward_cuda_timing", p, repeats);
#else
  (void)repeats;
  (void)device;
  r.message = "moe_forward_cuda_timing: built without CUDA (TRAINSIM_CUDA=OFF or no nvcc found at configure time)";
  return r;
#endif
}

}  // namespace trainsim::kernels
