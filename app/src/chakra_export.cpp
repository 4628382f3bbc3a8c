#include "trainsim/app/chakra_export.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <numeric>
#include <stdexcept>
#include <tuple>
#include <utility>
#include <vector>

#include "trainsim/common/error.hpp"
#include "trainsim/model/cluster_layout.hpp"

#ifdef TRAINSIM_HAVE_CHAKRA
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/delimited_message_util.h>

#include "proto/chakra_et.pb.h"
#endif

namespace trainsim::app {

#ifdef TRAINSIM_HAVE_CHAKRA
namespace {

using model::ChunkOpType;
using model::ChunkRef;
using model::CommKind;

enum class NodeKind { Comp, Coll, Send, Recv };

// One node of a rank's graph, before ids are assigned.
struct NodeSpec {
  NodeKind kind = NodeKind::Comp;
  std::string name;
  Time start{}, end{};
  std::vector<int> deps;  // emission indices (always smaller than the node's own)
  int stream = -1;        // 0 compute, 1 communication, -1 a pipeline transfer
  double flops = 0;
  CommKind comm = CommKind::None;
  bool expert = false;    // DP collectives of the routed experts' parameters
  double bytes = 0;       // this GPU's share (collectives) or the transfer
  int peer_rank = -1;     // send: destination rank; receive: source rank
  std::uint32_t tag = 0;
};

NodeSpec node(NodeKind kind, std::string name, Time start, Time end, std::vector<int> deps, int stream) {
  NodeSpec n;
  n.kind = kind;
  n.name = std::move(name);
  n.start = start;
  n.end = end;
  n.deps = std::move(deps);
  n.stream = stream;
  return n;
}

// The work of replica 0 of one pipeline rank, nodes in id order.
struct RankGraph {
  std::vector<NodeSpec> nodes;
  std::vector<std::vector<int>> data_deps, ctrl_deps;  // by id
};

bool is_dp(CommKind k) {
  return k == CommKind::DpReduceScatter || k == CommKind::DpAllGather || k == CommKind::DpAllReduce;
}
bool is_ep(CommKind k) { return k == CommKind::EpDispatch || k == CommKind::EpCombine; }

// Transfers between pipeline ranks, keyed by the chunk they carry: the tag
// is the destination chunk's dense index, x2, +1 for a gradient.
struct TransferKey {
  int src = 0, dst = 0;
  std::uint32_t tag = 0;
  auto operator<=>(const TransferKey&) const = default;
};

std::uint32_t chunk_tag(const model::Schedule& s, const ChunkRef& c, bool gradient) {
  const auto per = static_cast<std::uint32_t>(s.microbatches_per_direction());
  const auto ix = (static_cast<std::uint32_t>(c.direction) * static_cast<std::uint32_t>(s.stages) +
                   static_cast<std::uint32_t>(c.stage)) * per + static_cast<std::uint32_t>(c.microbatch);
  return ix * 2 + (gradient ? 1 : 0);
}

// The chunks an op of `rank` sends to other ranks when it ends (what
// ClusterExecutor::op_done delivers), as (destination rank, tag).
std::vector<std::pair<int, std::uint32_t>> outgoing(const model::Schedule& s, int rank, const model::ScheduleOp& op) {
  std::vector<std::pair<int, std::uint32_t>> out;
  const auto forward = [&](const ChunkRef& c) {
    if (c.stage + 1 >= s.stages) return;
    const ChunkRef to{c.stage + 1, c.microbatch, c.direction};
    if (s.rank_of(to) != rank) out.emplace_back(s.rank_of(to), chunk_tag(s, to, false));
  };
  const auto backward = [&](const ChunkRef& c) {
    if (c.stage == 0) return;
    const ChunkRef to{c.stage - 1, c.microbatch, c.direction};
    if (s.rank_of(to) != rank) out.emplace_back(s.rank_of(to), chunk_tag(s, to, true));
  };
  if (op.type == ChunkOpType::F || op.type == ChunkOpType::FB) forward(op.fwd);
  if (op.type == ChunkOpType::B || op.type == ChunkOpType::BW || op.type == ChunkOpType::FB) backward(op.bwd);
  return out;
}

// The inputs an op of `rank` waits for from other ranks, as (source rank, tag).
std::vector<std::pair<int, std::uint32_t>> incoming(const model::Schedule& s, int rank, const model::ScheduleOp& op) {
  std::vector<std::pair<int, std::uint32_t>> in;
  if ((op.type == ChunkOpType::F || op.type == ChunkOpType::FB) && op.fwd.stage > 0) {
    const int from = s.rank_of(ChunkRef{op.fwd.stage - 1, op.fwd.microbatch, op.fwd.direction});
    if (from != rank) in.emplace_back(from, chunk_tag(s, op.fwd, false));
  }
  const bool bwd = op.type == ChunkOpType::B || op.type == ChunkOpType::BW || op.type == ChunkOpType::FB;
  if (bwd && op.bwd.stage + 1 < s.stages) {
    const int from = s.rank_of(ChunkRef{op.bwd.stage + 1, op.bwd.microbatch, op.bwd.direction});
    if (from != rank) in.emplace_back(from, chunk_tag(s, op.bwd, true));
  }
  return in;
}

// Every pipeline transfer the simulation recorded, by the chunk it carried:
// per (source, destination) pair, transfers start in the sender's op order.
std::map<TransferKey, const model::TransferRecord*> index_transfers(const model::StepResult& st) {
  std::map<std::pair<int, int>, std::vector<const model::TransferRecord*>> recs;
  for (const auto& t : st.transfers)
    if (t.kind == CommKind::None) recs[{t.rank, t.peer_rank}].push_back(&t);
  for (auto& [pair, v] : recs)
    std::stable_sort(v.begin(), v.end(), [](auto* a, auto* b) { return std::tie(a->start, a->end) < std::tie(b->start, b->end); });
  std::map<TransferKey, const model::TransferRecord*> out;
  std::map<std::pair<int, int>, std::size_t> used;
  const model::Schedule& s = st.schedule;
  for (int rk = 0; rk < s.ranks; ++rk)
    for (const auto& op : s.per_rank[static_cast<std::size_t>(rk)])
      for (const auto& [dst, tag] : outgoing(s, rk, op)) {
        const auto& v = recs[{rk, dst}];
        std::size_t& i = used[{rk, dst}];
        if (i >= v.size()) throw std::logic_error("chakra export: fewer recorded pipeline transfers than sends");
        out[TransferKey{rk, dst, tag}] = v[i++];
      }
  return out;
}

// Builds the graph of replica 0 of one rank from the schedule, the chunk
// programs and the recorded kernels and transfers.
class RankBuilder {
 public:
  RankBuilder(const Simulation& sim, const std::map<TransferKey, const model::TransferRecord*>& transfers, int rank)
      : st_(sim.step), s_(sim.step.schedule), transfers_(transfers), rank_(rank) {
    for (const auto& k : st_.kernels)
      if (k.rank == rank) kernels_[{k.op, k.role, k.kernel}] = &k;
    for (const auto& t : st_.transfers)
      if (t.rank == rank && is_dp(t.kind)) dp_.push_back(&t);
    std::stable_sort(dp_.begin(), dp_.end(), [](auto* a, auto* b) { return a->start < b->start; });
  }

