// `trainsim fabric`: the fabric report in-process, and the CLI end to end.
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "trainsim/app/fabric_study.hpp"
#include "trainsim/app/report.hpp"
#include "trainsim/app/scenario.hpp"
#include "trainsim/common/json_reader.hpp"

using namespace trainsim;

namespace {

// A cluster-only scenario: `fabric` reads nothing else.
Json cluster_file(int nodes, const char* topology, int tiers, int planes) {
  Json net = {{"topology", topology}, {"tiers", tiers}, {"switch_radix", 64}, {"nic_Gbps", 400}};
  if (planes > 0) net["planes"] = planes;
  return Json{{"cluster", {{"gpu", "H800"}, {"nodes", nodes}, {"gpus_per_node", 8}, {"network", net}}}};
}

Json report_of(const Json& file) {
  JsonObject top(file, "f.json", "");
  JsonObject cluster = top.object("cluster");
  return app::fabric_json(app::fabric_study(hw::parse_cluster(cluster), "f.json"));
}

struct Run {
  int status = -1;
  std::string out, err;
};

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

Run run_cli(const std::string& args) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(TRAINSIM_BINARY_DIR) / "cli-test";
  const std::string cmd = std::string(TRAINSIM_BINARY_DIR) + "/trainsim " + args + " >" +
                          (dir / "fabric-out.txt").string() + " 2>" + (dir / "fabric-err.txt").string();
  const int status = std::system(cmd.c_str());
  return Run{status == -1 ? -1 : WEXITSTATUS(status), slurp(dir / "fabric-out.txt"), slurp(dir / "fabric-err.txt")};
}

std::filesystem::path write(const std::string& name, const Json& j) {
  const auto dir = std::filesystem::path(TRAINSIM_BINARY_DIR) / "cli-test";
  std::filesystem::create_directories(dir);
  const auto p = dir / name;
  std::ofstream(p) << j.dump();
  return p;
}

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("fabric report: ISCA 2025 Table 3 switch and link counts, bisection") {
  // FT2: 2048 endpoints -> 64 leaves + 32 spines = 96 switches, 2048 switch links.
  Json r = report_of(cluster_file(256, "fat-tree", 2, 0));
  CHECK(r["endpoints"] == 2048);
  CHECK(r["switches"] == 96);
  CHECK(r["switch_links"] == 2048);
  CHECK(r["nic_links"] == 2048);
  // Full bisection: 2048 / 2 NICs x 50 GB/s = 51200 GB/s.
  CHECK(r["bisection_GBps"].get<double>() == doctest::Approx(51200));
  // MPFT: 8 planes x 96 = 768 switches, 8 x 2048 = 16384 switch links.
  r = report_of(cluster_file(2048, "multi-plane-fat-tree", 2, 8));
  CHECK(r["endpoints"] == 16384);
  CHECK(r["switches"] == 768);
  CHECK(r["switch_links"] == 16384);
  CHECK(r["switches_per_plane"]["spine"] == 32);
  // FT3: radix 64 reaches 64^3/4 = 65536 endpoints with 5120 switches.
  r = report_of(cluster_file(8192, "fat-tree", 3, 0));
  CHECK(r["endpoints"] == 65536);
  CHECK(r["switches"] == 5120);
  CHECK(r["switches_per_plane"]["core"] == 1024);
  CHECK(r["switch_links"] == 131072);
  CHECK(r["failed"]["switches"].empty());
}

