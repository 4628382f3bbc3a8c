// Chakra execution-trace export (app/chakra_export.hpp): the files of a
// 16-GPU dense scenario decode with the schema (app/proto/chakra_et.proto),
// each GPU's node counts equal what the simulation ran, and the
// dependencies reference existing nodes and form no cycle.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <queue>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "trainsim/app/chakra_export.hpp"
#include "trainsim/app/report.hpp"
#include "trainsim/app/scenario.hpp"
#include "trainsim/common/json_reader.hpp"
#include "trainsim/model/cluster_layout.hpp"

#ifdef TRAINSIM_HAVE_CHAKRA
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/delimited_message_util.h>

#include "proto/chakra_et.pb.h"
#endif

using namespace trainsim;

#ifdef TRAINSIM_HAVE_CHAKRA
namespace {

namespace pb = ChakraProtoMsg;

struct Trace {
  pb::GlobalMetadata meta;
  std::vector<pb::Node> nodes;
};

// GlobalMetadata, then Node messages, each varint-length-prefixed.
Trace decode(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string bytes = ss.str();
  google::protobuf::io::ArrayInputStream stream(bytes.data(), static_cast<int>(bytes.size()));
  Trace t;
  bool clean_eof = false;
  REQUIRE(google::protobuf::util::ParseDelimitedFromZeroCopyStream(&t.meta, &stream, &clean_eof));
  for (;;) {
    pb::Node n;
    if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(&n, &stream, &clean_eof)) break;
    t.nodes.push_back(std::move(n));
  }
  CHECK(clean_eof);  // the last message ended exactly at the end of the file
  return t;
}

const pb::AttributeProto* find_attr(const pb::Node& n, const std::string& name) {
  for (const auto& a : n.attr())
    if (a.name() == name) return &a;
  return nullptr;
}

// Kahn's algorithm over data and control dependencies: every node is
// reached exactly when the graph has no cycle.
bool acyclic(const std::vector<pb::Node>& nodes) {
  std::vector<int> indegree(nodes.size(), 0);
  std::vector<std::vector<std::size_t>> children(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    std::set<std::uint64_t> deps(nodes[i].data_deps().begin(), nodes[i].data_deps().end());
    deps.insert(nodes[i].ctrl_deps().begin(), nodes[i].ctrl_deps().end());
    for (std::uint64_t d : deps) {
      children[d].push_back(i);
      ++indegree[i];
    }
  }
  std::queue<std::size_t> ready;
  for (std::size_t i = 0; i < nodes.size(); ++i)
    if (indegree[i] == 0) ready.push(i);
  std::size_t seen = 0;
  for (; !ready.empty(); ready.pop(), ++seen)
    for (std::size_t c : children[ready.front()])
      if (--indegree[c] == 0) ready.push(c);
  return seen == nodes.size();
}