  RankGraph build() {
    const auto& ops = s_.per_rank[static_cast<std::size_t>(rank_)];
    std::vector<int> ends;  // the nodes the next op waits for
    for (std::size_t n = 0; n < ops.size(); ++n) ends = op(static_cast<int>(n), ops[n], ends);
    tail(ends);
    return finish();
  }

 private:
  int add(NodeSpec n) {
    nodes_.push_back(std::move(n));
    return static_cast<int>(nodes_.size()) - 1;
  }

  const model::TransferRecord& transfer(int src, int dst, std::uint32_t tag) const {
    const auto it = transfers_.find(TransferKey{src, dst, tag});
    if (it == transfers_.end()) throw std::logic_error("chakra export: a pipeline transfer was not recorded");
    return *it->second;
  }

  std::vector<int> op(int n, const model::ScheduleOp& op, std::vector<int> deps) {
    for (const auto& [src, tag] : incoming(s_, rank_, op)) {
      const auto& t = transfer(src, rank_, tag);
      NodeSpec n = node(NodeKind::Recv, fmt::format("recv {} from rank {}", model::describe(op), src), t.start, t.end, {}, -1);
      n.bytes = st_.activation_bytes;
      n.peer_rank = src;
      n.tag = tag;
      deps.push_back(add(std::move(n)));
    }
    std::vector<int> ends;
    const auto at = [](const std::vector<model::ChunkProgram>& v, int stage) { return &v[static_cast<std::size_t>(stage)]; };
    switch (op.type) {
      case ChunkOpType::F: program(*at(st_.program_f, op.fwd.stage), n, 0, op, deps, ends); break;
      case ChunkOpType::B: program(*at(st_.program_b, op.bwd.stage), n, 0, op, deps, ends); break;
      case ChunkOpType::W: program(*at(st_.program_w, op.bwd.stage), n, 0, op, deps, ends); break;
      case ChunkOpType::BW: program(*at(st_.program_bw, op.bwd.stage), n, 0, op, deps, ends); break;
      case ChunkOpType::FB:
        program(*at(st_.program_f, op.fwd.stage), n, 0, op, deps, ends);
        program(*at(st_.program_bw, op.bwd.stage), n, 1, op, deps, ends);
        break;
    }
    if (ends.empty()) ends = deps;  // an op with no kernels
    for (const auto& [dst, tag] : outgoing(s_, rank_, op)) {
      const auto& t = transfer(rank_, dst, tag);
      NodeSpec n = node(NodeKind::Send, fmt::format("send {} to rank {}", model::describe(op), dst), t.start, t.end, ends, -1);
      n.bytes = st_.activation_bytes;
      n.peer_rank = dst;
      n.tag = tag;
      add(std::move(n));
    }
    return ends;
  }

