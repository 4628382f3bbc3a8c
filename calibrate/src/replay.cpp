#include "trainsim/calibrate/replay.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <tuple>
#include <map>
#include <random>
#include <stdexcept>
#include <vector>

#include "trainsim/calibrate/cpu.hpp"
#include "trainsim/kernels/attention.hpp"
#include "trainsim/kernels/cpu_gemm.hpp"
#include "trainsim/model/accounting.hpp"
#include "trainsim/model/step.hpp"
#include "trainsim/model/workload.hpp"

namespace trainsim::calibrate {

namespace {

using Clock = ThreadCpuClock;  // calibrate/cpu.hpp: as the calibration measures

// Scratch buffers grown on demand and reused by every op.
struct Scratch {
  std::vector<float> a, b, c;
  std::mt19937 rng{2024};
  void ensure(std::vector<float>& v, std::size_t n) {
    if (v.size() >= n) return;
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    const std::size_t old = v.size();
    v.resize(n);
    for (std::size_t i = old; i < n; ++i) v[i] = u(rng);
  }
};

std::string kind_key(const model::Op& op) {
  std::string k = model::to_string(op.kind);
  if (op.kind == model::OpKind::Attention) k += op.pass == model::Pass::Forward ? ".forward" : ".backward";
  return k;
}

}  // namespace

nlohmann::json replay_cpu(const ReplayInputs& in) {
  const hw::CalibrationProfile& profile = *in.profile;
  if (profile.device.name.empty())
    throw std::invalid_argument(fmt::format(
        "calibration profile '{}' has no measured device spec: make one on this machine with `trainsim calibrate "
        "--device cpu --out PROFILE.json`",
        profile.name));
  const hw::GpuSpec& dev = profile.device;
  const hw::KernelTimer timer(profile, dev, dev.sms);
  model::TimingContext tctx{&profile, in.cluster, dev.sms, 0};

  model::OpContext octx;
  octx.micro_batch_size = in.plan->micro_batch_size;
  octx.seq_len = in.seq_len;
  octx.tp = 1;
  octx.ep = 1;
  octx.gpus_per_node = in.cluster->gpus_per_node;
  octx.gemm_precision = in.precision;
  octx.recompute = in.plan->recompute;

  // One layer of each decoder kind the model has, in model order.
  std::vector<std::vector<model::TimedOp>> layers;
  std::vector<model::LayerKind> kinds;
  for (model::LayerKind k : model::layer_sequence(*in.arch)) {
    if (k != model::LayerKind::Dense && k != model::LayerKind::Moe) continue;
    if (std::find(kinds.begin(), kinds.end(), k) != kinds.end()) continue;
    kinds.push_back(k);
    std::vector<model::TimedOp> ops;
    for (const auto& op : model::layer_ops(*in.arch, k, octx)) ops.push_back(model::time_op(op, timer, tctx));
    layers.push_back(std::move(ops));
  }
  const model::ChunkProgram fwd = model::build_program(layers, model::ChunkPass::Forward);
  const model::ChunkProgram bwd = model::build_program(layers, model::ChunkPass::BackwardFull);

  Scratch s;
  // Attention forwards computed once per shape (outside the timing) so the
  // backward ops have their O and LSE.
  std::map<std::tuple<int, int, int, int>, kernels::AttentionForward> saved;

  // The whole sequence runs back to back, once as a warm-up and then
  // kPasses more times; each op's time is its median over the timed passes.
  constexpr int kPasses = 3;
  std::vector<const model::TimedOp*> sequence;
  for (const model::ChunkProgram* prog : {&fwd, &bwd})
    for (const model::TimedOp& t : prog->ops) sequence.push_back(&t);
  std::vector<std::vector<double>> times(sequence.size());

  for (int pass = 0; pass <= kPasses; ++pass) {
    for (std::size_t i = 0; i < sequence.size(); ++i) {
      const model::TimedOp& t = *sequence[i];
      const model::Op& op = t.op;
      double seconds = 0;
      switch (op.kind) {
        case model::OpKind::Gemm:
        case model::OpKind::GroupedGemm: {
          const auto m = static_cast<int>(op.gemm.m), n = static_cast<int>(op.gemm.n), k = static_cast<int>(op.gemm.k);
          s.ensure(s.a, static_cast<std::size_t>(m) * k);
          s.ensure(s.b, static_cast<std::size_t>(k) * n);
          s.ensure(s.c, static_cast<std::size_t>(m) * n);
          const auto t0 = Clock::now();
          for (std::int64_t g = 0; g < op.gemm.groups; ++g) kernels::gemm_tiled(m, n, k, s.a.data(), s.b.data(), s.c.data());
          seconds = std::chrono::duration<double>(Clock::now() - t0).count();
          break;
        }
        case model::OpKind::Attention: {
          kernels::AttentionShape sh;
          sh.seq = static_cast<int>(op.attn.seq_q);
          sh.heads = static_cast<int>(op.attn.heads);
          sh.dqk = static_cast<int>(op.attn.head_dim_qk);
          sh.dv = static_cast<int>(op.attn.head_dim_v);
          sh.scale = 1.0f / std::sqrt(static_cast<float>(sh.dqk));
          sh.causal = op.attn.causal;
          const std::size_t nq = static_cast<std::size_t>(sh.seq) * sh.heads * sh.dqk;
          const std::size_t nv = static_cast<std::size_t>(sh.seq) * sh.heads * sh.dv;
          s.ensure(s.a, 2 * nq);
          s.ensure(s.b, 2 * nv);
          const float* q = s.a.data();
          const float* k = s.a.data() + nq;
          const float* v = s.b.data();
          const float* d_o = s.b.data() + nv;
          const auto key = std::make_tuple(sh.seq, sh.heads, sh.dqk, sh.dv);
          const bool backward = op.pass != model::Pass::Forward;
          if (backward && !saved.count(key)) saved[key] = kernels::attention_forward(sh, q, k, v);
          const auto t0 = Clock::now();
          for (std::int64_t b = 0; b < op.attn.batch; ++b) {
            if (backward) {
              const auto& f = saved[key];
              kernels::attention_backward(sh, q, k, v, f.o.data(), f.lse.data(), d_o);
            } else {
              saved[key] = kernels::attention_forward(sh, q, k, v);
            }
          }
          seconds = std::chrono::duration<double>(Clock::now() - t0).count();
          break;
        }
        case model::OpKind::Memory: {
          const auto n = static_cast<std::size_t>(op.hbm_bytes.value() / 12.0);
          if (n == 0) break;
          s.ensure(s.a, n);
          s.ensure(s.b, n);
          s.ensure(s.c, n);
          const auto t0 = Clock::now();
          kernels::stream_triad(s.c.data(), s.a.data(), s.b.data(), 0.5f, n);
          seconds = std::chrono::duration<double>(Clock::now() - t0).count();
          break;
        }
        case model::OpKind::Comm:
          continue;
      }
      if (pass > 0) times[i].push_back(seconds);
    }
  }

  struct Sum { double measured = 0, predicted = 0; int ops = 0; };
  std::map<std::string, Sum> by_kind;
  double measured_total = 0, predicted_total = 0;
  int executed = 0, skipped = 0;
  for (std::size_t i = 0; i < sequence.size(); ++i) {
    const model::TimedOp& t = *sequence[i];
    if (t.op.kind == model::OpKind::Comm) {
      ++skipped;
      continue;
    }
    std::vector<double> v = times[i];
    std::sort(v.begin(), v.end());
    const double seconds = v.empty() ? 0.0 : v[v.size() / 2];
    ++executed;
    Sum& k = by_kind[kind_key(t.op)];
    k.measured += seconds;
    k.predicted += t.duration.to_seconds();
    ++k.ops;
    measured_total += seconds;
    predicted_total += t.duration.to_seconds();
  }

  nlohmann::json j;
  j["measured_s"] = measured_total;
  j["predicted_s"] = predicted_total;
  j["ratio"] = measured_total > 0 ? predicted_total / measured_total : 0.0;
  nlohmann::json bk = nlohmann::json::object();
  for (const auto& [k, v] : by_kind)
    bk[k] = {{"measured_s", v.measured}, {"predicted_s", v.predicted},
             {"ratio", v.measured > 0 ? v.predicted / v.measured : 0.0}, {"ops", v.ops}};
  j["by_kind"] = bk;
  j["ops_executed"] = executed;
  j["ops_skipped"] = skipped;
  nlohmann::json lk = nlohmann::json::array();
  for (auto k : kinds) lk.push_back(model::to_string(k));
  j["layers"] = lk;
  j["profile"] = profile.name;
  j["device"] = dev.full_name;
  return j;
}

}  // namespace trainsim::calibrate