// Exports the scenario's step into <build>/<name>, decodes every file and
// checks it against the simulation; returns the pipeline sends per rank.
std::vector<int> check_export(const app::Scenario& sc, const std::string& name) {
  namespace fs = std::filesystem;
  app::SimulateOptions opt;
  opt.record = true;
  const app::Simulation sim = app::simulate(sc, opt);
  const fs::path dir = fs::path(TRAINSIM_BINARY_DIR) / name;
  fs::remove_all(dir);
  const app::ChakraSummary sum = app::write_chakra(sim, dir.string());
  const int gpus = sc.cluster.total_gpus();
  REQUIRE(sum.files == gpus);
  const Json groups = parse_json_file((dir / "comm_group.json").string());
  CHECK(static_cast<int>(groups.size()) == sum.comm_groups);

  // What the simulation ran on replica 0 of each pipeline rank (every GPU of
  // a rank runs the same): recorded compute and communication kernels, DP
  // collectives, pipeline transfers sent and received, plus the optimizer.
  const auto& st = sim.step;
  const int ranks = st.schedule.ranks;
  std::vector<int> comp(ranks, 1), coll(ranks, 0), sends(ranks, 0), recvs(ranks, 0);
  for (const auto& k : st.kernels) ++(k.stream == model::Stream::Compute ? comp : coll)[k.rank];
  for (const auto& t : st.transfers) {
    if (t.kind == model::CommKind::None) {
      ++sends[t.rank];
      ++recvs[t.peer_rank];
    } else if (t.kind == model::CommKind::DpReduceScatter || t.kind == model::CommKind::DpAllGather ||
               t.kind == model::CommKind::DpAllReduce) {
      ++coll[t.rank];
    }
  }
  // Independently of the records: the kernels of every op's chunk programs.
  std::vector<int> program_kernels(ranks, 0);
  for (int rk = 0; rk < ranks; ++rk)
    for (const auto& op : st.schedule.per_rank[rk]) {
      const auto size = [](const std::vector<model::ChunkProgram>& v, int s) { return static_cast<int>(v[s].ops.size()); };
      switch (op.type) {
        case model::ChunkOpType::F: program_kernels[rk] += size(st.program_f, op.fwd.stage); break;
        case model::ChunkOpType::B: program_kernels[rk] += size(st.program_b, op.bwd.stage); break;
        case model::ChunkOpType::W: program_kernels[rk] += size(st.program_w, op.bwd.stage); break;
        case model::ChunkOpType::BW: program_kernels[rk] += size(st.program_bw, op.bwd.stage); break;
        case model::ChunkOpType::FB:
          program_kernels[rk] += size(st.program_f, op.fwd.stage) + size(st.program_bw, op.bwd.stage);
          break;
      }
    }

  const model::ClusterLayout layout(sc.plan, st.schedule);
  std::map<std::tuple<int, int, int>, int> sent, received;  // (src, dst, tag) -> count
  std::map<std::string, std::map<int, int>> group_use;       // pg_name -> gpu -> collectives
  std::uint64_t total = 0;
  for (int gpu = 0; gpu < gpus; ++gpu) {
    CAPTURE(gpu);
    const Trace t = decode(dir / fmt::format("trainsim.{}.et", gpu));
    const int rk = layout.rank_of(gpu);
    CHECK(t.meta.version() == "0.0.4");
    std::map<int, int> by_type;
    for (std::size_t i = 0; i < t.nodes.size(); ++i) {
      const pb::Node& n = t.nodes[i];
      CHECK(n.id() == i);  // ids are the positions, in simulated start order
      if (i > 0) CHECK(n.start_time_micros() >= t.nodes[i - 1].start_time_micros());
      for (std::uint64_t d : n.data_deps()) CHECK(d < i);
      for (std::uint64_t d : n.ctrl_deps()) CHECK(d < i);
      ++by_type[n.type()];
      if (n.type() == pb::COMM_SEND_NODE || n.type() == pb::COMM_RECV_NODE) {
        const auto key = std::make_tuple(find_attr(n, "comm_src")->int32_val(), find_attr(n, "comm_dst")->int32_val(),
                                         find_attr(n, "comm_tag")->int32_val());
        ++(n.type() == pb::COMM_SEND_NODE ? sent : received)[key];
        CHECK(std::get<0>(key) != std::get<1>(key));
      }
      if (n.type() == pb::COMM_COLL_NODE) {
        const std::string pg = find_attr(n, "pg_name")->string_val();
        ++group_use[pg][gpu];
        REQUIRE(groups.contains(pg));
        CHECK(std::find(groups[pg].begin(), groups[pg].end(), gpu) != groups[pg].end());
        CHECK(find_attr(n, "comm_size")->int64_val() > 0);
      }
      if (n.type() == pb::COMP_NODE) CHECK(find_attr(n, "num_ops") != nullptr);
    }
    CHECK(acyclic(t.nodes));
    CHECK(by_type[pb::COMP_NODE] == comp[rk]);
    CHECK(by_type[pb::COMM_COLL_NODE] == coll[rk]);
    CHECK(by_type[pb::COMM_SEND_NODE] == sends[rk]);
    CHECK(by_type[pb::COMM_RECV_NODE] == recvs[rk]);
    // Compute + in-op collectives = the chunk programs' kernels (+ optimizer
    // and DP collectives, which are not program kernels).
    const int dp_colls = static_cast<int>(std::count_if(t.nodes.begin(), t.nodes.end(), [](const pb::Node& n) {
      const auto* k = find_attr(n, "trainsim_comm");
      return k && k->string_val().rfind("dp_", 0) == 0;
    }));
    CHECK(by_type[pb::COMP_NODE] + by_type[pb::COMM_COLL_NODE] == program_kernels[rk] + 1 + dp_colls);
    total += t.nodes.size();
  }
  CHECK(total == sum.nodes);
  // Every send has its receive on the peer, with the same tag.
  CHECK(sent == received);
  // Every member of a group runs as many of its collectives.
  for (const auto& entry : group_use) {
    // Named copies: clang 14 cannot capture structured bindings (CAPTURE).
    const auto& pg = entry.first;
    const auto& use = entry.second;
    CAPTURE(pg);
    CHECK(use.size() == groups[pg].size());
    for (const auto& [gpu, count] : use) CHECK(count == use.begin()->second);
  }
  return sends;
}

}  // namespace
#endif

TEST_SUITE("unit") {
TEST_CASE("Chakra export of a 16-GPU dense scenario decodes and matches the simulation") {
  if (!app::chakra_available()) {
    MESSAGE("skipped: trainsim was built without protobuf (no Chakra export)");
    return;
  }
#ifdef TRAINSIM_HAVE_CHAKRA
  const auto sends = check_export(
      app::load_scenario(std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/llama3-8b-16xH100.json"), "chakra-dense");
  // 1F1B over 4 ranks, 8 micro-batches per pipeline: ranks 0 and 3 send 8
  // transfers, ranks 1 and 2 send 16 (activations forward, gradients back).
  CHECK(sends == std::vector<int>{8, 16, 16, 8});
#endif
}

TEST_CASE("Chakra export of a DualPipe MoE scenario: all-to-all groups and both directions' transfers") {
  if (!app::chakra_available()) {
    MESSAGE("skipped: trainsim was built without protobuf (no Chakra export)");
    return;
  }
#ifdef TRAINSIM_HAVE_CHAKRA
  // DeepSeek-V2-Lite on 32 GPUs: DualPipe over 4 ranks, EP 8, 8 micro-batches.
  Json j = parse_json_file(std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/deepseek-v3-pretrain.json");
  j["model"] = "deepseek-v2-lite";
  j["cluster"]["nodes"] = 4;
  j["parallelism"]["pp"] = 4;
  j["parallelism"]["ep"] = 8;
  j["parallelism"]["dp"] = 8;
  j["training"]["global_batch_size"] = 64;
  const auto sends = check_export(app::parse_scenario(j, "v2lite-dualpipe.json"), "chakra-dualpipe");
  // DualPipe runs both directions: every rank sends.
  for (int s : sends) CHECK(s > 0);
#endif
}
}