  // The kernels of one chunk program: a chain, except that a kernel marked
  // concurrent_with_next lets the next one start with it (same dependencies)
  // and the one after waits for both.
  void program(const model::ChunkProgram& p, int n, int role, const model::ScheduleOp& op, const std::vector<int>& start,
               std::vector<int>& ends) {
    std::vector<int> deps = start, group;
    for (std::size_t k = 0; k < p.ops.size(); ++k) {
      const model::TimedOp& t = p.ops[k];
      const bool with_prev = k > 0 && p.ops[k - 1].concurrent_with_next;
      if (!with_prev && k > 0) deps = std::exchange(group, {});
      const auto it = kernels_.find({n, role, static_cast<int>(k)});
      if (it == kernels_.end()) throw std::logic_error("chakra export: a kernel was not recorded (simulate with record)");
      const bool comm = t.stream == model::Stream::Comm;
      const bool fwd = op.type == ChunkOpType::F || (op.type == ChunkOpType::FB && role == 0);
      const ChunkRef& c = fwd ? op.fwd : op.bwd;
      NodeSpec n = node(comm ? NodeKind::Coll : NodeKind::Comp,
                        fmt::format("{} [{} stage {} mb {}]", t.op.name, model::to_string(t.op.pass), c.stage,
                                    c.direction * s_.microbatches_per_direction() + c.microbatch),
                        it->second->start, it->second->end, deps, comm ? 1 : 0);
      n.flops = t.op.flops.value();
      n.comm = t.op.comm.kind;
      n.bytes = t.op.comm.bytes.value();
      group.push_back(add(std::move(n)));
    }
    ends.insert(ends.end(), group.begin(), group.end());
  }

  // Gradient synchronisation (in the cluster execution's order), then the optimizer.
  void tail(std::vector<int> deps) {
    const model::TailWork& w = st_.tail[static_cast<std::size_t>(rank_)];
    const std::vector<model::TailCollective> steps = model::tail_collectives(w);
    if (steps.size() != dp_.size()) throw std::logic_error("chakra export: recorded DP collectives differ from the tail");
    Time at = Time::zero();
    for (const int d : deps) at = max(at, nodes_[static_cast<std::size_t>(d)].end);
    for (std::size_t i = 0; i < steps.size(); ++i) {
      const model::TailCollective& c = steps[i];
      NodeSpec n = node(NodeKind::Coll, fmt::format("{} ({} parameters)", model::to_string(c.kind), c.expert ? "expert" : "dense"),
                        dp_[i]->start, dp_[i]->end, deps, 1);
      n.comm = c.kind;
      n.expert = c.expert;
      n.bytes = c.bytes;
      deps = {add(std::move(n))};
      at = dp_[i]->end;
    }
    add(node(NodeKind::Comp, "optimizer", at, at + w.optimizer, deps, 0));
  }

  // Ids in the order the simulation started the nodes (ties: emission
  // order, so every dependency gets a smaller id), and the stream order.
  RankGraph finish() {
    std::vector<int> order(nodes_.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      return nodes_[static_cast<std::size_t>(a)].start < nodes_[static_cast<std::size_t>(b)].start;
    });
    std::vector<int> id_of(nodes_.size());
    for (std::size_t i = 0; i < order.size(); ++i) id_of[static_cast<std::size_t>(order[i])] = static_cast<int>(i);
    RankGraph g;
    int last[2] = {-1, -1};
    for (const int e : order) {
      NodeSpec& n = nodes_[static_cast<std::size_t>(e)];
      std::vector<int> data;
      for (const int d : n.deps) data.push_back(id_of[static_cast<std::size_t>(d)]);
      std::sort(data.begin(), data.end());
      data.erase(std::unique(data.begin(), data.end()), data.end());
      std::vector<int> ctrl;
      if (n.stream >= 0) {
        int& prev = last[n.stream];
        if (prev >= 0 && !std::binary_search(data.begin(), data.end(), prev)) ctrl.push_back(prev);
        prev = static_cast<int>(g.nodes.size());
      }
      g.data_deps.push_back(std::move(data));
      g.ctrl_deps.push_back(std::move(ctrl));
      g.nodes.push_back(std::move(n));
    }
    return g;
  }

