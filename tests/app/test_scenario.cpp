#include <doctest/doctest.h>

#include <fstream>
#include <string>

#include "trainsim/app/scenario.hpp"
#include "trainsim/common/error.hpp"
#include "trainsim/common/json_reader.hpp"

using namespace trainsim;

namespace {

Json default_scenario() {
  return parse_json_file(std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/deepseek-v3-pretrain.json");
}

// Parses `j` and returns the JSON path of the InputError it raises ("" if none).
std::string error_path(const Json& j) {
  try {
    app::parse_scenario(j, "s.json");
  } catch (const InputError& e) {
    CHECK(e.file() == "s.json");
    CHECK(!e.value().empty());
    CHECK(!e.expected().empty());
    return e.json_path();
  }
  return "";
}

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("the default scenario loads with the published DeepSeek-V3 layout") {
  const auto s = app::parse_scenario(default_scenario(), "default.json");
  CHECK(s.cluster.total_gpus() == 2048);
  CHECK(s.plan.pp == 16);
  CHECK(s.plan.ep == 64);
  CHECK(s.plan.dp == 128);
  CHECK(s.plan.schedule == model::ScheduleKind::DualPipe);
  CHECK(s.gemm_precision == Precision::FP8);
  // 15360 sequences / (128 replicas x 1 sequence) = 120 micro-batches, 60 per direction.
  CHECK(s.microbatches_per_step() == 120);
  CHECK(s.tokens_per_step() == 15360LL * 4096);
}

TEST_CASE("the resolved scenario is itself a valid scenario that resolves to the same thing") {
  const auto s = app::parse_scenario(default_scenario(), "default.json");
  const Json resolved = app::to_json(s);
  const auto again = app::parse_scenario(resolved, "resolved.json");
  CHECK(app::to_json(again) == resolved);
}

TEST_CASE("bad scenarios name the JSON path of the problem") {
  Json j = default_scenario();
  SUBCASE("misspelled key") {
    j["parallelism"]["shedule"] = j["parallelism"]["schedule"];
    j["parallelism"].erase("schedule");
    CHECK(error_path(j) == "/parallelism/shedule");
  }
  SUBCASE("unknown top-level key") {
    j["trainig"] = 1;
    CHECK(error_path(j) == "/trainig");
  }
  SUBCASE("wrong type") {
    j["parallelism"]["pp"] = "sixteen";
    CHECK(error_path(j) == "/parallelism/pp");
  }
  SUBCASE("tp*pp*dp does not match the GPUs") {
    j["parallelism"]["dp"] = 64;
    CHECK(error_path(j) == "/parallelism/dp");
  }
  SUBCASE("ep does not divide the experts") {
    j["parallelism"]["ep"] = 48;
    j["parallelism"]["dp"] = 128;
    CHECK(error_path(j) == "/parallelism/ep");
  }
  SUBCASE("more pipeline stages than layers") {
    // 128 stages for 61 layers + embedding + head + MTP module.
    j["cluster"]["nodes"] = 2048;
    j["parallelism"]["pp"] = 128;
    j["parallelism"]["schedule"] = "1f1b";
    CHECK(error_path(j) == "/parallelism/pp");
  }
  SUBCASE("interleaved needs micro-batches in multiples of pp") {
    j["parallelism"]["schedule"] = "interleaved";  // 120 micro-batches, pp 16
    CHECK(error_path(j) == "/parallelism/schedule");
  }
  SUBCASE("virtual stages only for the interleaved schedule") {
    j["parallelism"]["virtual_stages"] = 2;
    CHECK(error_path(j) == "/parallelism/virtual_stages");
  }
  SUBCASE("global batch not divisible by dp x micro-batch") {
    j["training"]["global_batch_size"] = 15361;
    CHECK(error_path(j) == "/training/global_batch_size");
  }
  SUBCASE("DualPipe needs at least 2 x pp micro-batches") {
    j["training"]["global_batch_size"] = 128 * 30;
    CHECK(error_path(j) == "/parallelism/schedule");
  }
  SUBCASE("DualPipe needs an even pp") {
    j["cluster"]["nodes"] = 240;
    j["parallelism"]["pp"] = 15;
    CHECK(error_path(j) == "/parallelism/schedule");
  }
  SUBCASE("FP8 on a GPU without FP8 tensor cores") {
    j["cluster"]["gpu"] = "A100-80GB";
    CHECK(error_path(j) == "/precision/gemm");
  }
  SUBCASE("unknown precision") {
    j["precision"]["gemm"] = "fp4";
    CHECK(error_path(j) == "/precision/gemm");
  }
  SUBCASE("unknown schedule") {
    j["parallelism"]["schedule"] = "pipedream";
    CHECK(error_path(j) == "/parallelism/schedule");
  }
  SUBCASE("unknown model preset") {
    j["model"] = "deepseek-v4";
    CHECK(error_path(j) == "/model");
  }
  SUBCASE("inline model with a bad field") {
    j["model"] = Json::object({{"name", "x"}, {"layers", -1}});
    CHECK(error_path(j).rfind("/model/", 0) == 0);
  }
  SUBCASE("negative token count") {
    j["training"]["tokens"] = -1;
    CHECK(error_path(j) == "/training/tokens");
  }
  SUBCASE("comm SMs must leave SMs for compute") {
    j["parallelism"]["comm_sms"] = 132;
    CHECK(error_path(j) == "/parallelism/comm_sms");
  }
}

TEST_CASE("malformed JSON is an input error naming the file") {
  const std::string path = std::string(TRAINSIM_BINARY_DIR) + "/malformed-scenario.json";
  std::ofstream(path) << "{ \"name\": \"x\", }";
  CHECK_THROWS_AS(app::load_scenario(path), InputError);
  CHECK_THROWS_AS(app::load_scenario(path + ".missing"), InputError);
}
}
