// The CLI's one error path and all-or-nothing outputs, one regression test per
// error class of issue 10: each bad input exits 2 with exactly one line
// `trainsim: error: ...` naming the file (or option) and the JSON path, and
// leaves no output file and no temporary behind.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "trainsim/common/json_reader.hpp"

using namespace trainsim;
namespace fs = std::filesystem;

namespace {

const std::string kBin = std::string(TRAINSIM_BINARY_DIR) + "/trainsim";
const std::string kDefault = std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/deepseek-v3-pretrain.json";

struct Run {
  int code = -1;
  std::string err;
};

// A fresh, empty directory per test case, so "nothing written" is checkable.
fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::path(TRAINSIM_BINARY_DIR) / "cli-errors" / name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

Run run(const std::string& args, const fs::path& dir) {
  const fs::path err = dir / "stderr.txt";
  const std::string cmd = "cd " + dir.string() + " && " + kBin + " " + args + " >/dev/null 2>" + err.string();
  const int status = std::system(cmd.c_str());
  Run r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream in(err);
  r.err.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  fs::remove(err);
  return r;
}

// Exit 2, one line with the prefix, naming `file` and `path`.
void check_input_error(const Run& r, const std::string& file, const std::string& path) {
  INFO("stderr: ", r.err.substr(0, 400));
  CHECK(r.code == 2);
  CHECK(r.err.rfind("trainsim: error: ", 0) == 0);
  REQUIRE_FALSE(r.err.empty());
  CHECK(r.err.find('\n') == r.err.size() - 1);
  CHECK(r.err.size() < 2500);
  CHECK(r.err.find(file) != std::string::npos);
  CHECK(r.err.find(path) != std::string::npos);
}

// Only `keep` (the inputs the test wrote) is left in `dir`.
void check_nothing_written(const fs::path& dir, std::size_t inputs) {
  std::size_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    INFO("left: ", e.path().string());
    CHECK(e.path().extension() == ".json");
    CHECK(e.path().filename().string().rfind("in", 0) == 0);
    ++n;
  }
  CHECK(n == inputs);
}

Json default_json() { return parse_json_file(kDefault); }

