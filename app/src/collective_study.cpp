#include "trainsim/app/collective_study.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <map>
#include <utility>

#include <fmt/format.h>

#include "trainsim/common/error.hpp"
#include "trainsim/hardware/topology.hpp"
#include "trainsim/model/moe_traffic.hpp"
#include "trainsim/sim/collectives.hpp"
#include "trainsim/sim/engine.hpp"
#include "trainsim/sim/flow_network.hpp"

namespace trainsim::app {

namespace {

constexpr std::array<std::pair<CollectiveOp, const char*>, 6> kOps{{
    {CollectiveOp::AllReduce, "all-reduce"},
    {CollectiveOp::AllGather, "all-gather"},
    {CollectiveOp::ReduceScatter, "reduce-scatter"},
    {CollectiveOp::AllToAll, "all-to-all"},
    {CollectiveOp::MoeDispatch, "moe-dispatch"},
    {CollectiveOp::MoeCombine, "moe-combine"},
}};

constexpr double kFloatBytes = 4.0;  // nccl-tests' default type, float

bool is_moe(CollectiveOp op) { return op == CollectiveOp::MoeDispatch || op == CollectiveOp::MoeCombine; }

// "64", "1K", "8g": bytes (K/M/G = 1024^1..3); nullopt when malformed.
std::optional<double> parse_size(std::string s) {
  if (s.empty()) return std::nullopt;
  double mult = 1;
  const char last = static_cast<char>(std::toupper(static_cast<unsigned char>(s.back())));
  if (last == 'K' || last == 'M' || last == 'G') {
    mult = last == 'K' ? 1024.0 : last == 'M' ? 1024.0 * 1024 : 1024.0 * 1024 * 1024;
    s.pop_back();
  }
  if (s.empty() || s.size() > 12 || s.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  return std::stod(s) * mult;
}

// Sizes low, 2 low, 4 low, ... up to high (nccl-tests -f 2).
std::vector<double> doubling(const SizeRange& r) {
  std::vector<double> out;
  for (double s = r.low_bytes; s <= r.high_bytes; s *= 2) out.push_back(s);
  return out;
}

// Achievable link rates, no SM limit (NCCL's own SMs are not modelled).
model::NetworkEfficiency nccl_efficiency() {
  return model::load_network_efficiency();
}

// Plays the schedule on a FlowNetwork holding only the links its transfers
// cross (group rank i = GPU i); returns the time of the last step.
Time time_schedule(const hw::Topology& topo, const sim::CollectiveSchedule& s) {
  std::map<std::pair<int, int>, sim::Route> routes;
  std::map<sim::LinkIndex, sim::LinkIndex> local;
  for (const sim::Step& step : s)
    for (const sim::Transfer& t : step.transfers)
      if (routes.emplace(std::pair{t.src, t.dst}, topo.route(t.src, t.dst)).second)
        for (sim::LinkIndex l : routes.at({t.src, t.dst})) local.emplace(l, 0);
  sim::Engine engine;
  sim::FlowNetwork net(engine);
  const std::vector<double> cap = model::effective_capacities_Bps(topo, nccl_efficiency());
  for (auto& [l, idx] : local)
    idx = net.add_link({.name = topo.links()[static_cast<std::size_t>(l)].name,
                        .capacity = BytesPerSecond(cap[static_cast<std::size_t>(l)]),
                        .latency = topo.links()[static_cast<std::size_t>(l)].latency});
  for (auto& [pair, route] : routes)
    for (sim::LinkIndex& l : route) l = local.at(l);
  Time done{};
  sim::run_collective(net, s, [&routes](int a, int b) { return routes.at({a, b}); }, [&] { done = engine.now(); });
  engine.run();
  return done;
}

sim::CollectiveSchedule nccl_schedule(CollectiveOp op, int n, double size_bytes) {
  switch (op) {
    case CollectiveOp::AllReduce: return sim::ring_all_reduce(n, ByteCount(size_bytes));
    case CollectiveOp::AllGather: return sim::ring_all_gather(n, ByteCount(size_bytes));
    case CollectiveOp::ReduceScatter: return sim::ring_reduce_scatter(n, ByteCount(size_bytes));
    default: return sim::all_to_all_pairwise(n, ByteCount(size_bytes / n));
  }
}

double bus_factor(CollectiveOp op, int n) {
  const double f = static_cast<double>(n - 1) / n;
  return op == CollectiveOp::AllReduce ? 2 * f : f;
}

CollectiveRow make_row(CollectiveOp op, int n, double size_bytes, std::int64_t count, Time t) {
  CollectiveRow r;
  r.size_bytes = size_bytes;
  r.count = count;
  r.time_us = t.to_us();
  r.algbw_GBps = t > Time::zero() ? size_bytes / t.to_seconds() / 1e9 : 0.0;
  r.busbw_GBps = r.algbw_GBps * bus_factor(op, n);
  return r;
}

// Scenario -> traffic parameters for `tokens` per GPU on the first n GPUs;
// the dispatch travels in the GEMM format (FP8 + scales, or BF16), as in
// model::layer_ops.
model::MoeTrafficParams moe_params(const Scenario& sc, int n, const hw::Topology& topo, double tokens) {
  std::vector<int> group;
  for (int g = 0; g < n; ++g) group.push_back(g);
  return model::moe_traffic_params(sc.arch, std::move(group), topo.gpus_per_node(), tokens, sc.gemm_precision);
}

std::vector<CollectiveRow> moe_rows(const Scenario& sc, const CollectiveParams& cp, const hw::Topology& topo) {
  if (!sc.arch.moe)
    throw InputError("--op", "", fmt::format("\"{}\" on the dense model {}", to_string(cp.op), sc.arch.name),
                     "an MoE model in the scenario");
  if (sc.arch.moe->routed_experts % cp.group != 0)
    throw InputError("--group", "", std::to_string(cp.group),
                     fmt::format("a divisor of the model's {} routed experts", sc.arch.moe->routed_experts));
  const bool dispatch = cp.op == CollectiveOp::MoeDispatch;
  const model::MoeTrafficParams base = moe_params(sc, cp.group, topo, 0);
  const double per_token = dispatch ? base.dispatch_bytes_per_token : base.combine_bytes_per_token;
  std::vector<double> tokens;
  if (cp.sizes) {
    for (double s : doubling(*cp.sizes)) tokens.push_back(std::max(1.0, std::floor(s / per_token)));
  } else {
    tokens.push_back(cp.tokens ? *cp.tokens
                               : static_cast<double>(sc.plan.micro_batch_size * sc.training.seq_len / sc.plan.tp));
  }
  model::NetworkEfficiency eff = model::load_network_efficiency();
  if (sc.plan.comm_sms > 0) eff.comm_sms = sc.plan.comm_sms;
  std::vector<CollectiveRow> rows;
  for (double t : tokens) {
    model::MoeTrafficParams p = base;
    p.tokens_per_gpu = t;
    const auto traffic = model::moe_traffic(topo, p, dispatch ? model::MoePhase::Dispatch : model::MoePhase::Combine);
    const model::MoeRunResult r = model::run_moe_traffic(topo, traffic, eff);
    CollectiveRow row = make_row(CollectiveOp::AllToAll, cp.group, t * per_token, static_cast<std::int64_t>(t), r.time);
    row.deepep_GBps = r.deepep_bandwidth_Bps / 1e9;
    rows.push_back(row);
  }
  return rows;
}

void check_group(const Scenario& sc, int n) {
  const int gpus = sc.cluster.total_gpus();
  if (n < 2 || n > gpus || gpus % n != 0)
    throw InputError("--group", "", std::to_string(n),
                     fmt::format("a divisor of the cluster's {} GPUs, at least 2", gpus));
}

}  // namespace

std::optional<CollectiveOp> parse_collective_op(std::string_view name) {
  for (const auto& [op, n] : kOps)
    if (name == n) return op;
  return std::nullopt;
}

const char* to_string(CollectiveOp op) {
  for (const auto& [o, n] : kOps)
    if (o == op) return n;
  return "?";
}

std::string collective_op_names() {
  std::string s;
  for (const auto& [op, n] : kOps) {
    if (!s.empty()) s += '|';
    s += n;
  }
  return s;
}

SizeRange parse_size_range(const std::string& text, const std::string& option) {
  const auto colon = text.find(':');
  const auto bad = [&] {
    return InputError(option, "", fmt::format("\"{}\"", text),
                      "LOW:HIGH with 1 <= LOW <= HIGH, sizes in bytes with an optional K, M or G suffix (e.g. 1K:8G)");
  };
  if (colon == std::string::npos) throw bad();
  const auto lo = parse_size(text.substr(0, colon)), hi = parse_size(text.substr(colon + 1));
  if (!lo || !hi || *lo < 1 || *lo > *hi) throw bad();
  return {*lo, *hi};
}

CollectiveStudy run_collective_study(const Scenario& sc, const CollectiveParams& cp) {
  check_group(sc, cp.group);
  if (!is_moe(cp.op) && !cp.sizes)
    throw InputError("--bytes", "", "nothing", fmt::format("a size range for {} (e.g. 1K:8G)", to_string(cp.op)));
  if (cp.tokens && (!is_moe(cp.op) || cp.sizes || !(*cp.tokens >= 1)))
    throw InputError("--tokens", "", fmt::format("{}", *cp.tokens),
                     "a token count >= 1, with moe-dispatch or moe-combine and without --bytes");
  const hw::Topology topo = hw::Topology::build(sc.cluster);
  CollectiveStudy st{.scenario = sc.name, .op = cp.op, .group = cp.group, .type = "float", .rows = {}};
  if (is_moe(cp.op)) {
    st.type = "token";
    st.rows = moe_rows(sc, cp, topo);
    return st;
  }
  for (double s : doubling(*cp.sizes))
    st.rows.push_back(make_row(cp.op, cp.group, s, static_cast<std::int64_t>(s / kFloatBytes),
                               time_schedule(topo, nccl_schedule(cp.op, cp.group, s))));
  return st;
}

std::string collective_text(const CollectiveStudy& st) {
  const bool moe = st.rows.empty() ? false : st.rows.front().deepep_GBps.has_value();
  std::string out = fmt::format("# {} on the first {} GPUs of {} (flow model)\n", to_string(st.op), st.group, st.scenario);
  out += fmt::format("#{:>13} {:>13} {:>8} {:>11} {:>9} {:>9}{}\n", "size (B)", "count", "type", "time (us)",
                     "algbw", "busbw", moe ? fmt::format(" {:>9}", "deepep") : "");
  out += fmt::format("#{:>13} {:>13} {:>8} {:>11} {:>9} {:>9}{}\n", "", "(elements)", "", "", "(GB/s)", "(GB/s)",
                     moe ? fmt::format(" {:>9}", "(GB/s)") : "");
  for (const CollectiveRow& r : st.rows)
    out += fmt::format(" {:>13.0f} {:>13} {:>8} {:>11.2f} {:>9.2f} {:>9.2f}{}\n", r.size_bytes, r.count, st.type,
                       r.time_us, r.algbw_GBps, r.busbw_GBps,
                       r.deepep_GBps ? fmt::format(" {:>9.2f}", *r.deepep_GBps) : "");
  return out;
}

nlohmann::json collective_json(const CollectiveStudy& st) {
  nlohmann::json rows = nlohmann::json::array();
  for (const CollectiveRow& r : st.rows) {
    nlohmann::json j{{"size_B", r.size_bytes}, {"count", r.count},         {"type", st.type},
                     {"time_us", r.time_us},   {"algbw_GBps", r.algbw_GBps}, {"busbw_GBps", r.busbw_GBps}};
    if (r.deepep_GBps) j["deepep_bottleneck_GBps"] = *r.deepep_GBps;
    rows.push_back(j);
  }
  return {{"scenario", st.scenario}, {"op", to_string(st.op)}, {"group", st.group}, {"rows", rows}};
}

}  // namespace trainsim::app