  const model::StepResult& st_;
  const model::Schedule& s_;
  const std::map<TransferKey, const model::TransferRecord*>& transfers_;
  int rank_;
  std::map<std::tuple<int, int, int>, const model::KernelRecord*> kernels_;
  std::vector<const model::TransferRecord*> dp_;
  std::vector<NodeSpec> nodes_;
};

// Communication groups as comm_group.json numbers them (from 1): each
// (class, group) gets the next id the first time a GPU's trace uses it.
class GroupIds {
 public:
  explicit GroupIds(const model::ClusterLayout& layout) : layout_(layout) {}
  int id(int gpu, CommKind kind, bool expert) {
    const int cls = is_ep(kind) ? 0 : is_dp(kind) ? (expert ? 3 : 2) : 1;
    const int group = cls == 0 ? layout_.ep_group_of(gpu) : cls == 1 ? layout_.tp_group_of(gpu) : layout_.dp_group_of(gpu, cls == 3);
    const auto [it, added] = ids_.try_emplace({cls, group}, static_cast<int>(ids_.size()) + 1);
    if (added) {
      members_[it->second] = cls == 0 ? layout_.ep_members(group)
                             : cls == 1 ? layout_.tp_members(group)
                                        : layout_.dp_members(group, cls == 3);
    }
    return it->second;
  }
  // {"id": [gpus], ...}, one group per line, ids ascending.
  std::string json() const {
    std::string s = "{";
    for (const auto& [id, m] : members_)
      s += fmt::format("{}\n  \"{}\": {}", id == 1 ? "" : ",", id, nlohmann::json(m).dump());
    return s + "\n}\n";
  }
  int size() const { return static_cast<int>(ids_.size()); }

 private:
  const model::ClusterLayout& layout_;
  std::map<std::pair<int, int>, int> ids_;
  std::map<int, std::vector<int>> members_;
};

void write_file(const std::filesystem::path& path, const std::string& bytes) {
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << bytes;
    out.flush();
    if (!out) throw InputError(path.string(), "", "a failed write", "a writable directory for the Chakra traces");
  }
  std::filesystem::rename(tmp, path);
}

namespace pb = ChakraProtoMsg;

pb::CollectiveCommType coll_type(CommKind k) {
  switch (k) {
    case CommKind::EpDispatch:
    case CommKind::EpCombine: return pb::ALL_TO_ALL;
    case CommKind::TpAllGather:
    case CommKind::DpAllGather: return pb::ALL_GATHER;
    case CommKind::TpReduceScatter:
    case CommKind::DpReduceScatter: return pb::REDUCE_SCATTER;
    default: return pb::ALL_REDUCE;
  }
}

template <class Set>
void attr(pb::Node& n, const char* name, Set set) {
  pb::AttributeProto* a = n.add_attr();
  a->set_name(name);
  set(*a);
}

std::uint64_t micros(Time t) { return static_cast<std::uint64_t>(std::llround(t.to_seconds() * 1e6)); }

