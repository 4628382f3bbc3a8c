// The cluster simulated: fidelity, stragglers, skewed routing and faults on
// DeepSeek-V3's 2,048-GPU layout (issue acceptance). Each full-fidelity run
// executes about 90 million events (10-30 s in a Release build).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "trainsim/app/report.hpp"
#include "trainsim/app/scenario.hpp"
#include "trainsim/common/error.hpp"
#include "trainsim/common/json_reader.hpp"
#include "trainsim/hardware/topology.hpp"

using namespace trainsim;

namespace {

Json v3() { return parse_json_file(std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/deepseek-v3-pretrain.json"); }

Json report(const Json& scenario, app::FidelityChoice f = app::FidelityChoice::Auto) {
  app::SimulateOptions o;
  o.fidelity = f;
  return app::make_report(app::simulate(app::parse_scenario(scenario, "test.json"), o));
}

double step(const Json& r) { return r["step_time_s"].get<double>(); }

}  // namespace

TEST_SUITE("validation") {
TEST_CASE("DeepSeek-V3: full fidelity (every GPU) and the collapsed default agree") {
  // Every replica of a pipeline rank has the same work and its pipeline
  // transfers use its own plane's links, so the collapsed execution (16 GPUs)
  // is exact; the two runs agree to the picosecond (a relative 1e-12 allows
  // only for the printing of a double).
  const Json base = v3();
  const Json collapsed = report(base);
  const Json full = report(base, app::FidelityChoice::Full);
  CHECK(collapsed["cluster_simulation"]["fidelity"] == "collapsed");
  CHECK(collapsed["cluster_simulation"]["simulated_gpus"] == 16);
  CHECK(full["cluster_simulation"]["simulated_gpus"] == 2048);
  MESSAGE("collapsed " << step(collapsed) << " s, full " << step(full) << " s");
  CHECK(step(full) == doctest::Approx(step(collapsed)).epsilon(1e-12));
}

TEST_CASE("DeepSeek-V3: one GPU 20% slower slows the step and is named") {
  // GPU 70 (pipeline rank 0, EP group 1, EP rank 6) computes 1.2x slower.
  // Its EP group waits for it at every all-to-all, so the step rises; the
  // report names that group and GPU 70 as the member it waited for.
  const Json base = v3();
  Json slow = base;
  slow["stragglers"] = Json::parse(R"({"gpus": [{"gpu": 70, "slowdown": 1.2}]})");
  const Json r0 = report(base), r = report(slow);
  const auto& cs = r["cluster_simulation"];
  MESSAGE("healthy " << step(r0) << " s, one GPU 20% slower " << step(r) << " s; " << cs["critical_group"].dump());
  CHECK(cs["fidelity"] == "full");
  CHECK(step(r) > step(r0) * 1.01);
  CHECK(cs["critical_group"]["slowest_member"] == 70);
  CHECK(cs["critical_group"]["group"] == 1);
  const std::string kind = cs["critical_group"]["kind"].get<std::string>();
  CHECK(kind.rfind("ep_", 0) == 0);
}

TEST_CASE("DeepSeek-V3: the busiest expert at 2x the mean load slows the step; the EP group is named") {
  // Expert 0 gets weight w and the other 255 weight 1; w = 2 x mean =
  // 2 (w + 255) / 256 gives w = 510 / 254. Expert 0 lives on EP rank 0 of
  // every EP group (experts 0..3 on rank 0), so that GPU receives
  // (w + 3) / 4 = 1.25x the mean rows: its expert GEMMs run longer, its
  // group's all-to-alls carry more to it, and the group waits for it.
  const Json base = v3();
  Json skew = base;
  std::vector<double> load(256, 1.0);
  load[0] = 510.0 / 254.0;
  skew["moe_routing"] = {{"model", "histogram"}, {"expert_load", load}, {"seed", 7}};
  const Json r0 = report(base), r = report(skew);
  const auto& cs = r["cluster_simulation"];
  MESSAGE("balanced " << step(r0) << " s, busiest expert 2x mean " << step(r) << " s; " << cs["critical_group"].dump());
  CHECK(cs["fidelity"] == "full");
  CHECK(step(r) > step(r0) * 1.01);
  const std::string kind = cs["critical_group"]["kind"].get<std::string>();
  CHECK(kind.rfind("ep_", 0) == 0);
  // The member it waited for hosts expert 0: EP rank 0 (replica % 64 == 0).
  CHECK(cs["critical_group"]["slowest_member"].get<int>() % 64 == 0);
}

TEST_CASE("DeepSeek-V3: one plane of the fabric down slows the step, and no route uses it") {
  // Plane 3 (the NICs of local rank 3 and their switches) is down: those
  // GPUs reach other nodes through a node-mate's NIC (PXN over NVLink), so
  // seven NICs per node carry eight GPUs' inter-node traffic.
  const Json base = v3();
  Json down = base;
  down["cluster"]["network"]["faults"] = Json::parse(R"([{"plane": 3}])");
  const Json r0 = report(base), r = report(down);
  MESSAGE("healthy " << step(r0) << " s, plane 3 down " << step(r) << " s");
  CHECK(r["cluster_simulation"]["fidelity"] == "full");
  CHECK(step(r) > step(r0) * 1.01);
  // Routes from and to GPUs of plane 3 and of other planes avoid every
  // plane-3 switch (vertex names "p3.*").
  const app::Scenario sc = app::parse_scenario(down, "test.json");
  const hw::Topology topo = hw::Topology::build(sc.cluster);
  for (int src : {3, 11, 0, 1024 + 3})
    for (int dst : {8 + 3, 2047 - 4, 512 + 3, 9}) {
      CAPTURE(src);
      CAPTURE(dst);
      for (sim::LinkIndex l : topo.route(src, dst)) {
        CHECK(topo.vertex_name(topo.link_tail(l)).rfind("p3.", 0) != 0);
        CHECK(topo.vertex_name(topo.link_head(l)).rfind("p3.", 0) != 0);
      }
    }
}
}

TEST_SUITE("unit") {
TEST_CASE("tp_comm_overlap hides tensor-parallel collectives behind their GEMMs") {
  // Llama 3 70B, tp8 with sequence parallelism: every all-gather feeds a GEMM
  // and every row-parallel GEMM feeds a reduce-scatter. Overlapped, the
  // compute stream waits only for the part of a collective longer than its
  // GEMM, so exposed TP time and the step both drop; compute is unchanged.
  Json j = parse_json_file(std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/llama3-70b-h100.json");
  j["parallelism"]["sequence_parallel"] = true;
  Json ov = j;
  ov["parallelism"]["tp_comm_overlap"] = true;
  const Json a = report(j), b = report(ov);
  const double tp_a = a["breakdown"]["exposed_communication_s"]["tensor_parallel"].get<double>();
  const double tp_b = b["breakdown"]["exposed_communication_s"]["tensor_parallel"].get<double>();
  MESSAGE("exposed TP " << tp_a << " s -> " << tp_b << " s; step " << step(a) << " s -> " << step(b) << " s");
  CHECK(tp_b < 0.5 * tp_a);
  CHECK(step(b) < step(a));
  CHECK(b["breakdown"]["compute_s"].get<double>() == doctest::Approx(a["breakdown"]["compute_s"].get<double>()));
  // Without sequence parallelism there is nothing to pipeline: an input error.
  Json bad = ov;
  bad["parallelism"]["sequence_parallel"] = false;
  CHECK_THROWS_AS(app::parse_scenario(bad, "test.json"), InputError);
}

TEST_CASE("scenario: stragglers and moe_routing are checked") {
  Json j = v3();
  j["stragglers"] = Json::parse(R"({"gpus": [{"gpu": 2048, "slowdown": 1.2}]})");
  CHECK_THROWS_AS(app::parse_scenario(j, "t.json"), InputError);  // GPU id out of range
  j = v3();
  j["moe_routing"] = Json::parse(R"({"model": "zipf", "expert_load": [1]})");
  CHECK_THROWS_AS(app::parse_scenario(j, "t.json"), InputError);  // a key the model ignores
  j["moe_routing"] = Json::parse(R"({"model": "balanced", "replicas": [{"expert": 0, "ep_rank": 1}]})");
  CHECK_THROWS_AS(app::parse_scenario(j, "t.json"), InputError);
  // Drawn link speeds break the symmetry between replicas.
  j = v3();
  j["stragglers"] = Json::parse(R"({"links": {"sigma": 0.05, "seed": 2}})");
  const auto why = app::symmetry_breakers(app::parse_scenario(j, "t.json"));
  CHECK(why == std::vector<std::string>{"drawn link speeds"});
  j["stragglers"] = Json::parse(R"({"links": {"sigma": 2}})");
  CHECK_THROWS_AS(app::parse_scenario(j, "t.json"), InputError);  // sigma above 1
  // Collapsed fidelity asked for an asymmetric scenario is refused.
  j = v3();
  j["stragglers"] = Json::parse(R"({"spread": {"sigma": 0.02, "seed": 3}})");
  app::SimulateOptions o;
  o.fidelity = app::FidelityChoice::Collapsed;
  CHECK_THROWS_AS(app::simulate(app::parse_scenario(j, "t.json"), o), InputError);
}
}
