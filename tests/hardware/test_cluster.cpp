#include <doctest/doctest.h>

#include "../support/test_support.hpp"

#include <string>

#include <nlohmann/json.hpp>

#include "trainsim/common/json_reader.hpp"
#include "trainsim/hardware/cluster.hpp"

using namespace trainsim;
using namespace trainsim::hw;

namespace {

// DeepSeek-V3's training cluster: 256 nodes x 8 H800, 8-plane 2-tier fat-tree
// of 64-port 400G IB switches (deepseek-v3-facts.json training_cluster).
Json deepseek_cluster() {
  return parse_json_text(R"({
    "gpu": "H800", "nodes": 256, "gpus_per_node": 8,
    "network": {"topology": "multi-plane-fat-tree", "planes": 8, "tiers": 2,
                "switch_radix": 64, "nic_Gbps": 400}})",
                         "s.json");
}

ClusterSpec parse(const Json& j) {
  JsonObject o(j, "s.json", "/cluster");
  return parse_cluster(o);
}

InputError parse_error(const Json& j) {
  return test::input_error_of([&] { parse(j); });
}

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("DeepSeek-V3 cluster parses with derived latency defaults") {
  ClusterSpec c = parse(deepseek_cluster());
  CHECK(c.gpu.name == "H800");
  CHECK(c.total_gpus() == 2048);
  CHECK(c.nics_per_node == 8);
  CHECK(c.network.topology == TopologyKind::MultiPlaneFatTree);
  CHECK(c.network.planes == 8);
  // 400 Gb/s = 50 GB/s per direction.
  CHECK(c.network.nic_bandwidth.value() == doctest::Approx(50e9));
  // ISCA 2025 Table 5: IB same leaf 2.8 us (2 NIC + 1 switch), cross leaf 3.7 us
  // (2 NIC + 3 switch) -> switch = (3.7 - 2.8) / 2 = 0.45 us, NIC = (2.8 - 0.45) / 2.
  CHECK(c.network.switch_latency == Time::us(0.45));
  CHECK(c.network.nic_latency == Time::us(1.175));
  CHECK(c.network.nic_latency * 2 + c.network.switch_latency == Time::us(2.8));
  CHECK(c.network.nic_latency * 2 + c.network.switch_latency * 3 == Time::us(3.7));
}

TEST_CASE("planes default to gpus_per_node (multi-plane) or 1 (fat-tree); explicit latencies are read") {
  Json j = deepseek_cluster();
  j["network"].erase("planes");
  CHECK(parse(j).network.planes == 8);
  j["network"]["topology"] = "fat-tree";
  j["network"]["switch_latency_us"] = 0.3;
  j["network"]["nic_latency_us"] = 1.0;
  ClusterSpec c = parse(j);
  CHECK(c.network.topology == TopologyKind::FatTree);
  CHECK(c.network.planes == 1);
  CHECK(c.network.switch_latency == Time::us(0.3));
  CHECK(c.network.nic_latency == Time::us(1.0));
}

TEST_CASE("inline GPU object in a cluster") {
  Json j = deepseek_cluster();
  j["gpu"] = to_json(gpu_preset("B200"));
  j["gpu"]["name"] = "my-B200";
  ClusterSpec c = parse(j);
  CHECK(c.gpu.name == "my-B200");
  CHECK(c.gpu.peak(Precision::FP8).value() == doctest::Approx(4500e12));
  j["gpu"].erase("tdp_W");
  CHECK(parse_error(j).json_path() == "/cluster/gpu/tdp_W");
  j["gpu"] = 42;
  CHECK(parse_error(j).json_path() == "/cluster/gpu");
}

TEST_CASE("unknown GPU preset in a cluster points at /cluster/gpu") {
  Json j = deepseek_cluster();
  j["gpu"] = "H8000";
  InputError e = parse_error(j);
  CHECK(e.file() == "s.json");
  CHECK(e.json_path() == "/cluster/gpu");
  CHECK(e.expected().find("H800") != std::string::npos);
}