void write(const fs::path& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("CLI errors: a scenario nested 100,000 levels deep is an input error, not a crash") {
  const fs::path d = fresh_dir("deep");
  write(d / "in.json", std::string(100000, '[') + std::string(100000, ']'));
  check_input_error(run("simulate in.json --report r.json", d), "in.json", "/0/0/0");
  check_nothing_written(d, 1);
  write(d / "in.json", "{\"a\": " + std::string(100000, '{'));
  check_input_error(run("simulate in.json --report r.json", d), "in.json", "/a/");
}

TEST_CASE("CLI errors: numbers out of double range are input errors at their JSON path") {
  const fs::path d = fresh_dir("e400");
  std::string text = default_json().dump();
  const auto at = text.find("\"tokens\":");
  REQUIRE(at != std::string::npos);
  text.insert(at, "\"tokens\":1e400,");  // duplicate key: the pre-scan sees the first
  write(d / "in.json", text);
  check_input_error(run("simulate in.json --report r.json", d), "in.json", "/training/tokens");
  check_nothing_written(d, 1);
  Json j = default_json();
  write(d / "in.json", j.dump().replace(j.dump().find("\"nodes\":256"), 11, "\"nodes\":-1e999"));
  check_input_error(run("simulate in.json", d), "in.json", "/cluster/nodes");
}

TEST_CASE("CLI errors: GPU counts whose product overflows are refused at /cluster/nodes") {
  const fs::path d = fresh_dir("gpus");
  Json j = default_json();
  j["cluster"]["nodes"] = 4194304;  // x 8 GPUs = 2^25; x 1024 would wrap an int
  j["cluster"]["gpus_per_node"] = 1024;
  write(d / "in.json", j.dump());
  check_input_error(run("simulate in.json --report r.json", d), "in.json", "/cluster/nodes");
  check_nothing_written(d, 1);
}

TEST_CASE("CLI errors: ZeRO-3 with DualPipe is refused at /parallelism/zero_stage") {
  // The default scenario runs DualPipe; its overlapped F&B pairs would have
  // to order two programs' per-layer gathers on one stream (cluster_exec.hpp).
  const fs::path d = fresh_dir("zero3");
  Json j = default_json();
  j["parallelism"]["zero_stage"] = 3;
  write(d / "in.json", j.dump());
  const Run r = run("simulate in.json --report r.json", d);
  check_input_error(r, "in.json", "/parallelism/zero_stage");
  CHECK(r.err.find("dualpipe") != std::string::npos);
  check_nothing_written(d, 1);
}

TEST_CASE("CLI errors: --chakra with per-layer data-parallel collectives is refused before the run") {
  // The export writes the tail's gradient sync, not ZeRO-3's or
  // overlap_grad_reduce's per-layer collectives: one line, nothing written.
  const fs::path d = fresh_dir("chakra-zero3");
  Json j = parse_json_file(std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/llama3-8b-16xH100.json");
  j["parallelism"]["zero_stage"] = 3;
  write(d / "in.json", j.dump());
  const Run r = run("simulate in.json --chakra ck --report r.json", d);
  check_input_error(r, "--chakra", "");
  check_nothing_written(d, 1);
}

TEST_CASE("CLI errors: work that cannot fit is refused before it starts") {
  const fs::path d = fresh_dir("limits");
  // seq_len 2^23 (inside the key's range) overflows simulated time: named
  // as the scenario's /training, exit 2 (it was an internal error, exit 1).
  Json j = default_json();
  j["training"]["seq_len"] = 1 << 23;
  write(d / "in.json", j.dump());
  check_input_error(run("simulate in.json --report r.json", d), "in.json", "/training");
  // 2^20 micro-batches per pipeline (dp 128 x 1 per micro-batch): refused
  // up front instead of simulating for minutes.
  j = default_json();
  j["training"]["global_batch_size"] = 128LL << 20;
  write(d / "in.json", j.dump());
  check_input_error(run("simulate in.json --report r.json", d), "in.json", "/training/global_batch_size");
  // Inside the micro-batch limit, but a trace of 4,096 x 64 layer passes
  // would not fit in memory: refused when --trace asks for it.
  j["training"]["global_batch_size"] = 128 * 4096;
  write(d / "in.json", j.dump());
  const Run r = run("simulate in.json --report r.json --trace t.json", d);
  check_input_error(r, "in.json", "/training/global_batch_size");
  CHECK(r.err.find("--trace") != std::string::npos);
  check_nothing_written(d, 1);
}

TEST_CASE("CLI errors: keys with control characters and huge keys give one short line") {
  const fs::path d = fresh_dir("keys");
  Json j = default_json();
  j["na\nme\x1b"] = 1;
  write(d / "in.json", j.dump());
  Run r = run("simulate in.json --report r.json", d);
  check_input_error(r, "in.json", "/na\\nme\\x1b");
  Json k = default_json();
  k[std::string(1000000, 'k')] = 1;
  write(d / "in.json", k.dump());
  r = run("simulate in.json --report r.json", d);
  check_input_error(r, "in.json", "/kkkkkkkk");
  CHECK(r.err.find("...") != std::string::npos);
  check_nothing_written(d, 1);
}

TEST_CASE("CLI errors: a calibration profile that does not load names the scenario and /calibration") {
  const fs::path d = fresh_dir("calibration");
  Json j = default_json();
  j["calibration"] = "no-such-profile";
  write(d / "in.json", j.dump());
  const Run r = run("simulate in.json --report r.json", d);
  check_input_error(r, "in.json", "/calibration");
  CHECK(r.err.find("no-such-profile") != std::string::npos);
  check_nothing_written(d, 1);
}

TEST_CASE("CLI errors: command-line errors are one prefixed line with exit 2") {
  const fs::path d = fresh_dir("cli");
  check_input_error(run("", d), "command line", "subcommand");
  check_input_error(run("simulate", d), "command line", "scenario");
  check_input_error(run("simulate in.json --fidelity sideways", d), "command line", "sideways");
  check_input_error(run("schedule --kind 1f1b --ranks 4 --microbatches 8 --virtual-stages 0", d), "command line",
                    "virtual-stages");
  check_input_error(run("schedule --kind nope --ranks 4 --microbatches 8", d), "--kind", "nope");
  check_nothing_written(d, 0);
}

TEST_CASE("CLI errors: plan options are checked before any simulation, nothing written") {
  const fs::path d = fresh_dir("plan");
  const std::string pl = "plan " + kDefault + " --quiet --out p.json";
  check_input_error(run(pl + " --gpu-types H900", d), "--gpu-types", "H900");
  check_input_error(run(pl + " --gpu-types H100=abc", d), "--gpu-types", "H100=abc");
  check_input_error(run(pl + " --gpu-types H100,H100", d), "--gpu-types", "H100,H100");
  check_input_error(run(pl + " --days -3", d), "--days", "-3");
  check_input_error(run(pl + " --screen 1.5", d), "--screen", "1.5");
  check_input_error(run(pl + " --gpus 100", d), "--gpus", "100");
  check_nothing_written(d, 0);
}

TEST_CASE("CLI errors: outputs are all or nothing") {
  const fs::path d = fresh_dir("outputs");
  const std::string sc = "simulate " + kDefault + " --quiet";
  // An unwritable second output: the first is not written either.
  check_input_error(run(sc + " --report r.json --trace /proc/t.json", d), "--trace", "/proc/t.json");
  // An output that is a directory: no NAME.tmp left, exit 2.
  fs::create_directory(d / "dir.json");
  check_input_error(run(sc + " --report dir.json", d), "--report", "dir.json");
  fs::remove(d / "dir.json");
  // The same file twice, under two spellings.
  check_input_error(run(sc + " --report r.json --trace ./r.json", d), "--trace", "r.json");
  // An empty path is an error, not "no output".
  check_input_error(run(sc + " --report \"\"", d), "--report", "\"\"");
  check_input_error(run(sc + " --report missing-dir/r.json", d), "--report", "missing-dir");
  check_nothing_written(d, 0);
}

TEST_CASE("CLI errors: replay with an imported (not measured) profile is an input error") {
  const fs::path d = fresh_dir("replay");
  const std::string tables = std::string(TRAINSIM_SOURCE_DIR) + "/data/calibration/h800-published-tables.json";
  REQUIRE(run("calibrate --import " + tables + " --out in-profile.json", d).code == 0);
  const Run r = run("replay " + std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/cpu-mini-moe.json --calibration in-profile.json", d);
  check_input_error(r, "in-profile.json", "/device");
  check_nothing_written(d, 1);
}
}
