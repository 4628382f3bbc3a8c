#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <sys/wait.h>

#include "trainsim/app/collective_study.hpp"
#include "trainsim/app/scenario.hpp"
#include "trainsim/common/error.hpp"
#include "trainsim/common/json_reader.hpp"

using namespace trainsim;

namespace {

const std::string kV3 = std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/deepseek-v3-pretrain.json";

struct CliResult {
  int code = -1;
  std::string out, err;
};

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

CliResult run_cli(const std::string& args) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(TRAINSIM_BINARY_DIR) / "cli-collective-test";
  fs::create_directories(dir);
  const fs::path out = dir / "out.txt", err = dir / "err.txt";
  const std::string cmd =
      std::string(TRAINSIM_BINARY_DIR) + "/trainsim collective " + args + " >" + out.string() + " 2>" + err.string();
  const int status = std::system(cmd.c_str());
  return {status == -1 ? -1 : WEXITSTATUS(status), slurp(out), slurp(err)};
}

}  // namespace

TEST_SUITE("unit") {
  TEST_CASE("collective: size ranges") {
    const app::SizeRange r = app::parse_size_range("1K:8G");
    CHECK(r.low_bytes == 1024.0);
    CHECK(r.high_bytes == 8.0 * 1024 * 1024 * 1024);
    CHECK(app::parse_size_range("64:64").high_bytes == 64.0);
    for (const char* bad : {"", "1K", "1K:", ":8G", "8G:1K", "0:1K", "1.5K:2K", "1T:2T", "-1:4", "1K:8Gb"})
      CHECK_THROWS_AS(app::parse_size_range(bad), InputError);
  }

  TEST_CASE("collective: ring all-gather inside one node, by hand") {
    // 8 GPUs of node 0, size S = 1.28e9 B gathered: 7 ring steps, each GPU
    // sends S/8 = 1.6e8 B to its neighbour over NVLink at 160 GB/s (200 x
    // 0.8): 1 ms, plus the 3.33 us NVLink latency: 7 x 1.00333 ms = 7.0233 ms.
    // algbw = S / t = 182.25 GB/s; busbw = algbw x 7/8 = 159.47 GB/s.
    const app::Scenario sc = app::load_scenario(kV3);
    app::CollectiveParams p;
    p.op = app::CollectiveOp::AllGather;
    p.group = 8;
    p.sizes = app::parse_size_range("1280000000:1280000000");
    const app::CollectiveStudy st = app::run_collective_study(sc, p);
    REQUIRE(st.rows.size() == 1);
    CHECK(st.rows[0].time_us == doctest::Approx(7 * 1003.33).epsilon(1e-4));
    CHECK(st.rows[0].count == 320000000);  // floats
    CHECK(st.rows[0].busbw_GBps == doctest::Approx(st.rows[0].algbw_GBps * 7 / 8));
    CHECK_FALSE(st.rows[0].deepep_GBps.has_value());
  }

  TEST_CASE("collective: sizes double from low to high") {
    const app::Scenario sc = app::load_scenario(kV3);
    app::CollectiveParams p;
    p.op = app::CollectiveOp::AllReduce;
    p.group = 16;
    p.sizes = app::parse_size_range("1K:1M");
    const app::CollectiveStudy st = app::run_collective_study(sc, p);
    REQUIRE(st.rows.size() == 11);  // 2^10 .. 2^20
    CHECK(st.rows.back().size_bytes == 1048576.0);
    // all-reduce: busbw = algbw x 2(n-1)/n = algbw x 30/16.
    CHECK(st.rows.back().busbw_GBps == doctest::Approx(st.rows.back().algbw_GBps * 30 / 16));
  }

  TEST_CASE("collective: moe-dispatch on EP8 matches the traffic model") {
    // V3, 4096 tokens per GPU (micro-batch 1 x 4096), FP8 dispatch: size =
    // 4096 x 7168 x (1 + 4/128) = 30,277,632 B. DeepEP's NVL bandwidth inside
    // a node is 160 GB/s x 8/7 (see tests/model/test_moe_traffic.cpp), within
    // the 0.5% the 3.33 us latency adds.
    const app::Scenario sc = app::load_scenario(kV3);
    app::CollectiveParams p;
    p.op = app::CollectiveOp::MoeDispatch;
    p.group = 8;
    const app::CollectiveStudy st = app::run_collective_study(sc, p);
    REQUIRE(st.rows.size() == 1);
    CHECK(st.rows[0].count == 4096);
    CHECK(st.rows[0].size_bytes == doctest::Approx(30277632.0));
    REQUIRE(st.rows[0].deepep_GBps.has_value());
    CHECK(*st.rows[0].deepep_GBps == doctest::Approx(160.0 * 8 / 7).epsilon(0.005));
  }

  TEST_CASE("CLI: trainsim collective prints the table and JSON") {
    const CliResult text = run_cli(kV3 + " --op all-to-all --group 8 --bytes 1M:4M");
    CHECK(text.code == 0);
    CHECK(text.out.find("algbw") != std::string::npos);
    CHECK(text.out.find("4194304") != std::string::npos);
    const CliResult js = run_cli(kV3 + " --op moe-combine --group 16 --tokens 1024 --json");
    REQUIRE(js.code == 0);
    const Json j = parse_json_text(js.out, "stdout");
    CHECK(j["op"] == "moe-combine");
    REQUIRE(j["rows"].size() == 1);
    CHECK(j["rows"][0]["count"] == 1024);
    CHECK(j["rows"][0].contains("deepep_bottleneck_GBps"));
  }

  TEST_CASE("CLI: bad collective input exits 2 with one line naming the option and value") {
    struct Bad {
      const char* args;
      const char* option;
      const char* value;
    };
    const Bad cases[] = {
        {"--op broadcast --group 8 --bytes 1K:1M", "--op", "broadcast"},
        {"--op all-reduce --group 3 --bytes 1K:1M", "--group", "3"},
        {"--op all-reduce --group 4096 --bytes 1K:1M", "--group", "4096"},
        {"--op all-reduce --group 8 --bytes 1M:1K", "--bytes", "1M:1K"},
        {"--op all-reduce --group 8 --bytes 1K..1M", "--bytes", "1K..1M"},
    };
    for (const Bad& b : cases) {
      const CliResult r = run_cli(kV3 + " " + b.args);
      CAPTURE(b.args);
      CHECK(r.code == 2);
      CHECK(r.out.empty());
      CHECK(r.err.find(b.option) != std::string::npos);
      CHECK(r.err.find(b.value) != std::string::npos);
      CHECK(r.err.find('\n') == r.err.size() - 1);  // one line
    }
  }
}