TEST_CASE("cluster rejections name the path, the value and the limit") {
  SUBCASE("4 tiers") {
    Json j = deepseek_cluster();
    j["network"]["tiers"] = 4;
    InputError e = parse_error(j);
    CHECK(e.json_path() == "/cluster/network/tiers");
    CHECK(e.expected().find("2 (leaf/spine) or 3") != std::string::npos);
  }
  SUBCASE("1 tier") {
    Json j = deepseek_cluster();
    j["network"]["tiers"] = 1;
    CHECK(parse_error(j).json_path() == "/cluster/network/tiers");
  }
  SUBCASE("multi-plane planes not a divisor of gpus_per_node") {
    Json j = deepseek_cluster();
    j["network"]["planes"] = 3;
    InputError e = parse_error(j);
    CHECK(e.json_path() == "/cluster/network/planes");
    CHECK(e.value().find('3') != std::string::npos);
    CHECK(e.expected().find('8') != std::string::npos);
  }
  SUBCASE("fat-tree with several planes") {
    Json j = deepseek_cluster();
    j["network"]["topology"] = "fat-tree";
    CHECK(parse_error(j).json_path() == "/cluster/network/planes");
  }
  SUBCASE("too many nodes for the radix (multi-plane)") {
    // Radix 64: 64^2/2 = 2048 endpoints per plane, one NIC per node per plane -> 2048 nodes.
    Json j = deepseek_cluster();
    j["nodes"] = 2048;
    CHECK(parse(j).total_gpus() == 16384);
    j["nodes"] = 2049;
    InputError e = parse_error(j);
    CHECK(e.json_path() == "/cluster/nodes");
    CHECK(e.value().find("2049") != std::string::npos);
    CHECK(e.expected().find("at most 2048 nodes") != std::string::npos);
  }
  SUBCASE("too many nodes for the radix (fat-tree)") {
    // One plane holds all 8 NICs of a node: 2048 / 8 = 256 nodes.
    Json j = deepseek_cluster();
    j["network"]["topology"] = "fat-tree";
    j["network"].erase("planes");
    CHECK(parse(j).total_gpus() == 2048);
    j["nodes"] = 257;
    InputError e = parse_error(j);
    CHECK(e.json_path() == "/cluster/nodes");
    CHECK(e.expected().find("at most 256 nodes") != std::string::npos);
  }
  SUBCASE("odd radix") {
    Json j = deepseek_cluster();
    j["network"]["switch_radix"] = 63;
    CHECK(parse_error(j).json_path() == "/cluster/network/switch_radix");
  }
  SUBCASE("radix below 4") {
    Json j = deepseek_cluster();
    j["network"]["switch_radix"] = 2;
    CHECK(parse_error(j).json_path() == "/cluster/network/switch_radix");
  }
  SUBCASE("unknown topology") {
    Json j = deepseek_cluster();
    j["network"]["topology"] = "dragonfly";
    CHECK(parse_error(j).json_path() == "/cluster/network/topology");
  }
  SUBCASE("negative NIC speed") {
    Json j = deepseek_cluster();
    j["network"]["nic_Gbps"] = -400;
    CHECK(parse_error(j).json_path() == "/cluster/network/nic_Gbps");
  }
  SUBCASE("nics_per_node other than one per GPU") {
    Json j = deepseek_cluster();
    j["nics_per_node"] = 4;
    CHECK(parse_error(j).json_path() == "/cluster/nics_per_node");
  }
  SUBCASE("misspelled key") {
    Json j = deepseek_cluster();
    j["network"]["switch_latency_usec"] = 1.0;
    InputError e = parse_error(j);
    CHECK(e.json_path() == "/cluster/network/switch_latency_usec");
    CHECK(e.expected().find("switch_latency_us") != std::string::npos);
  }
  SUBCASE("missing network") {
    Json j = deepseek_cluster();
    j.erase("network");
    CHECK(parse_error(j).json_path() == "/cluster/network");
  }
}

TEST_CASE("to_json round-trips a cluster") {
  ClusterSpec c = parse(deepseek_cluster());
  Json j = to_json(c);
  CHECK(j["network"]["topology"] == "multi-plane-fat-tree");
  CHECK(j["network"]["nic_Gbps"].get<double>() == doctest::Approx(400));
  CHECK(j["gpu"]["name"] == "H800");
  ClusterSpec back = parse(j);
  CHECK(back.total_gpus() == c.total_gpus());
  CHECK(back.network.planes == c.network.planes);
  CHECK(back.network.switch_latency == c.network.switch_latency);
  CHECK(back.network.nic_latency == c.network.nic_latency);
  CHECK(back.network.nic_bandwidth.value() == doctest::Approx(c.network.nic_bandwidth.value()));
  CHECK(back.gpu.peak_bf16.value() == doctest::Approx(c.gpu.peak_bf16.value()));
}

TEST_CASE("fabric keys: tiers 3, oversubscription, rail-optimized, planes dividing gpus_per_node") {
  Json j = deepseek_cluster();
  j["network"]["planes"] = 4;  // 4 divides 8: ranks r and r + 4 share plane r
  j["network"]["tiers"] = 3;
  j["network"]["oversubscription"] = 2;
  ClusterSpec c = parse(j);
  CHECK(c.network.planes == 4);
  CHECK(c.network.tiers == 3);
  CHECK(c.network.oversubscription == 2.0);
  // down = ceil(64 * 2 / 3) = 43, up 21.
  CHECK(leaf_down_ports(c.network) == 43);
  j = deepseek_cluster();
  j["gpus_per_node"] = 72;  // NVL72 domain, 8 planes of 9 NICs per node
  j["nodes"] = 4;
  CHECK(parse(j).network.planes == 8);
  j["network"]["topology"] = "fat-tree";
  j["network"].erase("planes");
  CHECK(parse(j).network.planes == 1);
  j = deepseek_cluster();
  j["network"]["topology"] = "rail-optimized";
  j["network"].erase("planes");
  c = parse(j);
  CHECK(c.network.topology == TopologyKind::RailOptimized);
  CHECK(c.network.planes == 1);
  // 3-tier radix 64: 64 pods x 32 leaves x 32 down ports = 65536 endpoints = 8192 nodes of 8.
  j = deepseek_cluster();
  j["network"]["topology"] = "fat-tree";
  j["network"].erase("planes");
  j["network"]["tiers"] = 3;
  j["nodes"] = 8192;
  CHECK(parse(j).total_gpus() == 65536);
  j["nodes"] = 8193;
  InputError e = parse_error(j);
  CHECK(e.json_path() == "/cluster/nodes");
  CHECK(e.expected().find("at most 8192 nodes") != std::string::npos);
}

