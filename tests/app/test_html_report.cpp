// The HTML page of `trainsim simulate --html`: self-contained, its charts
// present, drawn from the simulation, its numbers the report's, and the same
// bytes for the same input. (The page rendered in a real browser is
// tests/browser/check_page.sh.)
#include <doctest/doctest.h>

#include <fmt/format.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "trainsim/app/html_report.hpp"
#include "trainsim/app/report.hpp"
#include "trainsim/app/scenario.hpp"
#include "trainsim/common/json_reader.hpp"

using namespace trainsim;

namespace {

std::size_t count(const std::string& s, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = s.find(what); at != std::string::npos; at = s.find(what, at + what.size())) ++n;
  return n;
}

// DeepSeek-V3's default scenario with 32 micro-batches per step instead of
// 120 (global batch 4096 over dp 128), to keep the test quick; still DualPipe
// over 16 ranks with every kind of op and flow.
app::Simulation small_v3(bool record) {
  Json j = parse_json_file(std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/deepseek-v3-pretrain.json");
  j["training"]["global_batch_size"] = 4096;
  app::SimulateOptions opt;
  opt.record = record;
  return app::simulate(app::parse_scenario(j, "v3-small.json"), opt);
}

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("simulate --html page: self-contained, charts present, numbers from the report") {
  const app::Simulation sim = small_v3(true);
  const Json r = app::make_report(sim);
  const std::string page = app::simulate_html(r, sim);
  // Self-contained: no script, no stylesheet or font link, no fetched URL.
  // Links only to anchors of the page itself.
  CHECK(page.find("<script") == std::string::npos);
  CHECK(page.find("<link") == std::string::npos);
  CHECK(page.find("@import") == std::string::npos);
  CHECK(page.find("src=") == std::string::npos);
  CHECK(count(page, "href=") == count(page, "href=\"#"));
  CHECK(count(page, "url(") == count(page, "url(#"));
  // The three charts and the tables.
  for (const char* id : {"id=\"timeline\"", "id=\"breakdown\"", "id=\"memory\"", "class=\"cost-table\"",
                         "class=\"ops-table\"", "class=\"calibration-table\"", "id=\"assumptions-section\""})
    CHECK_MESSAGE(page.find(id) != std::string::npos, id);
  // One drawn op per executed schedule op, one idle band and one memory bar per rank.
  std::size_t ops = 0;
  for (const auto& rank : sim.step.exec.timeline) ops += rank.size();
  CHECK(count(page, "<g class=\"op op-") == ops);
  CHECK(count(page, "<rect class=\"idle\"") == 16);
  CHECK(count(page, "class=\"bar-part part-0\"") == 16 + 1);  // memory activations per rank + compute
  CHECK(count(page, "class=\"fb-forward\"") == count(page, "class=\"op op-FB\""));
  CHECK(count(page, "class=\"op op-FB\"") > 0);
  // Recorded flows: pipeline transfers and collectives on every rank's lanes.
  CHECK(page.find("class=\"flow flow-p2p") != std::string::npos);
  CHECK(page.find("class=\"flow flow-ep-dispatch") != std::string::npos);
  CHECK(page.find("class=\"tail part-7\"") != std::string::npos);
  // Numbers are the report's, formatted: step time to 3 decimals, every
  // rank's memory total to 1, the whole-run cost in whole dollars.
  CHECK(page.find(fmt::format("{:.3f} s", r["step_time_s"].get<double>())) != std::string::npos);
  for (const auto& pr : r["memory"]["per_rank"])
    CHECK(page.find(fmt::format("{:.1f} GiB, ", pr["total_gib"].get<double>())) != std::string::npos);
  const double cost = r["total_cost_usd"].get<double>();
  CHECK(page.find(fmt::format("{:.2f}M", cost / 1e6)) != std::string::npos);
  // Deterministic.
  CHECK(app::simulate_html(r, sim) == page);
}

TEST_CASE("simulate --html page: without recorded kernels the timeline still has every op") {
  const app::Simulation sim = small_v3(false);
  const Json r = app::make_report(sim);
  const std::string page = app::simulate_html(r, sim);
  std::size_t ops = 0;
  for (const auto& rank : sim.step.exec.timeline) ops += rank.size();
  CHECK(count(page, "<g class=\"op op-") == ops);
  CHECK(page.find("class=\"flow ") == std::string::npos);
  CHECK(page.find("drawn only from a recorded simulation") != std::string::npos);
}

TEST_CASE("html building blocks: tables escape nothing themselves, bars scale to the chart") {
  const std::string t = app::html_table({"a", "b"}, {{"x", "1"}}, {false, true}, "t");
  CHECK(t.find("<table class=\"t\">") == 0);
  CHECK(t.find("<td class=\"n\">1</td>") != std::string::npos);
  app::BarChart c{.id = "c", .rows = {}, .scale_max = 10, .marker = 5, .marker_text = "half", .unit = "u"};
  c.rows.push_back({"row", {{"p", 5, "5 u", "part-0"}, {"q", 5, "5 u", "part-1"}}, "10 u"});
  const std::string svg = app::stacked_bar_svg(c);
  CHECK(count(svg, "class=\"bar-part") == 2);
  // Layout: bars from x = 150 to 1000 - 200 = 800, so 5 of 10 is 325 wide.
  CHECK(svg.find("width=\"325.00\"") != std::string::npos);
  CHECK(svg.find(">half</text>") != std::string::npos);
}
}

namespace {

// Exit code of `trainsim simulate cpu-mini-moe.json --quiet ARGS` (-1: not run).
int simulate_cli(const std::string& args) {
  const std::string cmd = std::string(TRAINSIM_BINARY_DIR) + "/trainsim simulate " + TRAINSIM_SOURCE_DIR +
                          "/scenarios/cpu-mini-moe.json --quiet " + args + " 2>/dev/null";
  const int status = std::system(cmd.c_str());
  return status == -1 ? -1 : WEXITSTATUS(status);
}

}  // namespace

TEST_SUITE("golden") {
TEST_CASE("CLI: simulate --html writes one page; an unwritable path exits 2 and writes nothing") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(TRAINSIM_BINARY_DIR) / "cli-test-html";
  fs::create_directories(dir);
  const fs::path page = dir / "mini.html", rep = dir / "mini.json";
  fs::remove(page);
  CHECK(simulate_cli("--html " + page.string() + " --report " + rep.string()) == 0);
  std::stringstream text;
  text << std::ifstream(page).rdbuf();
  CHECK(text.str().rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(text.str().find("id=\"timeline\"") != std::string::npos);
  CHECK(parse_json_file(rep.string())["schema_version"] == app::kReportSchemaVersion);
  // A directory that does not exist: exit 2 before simulating, no report either.
  fs::remove(rep);
  CHECK(simulate_cli("--report " + rep.string() + " --html " + (dir / "missing" / "x.html").string()) == 2);
  CHECK_FALSE(fs::exists(rep));
}
}