TEST_CASE("simulate routes over the faulted fabric: a slow NIC on the data-parallel ring slows the step") {
  // GPU 0's NIC at a tenth of its speed bounds its expert-parallel group's
  // all-to-alls and its data-parallel rings. A dead NIC is routed around
  // through a node-mate (PXN): that NIC then carries two GPUs' inter-node
  // traffic, so GPU 0's EP group is slower (the step runs at full fidelity),
  // but far less than with a tenth of a NIC.
  const Json base = parse_json_file(std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/deepseek-v3-pretrain.json");
  const auto step = [](const Json& j) {
    return app::make_report(app::simulate(app::parse_scenario(j, "test.json")))["step_time_s"].get<double>();
  };
  Json slow = base, dead = base;
  slow["cluster"]["network"]["faults"] = Json::parse(R"([{"nic": 0, "bandwidth_factor": 0.1}])");
  dead["cluster"]["network"]["faults"] = Json::parse(R"([{"nic": 0}])");
  const double t0 = step(base);
  const double t_slow = step(slow), t_dead = step(dead);
  MESSAGE("healthy " << t0 << " s, NIC 0 at 10% " << t_slow << " s, NIC 0 down " << t_dead << " s");
  CHECK(t_slow > t0 * 1.1);
  CHECK(t_dead > t0);
  CHECK(t_dead < t_slow);
}

TEST_CASE("fabric report lists failed and degraded elements") {
  Json f = cluster_file(256, "multi-plane-fat-tree", 2, 8);  // 8 leaves, 4 spines per plane
  f["cluster"]["network"]["faults"] = Json::parse(R"([{"switch": "p2.spine1"}, {"nic": 9},
      {"link": "p0.leaf0-p0.spine0#3"}, {"nic": 10, "bandwidth_factor": 0.5}])");
  const Json r = report_of(f);
  CHECK(r["failed"]["switches"] == Json::parse(R"(["p2.spine1"])"));
  CHECK(r["failed"]["links"] == Json::parse(R"(["p0.leaf0-p0.spine0#3"])"));
  CHECK(r["failed"]["nics"] == Json::parse("[9]"));
  REQUIRE(r["degraded"].size() == 1);
  CHECK(r["degraded"][0]["nic"] == 10);
  CHECK(r["degraded"][0]["bandwidth_factor"].get<double>() == doctest::Approx(0.5));
}
}

TEST_SUITE("golden") {
TEST_CASE("CLI: trainsim fabric prints JSON and text, draws small fabrics, refuses large drawings") {
  namespace fs = std::filesystem;
  const fs::path ft3 = write("fabric-ft3.json", cluster_file(8192, "fat-tree", 3, 0));
  Run r = run_cli("fabric " + ft3.string() + " --json");
  REQUIRE(r.status == 0);
  const Json j = Json::parse(r.out);
  CHECK(j["switches"] == 5120);
  CHECK(j["endpoints"] == 65536);
  r = run_cli("fabric " + ft3.string());
  CHECK(r.status == 0);
  CHECK(r.out.find("switches            5120 (2048 leaf, 2048 aggregation, 1024 core per plane)") != std::string::npos);
  // --dot on 65536 GPUs: input error, nothing written.
  const fs::path dot = fs::path(TRAINSIM_BINARY_DIR) / "cli-test" / "fabric.dot";
  fs::remove(dot);
  r = run_cli("fabric " + ft3.string() + " --dot " + dot.string());
  CHECK(r.status == 2);
  CHECK(r.err.find("--dot") != std::string::npos);
  CHECK_FALSE(fs::exists(dot));
  // A small fabric with faults: drawing written, names listed.
  Json small = cluster_file(4, "fat-tree", 2, 0);
  small["cluster"]["network"]["switch_radix"] = 8;  // 32 NICs / 4 down = 8 leaves, 4 spines
  small["cluster"]["network"]["faults"] = Json::parse(R"([{"switch": "p0.spine3"}])");
  const fs::path sp = write("fabric-small.json", small);
  r = run_cli("fabric " + sp.string() + " --list --dot " + dot.string());
  REQUIRE(r.status == 0);
  CHECK(r.out.find("switch p0.spine3 down") != std::string::npos);
  CHECK(r.out.find("link gpu0-p0.leaf0\n") != std::string::npos);
  const std::string d = slurp(dot);
  CHECK(d.rfind("graph fabric {", 0) == 0);
  CHECK(d.find("\"p0.spine3\" [shape=box, color=red, style=dashed]") != std::string::npos);
  // Unknown switch name: exit 2 naming the file and the JSON path.
  small["cluster"]["network"]["faults"] = Json::parse(R"([{"switch": "p0.spine4"}])");
  r = run_cli("fabric " + write("fabric-bad.json", small).string());
  CHECK(r.status == 2);
  CHECK(r.err.find("fabric-bad.json") != std::string::npos);
  CHECK(r.err.find("/cluster/network/faults/0/switch") != std::string::npos);
}
}