TEST_CASE("fabric key rejections name the path") {
  auto path_of = [](Json j) { return parse_error(j).json_path(); };
  Json j = deepseek_cluster();
  j["network"]["topology"] = "rail-optimized";
  CHECK(path_of(j) == "/cluster/network/planes");  // planes 8 given: rails use 1
  j = deepseek_cluster();
  j["network"]["oversubscription"] = 0.5;
  CHECK(path_of(j) == "/cluster/network/oversubscription");
  j["network"]["oversubscription"] = 64;  // ceil(64 * 64 / 65) = 64 down ports: none up
  CHECK(path_of(j) == "/cluster/network/oversubscription");
  j = deepseek_cluster();
  j["network"]["topology"] = "rail-optimized";
  j["network"].erase("planes");
  j["nodes"] = 257;  // 64 leaves of 32 nodes = 8 node groups x 8 rails
  CHECK(path_of(j) == "/cluster/nodes");
}

TEST_CASE("faults parse, echo, and report bad names and ranges at their JSON path") {
  Json j = deepseek_cluster();
  j["network"]["faults"] = parse_json_text(R"([{"link": "p0.leaf0-p0.spine0#0"}, {"switch": "p3.spine1"},
      {"nic": 17}, {"plane": 7}, {"nic": 5, "bandwidth_factor": 0.5},
      {"link": "p1.leaf2-p1.spine3#7", "bandwidth_factor": 0.25}])", "s.json");
  ClusterSpec c = parse(j);
  REQUIRE(c.network.faults.size() == 6);
  CHECK(c.network.faults[0] == FabricFault{FaultTarget::Link, "p0.leaf0-p0.spine0#0", -1, 0.0});
  CHECK(c.network.faults[3] == FabricFault{FaultTarget::Plane, "", 7, 0.0});
  CHECK(c.network.faults[5].bandwidth_factor == 0.25);
  // Round trip: every key echoed, parse(to_json(c)) == c.
  ClusterSpec back = parse(to_json(c));
  CHECK(back.network.faults == c.network.faults);
  CHECK(back.network.oversubscription == c.network.oversubscription);
  CHECK(back.network.tiers == c.network.tiers);
  CHECK(back.network.topology == c.network.topology);

  auto error_at = [&](const char* faults) {
    Json k = deepseek_cluster();
    k["network"]["faults"] = parse_json_text(faults, "s.json");
    return parse_error(k);
  };
  CHECK(error_at(R"([{"switch": "p0.spine0"}, {"link": "p0.leaf0-p0.spine99"}])").json_path() ==
        "/cluster/network/faults/1/link");
  CHECK(error_at(R"([{"switch": "p0.spine99"}])").json_path() == "/cluster/network/faults/0/switch");
  CHECK(error_at(R"([{"nic": 2048}])").json_path() == "/cluster/network/faults/0/nic");
  CHECK(error_at(R"([{"plane": 8}])").json_path() == "/cluster/network/faults/0/plane");
  CHECK(error_at(R"([{"nic": 1, "bandwidth_factor": 0}])").json_path() == "/cluster/network/faults/0/bandwidth_factor");
  CHECK(error_at(R"([{"nic": 1, "bandwidth_factor": 1.5}])").json_path() ==
        "/cluster/network/faults/0/bandwidth_factor");
  CHECK(error_at(R"([{"plane": 1, "bandwidth_factor": 0.5}])").json_path() ==
        "/cluster/network/faults/0/bandwidth_factor");
  CHECK(error_at(R"([{"nic": 1, "plane": 1}])").json_path() == "/cluster/network/faults/0");
  CHECK(error_at(R"([{"nicc": 1}])").json_path() == "/cluster/network/faults/0/nicc");
  CHECK(error_at(R"([{}])").json_path() == "/cluster/network/faults/0");
  CHECK(error_at(R"({"nic": 1})").json_path() == "/cluster/network/faults");
  // Every NIC of node 3 down: node 3 unreachable, reported for the fault set.
  InputError e = error_at(R"([{"nic": 24}, {"nic": 25}, {"nic": 26}, {"nic": 27},
                               {"nic": 28}, {"nic": 29}, {"nic": 30}, {"nic": 31}])");
  CHECK(e.json_path() == "/cluster/network/faults");
  CHECK(e.value().find("node 3") != std::string::npos);
}
}
