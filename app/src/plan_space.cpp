// The search space of `trainsim plan`: enumeration of layouts, validation by
// the scenario reader, and the memory estimate made before any timing
// (app/include/trainsim/app/plan.hpp says how the pieces fit).
//
// The memory estimate assumes balanced stages (each stage 1/stages of the
// parameters and activations) and takes the activation peak from the
// schedule executed with unit costs; the stage partition of the real step is
// cut by time, not by bytes, so the embedding and head ranks can hold more.
// It is therefore an estimate, not a bound: docs/PLANNING.md records how far
// it was from the simulated peak on DeepSeek-V3, and every timed layout is
// checked again against its simulated memory.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <cctype>
#include <map>
#include <set>
#include <tuple>

#include "trainsim/app/plan.hpp"
#include "trainsim/common/error.hpp"
#include "trainsim/common/units.hpp"
#include "trainsim/hardware/gpu.hpp"
#include "trainsim/model/accounting.hpp"
#include "trainsim/model/pipeline_exec.hpp"
#include "trainsim/model/step.hpp"

namespace trainsim::app {

const char* to_string(PlanObjective o) {
  switch (o) {
    case PlanObjective::Cost: return "cost";
    case PlanObjective::Time: return "time";
    case PlanObjective::TokensPerSecond: return "tokens-per-s";
  }
  return "?";
}

PlanObjective parse_objective(const std::string& text) {
  for (auto o : {PlanObjective::Cost, PlanObjective::Time, PlanObjective::TokensPerSecond})
    if (text == to_string(o)) return o;
  throw InputError("--objective", "", "\"" + text + "\"", "cost, time or tokens-per-s");
}

namespace {

int parse_count(const std::string& text, const std::string& option, const std::string& whole) {
  if (text.empty() || text.size() > 7 || text.find_first_not_of("0123456789") != std::string::npos)
    throw InputError(option, "", "\"" + whole + "\"", "a positive integer");
  return std::stoi(text);
}

}  // namespace

void parse_gpu_option(const std::string& text, int gpus_per_node, PlanOptions& opt) {
  const auto colon = text.find(':');
  const int lo = parse_count(text.substr(0, colon), "--gpus", text);
  const int hi = colon == std::string::npos ? lo : parse_count(text.substr(colon + 1), "--gpus", text);
  if (lo < 1 || hi < lo || lo % gpus_per_node != 0 || hi % gpus_per_node != 0)
    throw InputError("--gpus", "", "\"" + text + "\"",
                     fmt::format("N or A:B with 0 < A <= B, multiples of the {} GPUs per node", gpus_per_node));
  opt.gpu_counts.clear();
  for (long long g = lo; g < hi; g *= 2) opt.gpu_counts.push_back(static_cast<int>(g));
  opt.gpu_counts.push_back(hi);
  opt.gpu_range = colon != std::string::npos;
}

void parse_gpu_types_option(const std::string& text, PlanOptions& opt) {
  opt.gpu_types.clear();
  std::size_t start = 0;
  while (start <= text.size()) {
    const auto comma = text.find(',', start);
    const std::string item = text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const auto eq = item.find('=');
    const std::string name = item.substr(0, eq);
    const auto names = hw::gpu_preset_names();
    if (std::find(names.begin(), names.end(), name) == names.end())
      throw InputError("--gpu-types", "", "\"" + name + "\"",
                       fmt::format("GPU preset names, one of: {}", fmt::join(names, ", ")));
    double price = -1;
    if (eq != std::string::npos) {
      const std::string p = item.substr(eq + 1);
      char* end = nullptr;
      price = std::strtod(p.c_str(), &end);
      if (p.empty() || *end != '\0' || !(price > 0 && price < 1e6))
        throw InputError("--gpu-types", "", "\"" + item + "\"", "NAME or NAME=PRICE with a price in dollars per GPU-hour > 0");
    }
    for (const auto& [n, pr] : opt.gpu_types)
      if (n == name) throw InputError("--gpu-types", "", "\"" + text + "\"", "each GPU type once");
    opt.gpu_types.emplace_back(name, price);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
}

void parse_shard_option(const std::string& text, PlanOptions& opt) {
  const auto slash = text.find('/');
  if (slash == std::string::npos) throw InputError("--shard", "", "\"" + text + "\"", "i/N with 0 <= i < N");
  const int i = parse_count(text.substr(0, slash), "--shard", text);
  const int n = parse_count(text.substr(slash + 1), "--shard", text);
  if (n < 1 || i >= n) throw InputError("--shard", "", "\"" + text + "\"", "i/N with 0 <= i < N");
  opt.shard = i;
  opt.shards = n;
}

nlohmann::json to_json(const PlanLayout& l) {
  return {{"gpu", l.gpu},
          {"gpus", l.gpus},
          {"tp", l.tp},
          {"pp", l.pp},
          {"ep", l.ep},
          {"dp", l.dp},
          {"zero_stage", l.zero_stage},
          {"schedule", model::to_string(l.schedule)},
          {"virtual_stages", l.virtual_stages},
          {"micro_batch_size", l.micro_batch_size},
          {"recompute", model::to_string(l.recompute)},
          {"comm_sms", l.comm_sms},
          {"precision", to_string(l.precision)}};
}

PlanLayout layout_of(const Scenario& s) {
  const auto& p = s.plan;
  return PlanLayout{s.cluster.gpu.name, s.cluster.total_gpus(), p.tp, p.pp, p.ep, p.dp, p.zero_stage, p.micro_batch_size,
                    p.virtual_stages, p.schedule, p.recompute, p.comm_sms, s.gemm_precision};
}

namespace {

// The ZeRO stage a job is timed with: stages 1 and 2 time alike (one
// reduce-scatter and all-gather after the pipeline) and share a job; 0
// all-reduces; 3 moves every layer during the chunks.
int timed_zero(int zero_stage) { return zero_stage == 0 ? 0 : zero_stage >= 3 ? 3 : 1; }

// The fields a job shares (ZeRO 1 and 2 folded into 1), for ordering and lookup.
auto job_key(const PlanLayout& l) {
  return std::make_tuple(l.gpu, l.gpus, l.tp, l.pp, l.ep, static_cast<int>(l.schedule), l.virtual_stages,
                         l.micro_batch_size, static_cast<int>(l.recompute), l.comm_sms,
                         static_cast<int>(l.precision), timed_zero(l.zero_stage));
}

std::vector<int> divisors_up_to(int n, int cap) {
  std::vector<int> d;
  for (int i = 1; i <= std::min(n, cap); ++i)
    if (n % i == 0) d.push_back(i);
  return d;
}

// The values each knob takes. Scenario values are always included.
// ZeRO-3 is not searched (docs/PLANNING.md, Limitations): its per-layer
// gathers make it a job of its own for every layout, and it is refused with
// DualPipe; a scenario that asks for it is still evaluated, timed as ZeRO-3.
struct Axes {
  std::vector<hw::GpuSpec> gpu_types;  // with the price per GPU-hour in `price`
  std::vector<double> price;
  std::vector<int> gpus, tp, ep, mbs, zero{0, 1, 2};
  std::vector<std::pair<model::ScheduleKind, int>> schedules;  // with virtual stages
  std::vector<model::Recompute> recompute{model::Recompute::None, model::Recompute::Selective,
                                          model::Recompute::Full};
  std::vector<Precision> precision;
};

void add_unique(std::vector<int>& v, int x) {
  if (std::find(v.begin(), v.end(), x) == v.end()) v.push_back(x);
  std::sort(v.begin(), v.end());
}

Axes make_axes(const Scenario& base, const PlanOptions& opt) {
  Axes a;
  a.gpus = opt.gpu_counts.empty() ? std::vector<int>{base.cluster.total_gpus()} : opt.gpu_counts;
  if (opt.gpu_types.empty()) {
    a.gpu_types = {base.cluster.gpu};
    a.price = {base.usd_per_gpu_hour};
  }
  for (const auto& [name, price] : opt.gpu_types) {
    a.gpu_types.push_back(hw::gpu_preset(name, "--gpu-types", ""));
    a.price.push_back(price >= 0 ? price : base.usd_per_gpu_hour);
  }
  for (int t = 1; t <= base.cluster.gpus_per_node; t *= 2) a.tp.push_back(t);
  add_unique(a.tp, base.plan.tp);
  if (base.arch.moe)
    for (int e = 1; e <= base.arch.moe->routed_experts; e *= 2)
      if (base.arch.moe->routed_experts % e == 0) a.ep.push_back(e);
  add_unique(a.ep, base.plan.ep);
  a.mbs = {1, 2, 4};
  add_unique(a.mbs, base.plan.micro_batch_size);
  using K = model::ScheduleKind;
  a.schedules = {{K::GPipe, 1}, {K::OneFOneB, 1}, {K::Interleaved, 2}, {K::Interleaved, 4},
                 {K::ZB1P, 1},  {K::DualPipe, 1}, {K::DualPipeV, 1}};
  if (std::find(a.schedules.begin(), a.schedules.end(), std::make_pair(base.plan.schedule, base.plan.virtual_stages)) ==
      a.schedules.end())
    a.schedules.emplace_back(base.plan.schedule, base.plan.virtual_stages);
  a.precision = {base.gemm_precision};
  if (opt.vary_precision)
    for (Precision p : {Precision::BF16, Precision::FP8})
      if (p != base.gemm_precision) a.precision.push_back(p);
  return a;
}

// The precisions tried on one GPU type: those of the axis it has; BF16 when
// it has none of them (an A100 asked about an FP8 scenario runs it in BF16).
std::vector<Precision> precisions_for(const Axes& a, const hw::GpuSpec& gpu) {
  std::vector<Precision> v;
  for (Precision p : a.precision)
    if (gpu.supports(p)) v.push_back(p);
  if (v.empty()) v.push_back(Precision::BF16);
  return v;
}

// Communication SMs: none without expert parallelism; around the scenario's
// value (DeepSeek-V3: 20 of 132) otherwise.
std::vector<int> comm_sms_values(const Scenario& base, int ep, const PlanOptions& opt) {
  if (ep <= 1) return {0};
  const int c = base.plan.comm_sms > 0 ? base.plan.comm_sms : 20;
  if (!opt.vary_comm_sms) return {c};
  std::vector<int> v;
  for (int x : {c - 8, c, c + 8})
    if (x > 0 && x < base.cluster.gpu.sms) v.push_back(x);
  return v;
}

// Numbers blanked, so "dp*tp = 256" and "dp*tp = 512" are one family.
std::string family_key(const std::string& path, const std::string& expected) {
  std::string k = path + ": ";
  bool digits = false;
  for (char ch : expected) {
    if (std::isdigit(static_cast<unsigned char>(ch))) {
      if (!digits) k += '#';
      digits = true;
    } else {
      k += ch;
      digits = false;
    }
  }
  return k;
}

class Families {
 public:
  void add(const std::string& key, const std::string& reason, double need_gib = 0, std::int64_t count = 1) {
    auto [it, fresh] = map_.try_emplace(key, RejectedFamily{key, reason, 0, need_gib, need_gib});
    it->second.count += count;
    it->second.min_need_gib = std::min(it->second.min_need_gib, need_gib);
    it->second.max_need_gib = std::max(it->second.max_need_gib, need_gib);
  }
  std::vector<RejectedFamily> sorted() const {
    std::vector<RejectedFamily> v;
    for (const auto& [k, f] : map_) v.push_back(f);
    return v;
  }

 private:
  std::map<std::string, RejectedFamily> map_;
};

// The base scenario's resolved JSON with a layout patched in, read back by the
// scenario reader: the same checks as a scenario file.
Scenario patched_scenario(const nlohmann::json& base, const PlanLayout& l, int gpus_per_node, double price) {
  nlohmann::json j = base;
  if (j["cluster"]["gpu"].value("name", "") != l.gpu) j["cluster"]["gpu"] = l.gpu;  // a preset (--gpu-types)
  j["cost"]["usd_per_gpu_hour"] = price;
  j["cluster"]["nodes"] = l.gpus / gpus_per_node;
  auto& p = j["parallelism"];
  p["tp"] = l.tp;
  p["pp"] = l.pp;
  p["ep"] = l.ep;
  p["dp"] = l.dp;
  p["zero_stage"] = l.zero_stage;
  p["schedule"] = model::to_string(l.schedule);
  p["virtual_stages"] = l.virtual_stages;
  p["micro_batch_size"] = l.micro_batch_size;
  p["recompute"] = model::to_string(l.recompute);
  p["comm_sms"] = l.comm_sms;
  if (l.tp == 1) {  // nothing to overlap or split without tensor parallelism
    p["sequence_parallel"] = false;
    p["tp_comm_overlap"] = false;
  }
  j["precision"]["gemm"] = to_string(l.precision);
  return parse_scenario(j, "plan candidate");
}

}  // namespace

namespace {

// The schedule's largest activation peak over ranks, in chunks, executed
// with unit costs at min(m, screening count) micro-batches: past the
// warm-up the peak no longer grows, except under GPipe (scaled by m).
int peak_activation_chunks(const PlanLayout& l, std::int64_t m) {
  const int m1 = screening_microbatches(l, m);
  const auto sched = model::make_schedule(l.schedule, l.pp, m1, l.virtual_stages);
  model::ExecCosts unit;
  unit.duration = [](const model::ScheduleOp& op, int) {
    return Time::seconds(op.type == model::ChunkOpType::F ? 1.0 : op.type == model::ChunkOpType::FB ? 2.5 : 2.0);
  };
  const auto ex = model::execute(sched, unit);
  const int peak = *std::max_element(ex.peak_activations_per_rank.begin(), ex.peak_activations_per_rank.end());
  return l.schedule == model::ScheduleKind::GPipe ? static_cast<int>(peak * m / m1) : peak;
}

double memory_estimate_gib(const Scenario& s, int chunks) {
  const auto& pl = s.plan;
  const auto sched = model::make_schedule(pl.schedule, pl.pp, 2 * pl.pp * std::max(1, pl.virtual_stages),
                                          pl.virtual_stages);
  const int copies = pl.schedule == model::ScheduleKind::DualPipe ? 2 : 1;
  const double held = static_cast<double>(sched.stages_of_rank(0).size()) / sched.stages;
  model::OpContext c;
  c.micro_batch_size = pl.micro_batch_size;
  c.seq_len = s.training.seq_len;
  c.tp = pl.tp;
  c.sequence_parallel = pl.sequence_parallel;
  c.ep = pl.ep;
  c.gpus_per_node = s.cluster.gpus_per_node;
  c.gemm_precision = s.gemm_precision;
  c.recompute = pl.recompute;
  double dense = 0, expert = 0, act = 0;
  for (auto k : model::layer_sequence(s.arch)) {
    const double total = model::layer_params(s.arch, k).total;
    double routed = 0;
    if (s.arch.moe && (k == model::LayerKind::Moe || k == model::LayerKind::Mtp))
      routed = static_cast<double>(s.arch.moe->routed_experts) * 3.0 * s.arch.hidden * s.arch.moe->expert_ffn_hidden;
    dense += (total - routed) / pl.tp;
    expert += routed / pl.ep;
    act += model::activation_bytes(s.arch, k, c).value();
  }
  const double group_dense = static_cast<double>(pl.dp) * copies;
  const double group_expert = std::max(1.0, static_cast<double>(pl.dp) * pl.tp / pl.ep) * copies;
  auto bytes = [&](double per_param, bool shard) {
    return held * (shard ? dense * per_param / group_dense + expert * per_param / group_expert
                         : (dense + expert) * per_param);
  };
  // Weights BF16, gradients FP32, optimizer FP32 master + BF16 moments
  // (as the step's memory model counts them).
  const double state = bytes(2, pl.zero_stage >= 3) + bytes(4, pl.zero_stage >= 2) + bytes(8, pl.zero_stage >= 1);
  const double tokens = static_cast<double>(pl.micro_batch_size) * static_cast<double>(s.training.seq_len);
  const double transient = tokens * s.arch.vocab / pl.tp * 6.0;  // FP32 + BF16 logits
  return (state + chunks * act / sched.stages + transient) / kGiB;
}

}  // namespace

double estimated_memory_gib(const Scenario& s) {
  return memory_estimate_gib(s, peak_activation_chunks(layout_of(s), s.microbatches_per_step()));
}

namespace {

// One validation: a structure (everything but ZeRO stage, recompute,
// communication SMs and precision) and its verdict.
struct Structure {
  PlanLayout layout;
  double price = 0;  // dollars per GPU-hour of its GPU type
  std::vector<std::pair<int, Precision>> variants;  // communication SMs x precision
  std::optional<Scenario> valid;
  std::string family, reason;  // when rejected
};

// Validates every structure on `threads` threads; verdicts keep their places.
void validate_all(std::vector<Structure>& all, const nlohmann::json& base_json, int gpus_per_node, int threads) {
  std::atomic<std::size_t> next{0};
  auto worker = [&] {
    for (std::size_t i = next++; i < all.size(); i = next++) {
      Structure& st = all[i];
      try {
        st.valid = patched_scenario(base_json, st.layout, gpus_per_node, st.price);
      } catch (const InputError& e) {
        st.family = family_key(e.json_path(), e.expected());
        st.reason = fmt::format("{} = {}: expected {}", e.json_path(), e.value(), e.expected());
      }
    }
  };
  int n = threads > 0 ? threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::thread> pool;
  for (int i = 1; i < n; ++i) pool.emplace_back(worker);
  worker();
  for (auto& t : pool) t.join();
}

struct Enumerator {
  Enumerator(const Scenario& b, const PlanOptions& o) : base(b), opt(o) {}
  const Scenario& base;
  const PlanOptions& opt;
  nlohmann::json base_json = to_json(base);
  Axes axes = make_axes(base, opt);
  Families families;
  std::map<decltype(job_key(PlanLayout{})), int> job_of;
  PlanSpace space;
  std::map<std::tuple<int, int, int, std::int64_t>, int> chunks;  // activation peak per schedule shape

  double need_gib(const Scenario& valid, const PlanLayout& l) {
    Scenario s = valid;
    s.plan.zero_stage = l.zero_stage;
    s.plan.recompute = l.recompute;
    const auto ck = std::make_tuple(static_cast<int>(l.schedule), l.pp, l.virtual_stages, s.microbatches_per_step());
    auto ci = chunks.find(ck);
    if (ci == chunks.end()) ci = chunks.emplace(ck, peak_activation_chunks(l, s.microbatches_per_step())).first;
    return memory_estimate_gib(s, ci->second);
  }

  void add_job(const Scenario& valid, const PlanLayout& l) {
    ++space.layouts;
    auto it = job_of.find(job_key(l));
    if (it == job_of.end()) {
      PlanLayout rep = l;
      rep.zero_stage = timed_zero(l.zero_stage);
      Scenario s = valid;
      s.plan.zero_stage = rep.zero_stage;
      s.plan.recompute = rep.recompute;
      it = job_of.emplace(job_key(l), static_cast<int>(space.jobs.size())).first;
      space.jobs.push_back(PlanJob{rep, {}, s});
    }
    space.jobs[static_cast<std::size_t>(it->second)].zero_stages.push_back(l.zero_stage);
  }

  std::vector<Structure> structures() {
    // At least two layers or modules per pipeline stage (deeper pipelines
    // are not enumerated; the scenario's own layout is always evaluated).
    const int max_pp = std::max(1, (base.arch.layers + 2 + base.arch.mtp_depth) / 2);
    std::vector<Structure> all;
    for (std::size_t ty = 0; ty < axes.gpu_types.size(); ++ty)
    for (int g : axes.gpus)
      for (int tp : axes.tp)
        for (int pp : divisors_up_to(g / tp, max_pp))
          for (int ep : axes.ep)
            for (auto [kind, vs] : axes.schedules)
              for (int mbs : axes.mbs) {
                Structure st;
                const hw::GpuSpec& gpu = axes.gpu_types[ty];
                for (int sms : comm_sms_values(base, ep, opt))
                  if (sms < gpu.sms)
                    for (Precision prec : precisions_for(axes, gpu)) st.variants.emplace_back(sms, prec);
                if (st.variants.empty()) continue;
                st.price = axes.price[ty];
                st.layout = {gpu.name, g, tp, pp, ep, g / (tp * pp), 1, mbs, vs, kind, model::Recompute::None,
                             st.variants.front().first, st.variants.front().second};
                all.push_back(std::move(st));
              }
    return all;
  }

  // The ZeRO stage and recompute mode are not read by the layout checks and
  // the communication SMs and precisions tried are valid by construction
  // (below the GPU's SMs, formats it has), so every variant of a structure
  // shares its verdict. Recompute: the least recompute with which some ZeRO
  // stage fits (more recompute only adds work); the rest are dominated.
  void expand(const Structure& st) {
    const auto per_variant = static_cast<std::int64_t>(axes.recompute.size() * axes.zero.size());
    space.candidates += per_variant * static_cast<std::int64_t>(st.variants.size());
    if (!st.valid) {
      families.add(st.family, st.reason, 0, per_variant * static_cast<std::int64_t>(st.variants.size()));
      return;
    }
    for (auto [sms, prec] : st.variants) {
      Scenario v = *st.valid;
      PlanLayout l = st.layout;
      v.plan.comm_sms = l.comm_sms = sms;
      v.gemm_precision = l.precision = prec;
      expand_variant(v, l);
    }
  }

  void expand_variant(const Scenario& v, PlanLayout l) {
    bool chosen = false;
    for (auto rc : axes.recompute) {
      l.recompute = rc;
      bool fits = false;
      for (int z : axes.zero) {
        l.zero_stage = z;
        if (chosen) {
          families.add("dominated: more recompute than needed",
                       "less recompute fits in memory for the same layout (recompute only adds work)");
          continue;
        }
        const double need = need_gib(v, l);
        const double cap = v.cluster.gpu.hbm_capacity.value() / kGiB;
        if (need <= cap) {
          add_job(v, l);
          fits = true;
          continue;
        }
        families.add(fmt::format("memory: pp {} ep {} tp {}", l.pp, l.ep, l.tp),
                     fmt::format("needs about {:.0f} GiB of {:.0f} (estimate before timing; e.g. {} zero {} mbs {} "
                                 "recompute {})",
                                 need, cap, model::to_string(l.schedule), l.zero_stage, l.micro_batch_size,
                                 model::to_string(l.recompute)),
                     need);
      }
      chosen = chosen || fits;
    }
  }

  // The scenario's own layout is always evaluated, fits or not.
  void reference() {
    PlanLayout l = layout_of(base);
    auto it = job_of.find(job_key(l));
    if (it == job_of.end()) {
      ++space.candidates;  // outside the enumerated axes, or dominated there
      add_job(base, l);
      it = job_of.find(job_key(l));
    }
    space.reference_job = it->second;
  }
};

}  // namespace

PlanSpace enumerate_plan(const Scenario& base, const PlanOptions& opt) {
  Enumerator e(base, opt);
  std::vector<Structure> all = e.structures();
  validate_all(all, e.base_json, base.cluster.gpus_per_node, opt.threads);
  for (const Structure& st : all) e.expand(st);
  e.reference();
  e.space.families = e.families.sorted();
  for (auto& j : e.space.jobs) std::sort(j.zero_stages.begin(), j.zero_stages.end());
  return std::move(e.space);
}

}  // namespace trainsim::app