void fill_node(pb::Node& n, const NodeSpec& s, int gpu, const model::ClusterLayout& layout, GroupIds& groups) {
  n.set_name(s.name);
  n.set_start_time_micros(micros(s.start));
  n.set_duration_micros(micros(s.end) - micros(s.start));
  attr(n, "is_cpu_op", [](auto& a) { a.set_bool_val(false); });
  const auto bytes = static_cast<std::int64_t>(std::llround(s.bytes));
  switch (s.kind) {
    case NodeKind::Comp:
      n.set_type(pb::COMP_NODE);
      attr(n, "num_ops", [&](auto& a) { a.set_int64_val(static_cast<std::int64_t>(std::llround(s.flops))); });
      break;
    case NodeKind::Coll:
      n.set_type(pb::COMM_COLL_NODE);
      attr(n, "comm_type", [&](auto& a) { a.set_int64_val(coll_type(s.comm)); });
      attr(n, "comm_size", [&](auto& a) { a.set_int64_val(bytes); });
      attr(n, "pg_name", [&](auto& a) { a.set_string_val(std::to_string(groups.id(gpu, s.comm, s.expert))); });
      attr(n, "trainsim_comm", [&](auto& a) { a.set_string_val(model::to_string(s.comm)); });
      break;
    case NodeKind::Send:
    case NodeKind::Recv: {
      const bool send = s.kind == NodeKind::Send;
      const int peer = layout.gpu(s.peer_rank, layout.replica_of(gpu));
      n.set_type(send ? pb::COMM_SEND_NODE : pb::COMM_RECV_NODE);
      attr(n, "comm_src", [&](auto& a) { a.set_int32_val(send ? gpu : peer); });
      attr(n, "comm_dst", [&](auto& a) { a.set_int32_val(send ? peer : gpu); });
      attr(n, "comm_size", [&](auto& a) { a.set_int64_val(bytes); });
      attr(n, "comm_tag", [&](auto& a) { a.set_int32_val(static_cast<std::int32_t>(s.tag)); });
      break;
    }
  }
}

// One GPU's trace: metadata, then every node, each length-delimited.
std::string serialize(const RankGraph& g, const Simulation& sim, const model::ClusterLayout& layout, int gpu,
                      GroupIds& groups) {
  pb::GlobalMetadata meta;
  meta.set_version("0.0.4");
  const auto add_meta = [&](const char* name, const std::string& value) {
    pb::AttributeProto* a = meta.add_attr();
    a->set_name(name);
    a->set_string_val(value);
  };
  add_meta("generator", "trainsim");
  add_meta("scenario", sim.scenario.name);
  add_meta("gpu", std::to_string(gpu));
  add_meta("pipeline_rank", std::to_string(layout.rank_of(gpu)));
  add_meta("fidelity", model::to_string(sim.step.fidelity));
  std::string out;
  {
    google::protobuf::io::StringOutputStream zero_copy(&out);
    // One coded stream for the whole file (a stream per message would grow
    // and zero the string's spare capacity once per node); its destructor
    // trims the string to what was written.
    google::protobuf::io::CodedOutputStream stream(&zero_copy);
    google::protobuf::util::SerializeDelimitedToCodedStream(meta, &stream);
    pb::Node n;
    for (std::size_t i = 0; i < g.nodes.size(); ++i) {
      n.Clear();
      n.set_id(i);
      for (const int d : g.data_deps[i]) n.add_data_deps(static_cast<std::uint64_t>(d));
      for (const int d : g.ctrl_deps[i]) n.add_ctrl_deps(static_cast<std::uint64_t>(d));
      fill_node(n, g.nodes[i], gpu, layout, groups);
      google::protobuf::util::SerializeDelimitedToCodedStream(n, &stream);
    }
  }
  return out;
}

}  // namespace
#endif

bool chakra_available() {
#ifdef TRAINSIM_HAVE_CHAKRA
  return true;
#else
  return false;
#endif
}

ChakraSummary write_chakra(const Simulation& sim, const std::string& dir) {
#ifndef TRAINSIM_HAVE_CHAKRA
  (void)sim;
  throw InputError("--chakra", "", "\"" + dir + "\"",
                   "a trainsim built with protobuf (libprotobuf-dev and protobuf-compiler, scripts/setup.sh); this "
                   "build has no Chakra export");
#else
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec || !fs::is_directory(dir))
    throw InputError(dir, "", "a directory that cannot be created", "a writable directory for the Chakra traces");
  const model::ClusterLayout layout(sim.scenario.plan, sim.step.schedule);
  const auto transfers = index_transfers(sim.step);
  std::vector<RankGraph> ranks;
  for (int rk = 0; rk < sim.step.schedule.ranks; ++rk) ranks.push_back(RankBuilder(sim, transfers, rk).build());
  GroupIds groups(layout);
  ChakraSummary sum;
  for (int gpu = 0; gpu < layout.gpus(); ++gpu) {
    const RankGraph& g = ranks[static_cast<std::size_t>(layout.rank_of(gpu))];
    const std::string bytes = serialize(g, sim, layout, gpu, groups);
    write_file(fs::path(dir) / fmt::format("trainsim.{}.et", gpu), bytes);
    ++sum.files;
    sum.nodes += g.nodes.size();
    sum.bytes += bytes.size();
  }
  write_file(fs::path(dir) / "comm_group.json", groups.json());
  sum.comm_groups = groups.size();
  return sum;
#endif
}

}  // namespace trainsim::app
