// Tests of `trainsim schedule` (app/schedule_study.hpp): the study API and the
// CLI subcommand.
//
// Op notation (the same as tests/schedule/dualpipe_reference_order.txt):
//   F3a   forward of micro-batch 3, direction 0 ("a") or 1 ("b")
//   B3a   input-only backward, W3a deferred weight backward, BW3a full backward
//   F3a+BW1b  an overlapped forward/backward pair (op FB)
//   @s    the stage, when a rank holds several (interleaved, DualPipeV)
#include <doctest/doctest.h>

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "trainsim/app/schedule_study.hpp"
#include "trainsim/model/pipeline_exec.hpp"

using namespace trainsim;
using app::StudyParams;
using model::ScheduleKind;
using Json = nlohmann::json;

namespace {

StudyParams params(ScheduleKind kind, int ranks, int m) {
  StudyParams p;
  p.kind = kind;
  p.ranks = ranks;
  p.microbatches = m;
  return p;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto pos = text.find(what); pos != std::string::npos; pos = text.find(what, pos + what.size())) ++n;
  return n;
}

// The message run_study throws for `p` ("" when it does not throw).
std::string error_of(const StudyParams& p) {
  try {
    (void)app::run_study(p);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "";
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int run_cli(const std::string& args, const std::filesystem::path& out, const std::filesystem::path& err) {
  const std::string cmd =
      std::string(TRAINSIM_BINARY_DIR) + "/trainsim " + args + " >" + out.string() + " 2>" + err.string();
  const int status = std::system(cmd.c_str());
  REQUIRE(status != -1);
  return WEXITSTATUS(status);
}

// Checks shared by every kind: the JSON is consistent with the execution.
void check_consistent(const app::StudyResult& r) {
  const Json j = app::study_json(r);
  for (const char* k :
       {"kind", "ranks", "stages", "microbatches", "virtual_stages", "durations", "makespan", "bubble_per_rank",
        "busy_per_rank", "peak_activations_per_rank", "peak_deferred_weight_per_rank", "formula", "ranks_ops"})
    CHECK_MESSAGE(j.contains(k), k);
  for (const char* k : {"f", "b", "w", "fb", "p2p"}) CHECK_MESSAGE(j["durations"].contains(k), k);
  for (const char* k : {"name", "bubble", "note"}) CHECK_MESSAGE(j["formula"].contains(k), k);
  const int ranks = j["ranks"].get<int>();
  REQUIRE(j["bubble_per_rank"].size() == static_cast<std::size_t>(ranks));
  REQUIRE(j["busy_per_rank"].size() == static_cast<std::size_t>(ranks));
  REQUIRE(j["peak_activations_per_rank"].size() == static_cast<std::size_t>(ranks));
  REQUIRE(j["ranks_ops"].size() == static_cast<std::size_t>(ranks));
  const double makespan = j["makespan"].get<double>();
  const auto& d = j["durations"];
  for (int k = 0; k < ranks; ++k) {
    const auto& ops = j["ranks_ops"][static_cast<std::size_t>(k)];
    CHECK(ops.size() == r.schedule.per_rank[static_cast<std::size_t>(k)].size());
    double busy = 0.0, prev_end = 0.0;
    for (const auto& op : ops) {
      const std::string type = op["type"].get<std::string>();
      const double len = op["end"].get<double>() - op["start"].get<double>();
      const double want = type == "F"    ? d["f"].get<double>()
                          : type == "BW" ? d["b"].get<double>()
                          : type == "B"  ? d["b"].get<double>() - d["w"].get<double>()
                          : type == "W"  ? d["w"].get<double>()
                                         : d["fb"].get<double>();
      CHECK(len == doctest::Approx(want));
      CHECK(op["start"].get<double>() >= prev_end - 1e-9);  // in order, one at a time
      prev_end = op["end"].get<double>();
      busy += len;
      if (type == "FB") {
        CHECK(op.contains("forward"));
        CHECK(op.contains("backward"));
      } else {
        CHECK(op.contains("microbatch"));
        CHECK(op.contains("direction"));
        CHECK(op.contains("stage"));
      }
      CHECK(op.contains("phase"));
      CHECK(op.contains("text"));
    }
    CHECK(prev_end <= makespan + 1e-9);
    const double b = j["busy_per_rank"][static_cast<std::size_t>(k)].get<double>();
    CHECK(b == doctest::Approx(busy));
    CHECK(b + j["bubble_per_rank"][static_cast<std::size_t>(k)].get<double>() == doctest::Approx(makespan));
  }
  CHECK(model::check_invariants(r.schedule, r.exec).empty());
}

double max_bubble(const app::StudyResult& r) {
  double m = 0.0;
  for (const auto& t : r.exec.bubble_per_rank) m = std::max(m, t.to_ms());
  return m;
}

}  // namespace

TEST_SUITE("golden") {
// DualPipe, 8 ranks, 20 micro-batches: the schedule of the published figure
// (deepseek-ai/DualPipe images/dualpipe.png). Each line equals the one the
// reference implementation produced (tests/schedule/dualpipe_reference_order.txt,
// "8 20 r", from dualpipe/dualpipe.py @ 3da1bbe run with recorders).
TEST_CASE("schedule study: DualPipe 8 ranks x 20 micro-batches, the op sequence of every rank") {
  const auto r = app::run_study(params(ScheduleKind::DualPipe, 8, 20));
  const std::vector<std::string> want = {
      "F0a F1a F2a F3a F4a F5a F6a F0b B0b W0b F1b B1b W1b F2b B2b W2b F3b F7a+BW3b F4b+BW0a F8a+BW4b F5b+BW1a "
      "F9a+BW5b F6b+BW2a BW6b F7b+BW3a BW7b F8b+BW4a BW8b F9b+BW5a BW9b B6a W6a B7a W7a B8a W8a B9a W9a",
      "F0a F1a F2a F3a F4a F0b F5a F1b B0b W0b F2b B1b W1b F3b F6a+BW2b F4b+BW0a F7a+BW3b F5b+BW1a F8a+BW4b "
      "F6b+BW2a F9a+BW5b F7b+BW3a BW6b F8b+BW4a BW7b F9b+BW5a BW8b BW6a B9b B7a W9b B8a W7a B9a W8a W9a",
      "F0a F1a F2a F0b F3a F1b F4a F2b B0b W0b F3b F5a+BW1b F4b+BW0a F6a+BW2b F5b+BW1a F7a+BW3b F6b+BW2a "
      "F8a+BW4b F7b+BW3a F9a+BW5b F8b+BW4a BW6b F9b+BW5a BW7b BW6a BW8b B7a B9b B8a W7a B9a W9b W8a W9a",
      "F0a F0b F1a F1b F2a F2b F3a F3b F4a BW0b F4b+BW0a F5a+BW1b F5b+BW1a F6a+BW2b F6b+BW2a F7a+BW3b F7b+BW3a "
      "F8a+BW4b F8b+BW4a F9a+BW5b F9b+BW5a BW6b BW6a BW7b BW7a B8b B8a B9b B9a W8b W8a W9b W9a",
      "F0b F0a F1b F1a F2b F2a F3b F3a F4b BW0a F4a+BW0b F5b+BW1a F5a+BW1b F6b+BW2a F6a+BW2b F7b+BW3a F7a+BW3b "
      "F8b+BW4a F8a+BW4b F9b+BW5a F9a+BW5b BW6a BW6b BW7a BW7b B8a B8b B9a B9b W8a W8b W9a W9b",
      "F0b F1b F2b F0a F3b F1a F4b F2a B0a W0a F3a F5b+BW1a F4a+BW0b F6b+BW2a F5a+BW1b F7b+BW3a F6a+BW2b "
      "F8b+BW4a F7a+BW3b F9b+BW5a F8a+BW4b BW6a F9a+BW5b BW7a BW6b BW8a B7b B9a B8b W7b B9b W9a W8b W9b",
      "F0b F1b F2b F3b F4b F0a F5b F1a B0a W0a F2a B1a W1a F3a F6b+BW2a F4a+BW0b F7b+BW3a F5a+BW1b F8b+BW4a "
      "F6a+BW2b F9b+BW5a F7a+BW3b BW6a F8a+BW4b BW7a F9a+BW5b BW8a BW6b B9a B7b W9a B8b W7b B9b W8b W9b",
      "F0b F1b F2b F3b F4b F5b F6b F0a B0a W0a F1a B1a W1a F2a B2a W2a F3a F7b+BW3a F4a+BW0b F8b+BW4a F5a+BW1b "
      "F9b+BW5a F6a+BW2b BW6a F7a+BW3b BW7a F8a+BW4b BW8a F9a+BW5b BW9a B6b W6b B7b W7b B8b W8b B9b W9b",
  };
  REQUIRE(r.schedule.ranks == 8);
  for (int k = 0; k < 8; ++k) {
    CAPTURE(k);
    CHECK(app::rank_sequence(r.schedule, k) == want[static_cast<std::size_t>(k)]);
  }
  // The same lines as the reference trace file.
  std::ifstream in(TRAINSIM_SOURCE_DIR "/tests/schedule/dualpipe_reference_order.txt");
  REQUIRE(in.good());
  std::string line;
  int found = 0;
  while (std::getline(in, line)) {
    for (int k = 0; k < 8; ++k) {
      const std::string prefix = fmt::format("8 20 {}: ", k);
      if (line.rfind(prefix, 0) == 0) {
        CHECK(line.substr(prefix.size()) == want[static_cast<std::size_t>(k)]);
        ++found;
      }
    }
  }
  CHECK(found == 8);
  // The text output carries the same lines.
  const std::string text = app::study_text(r);
  for (int k = 0; k < 8; ++k)
    CHECK(text.find(fmt::format("rank {}: {}\n", k, want[static_cast<std::size_t>(k)])) !=
          std::string::npos);
}
}

TEST_SUITE("unit") {
TEST_CASE("schedule study: kind names parse and round-trip; unknown names do not") {
  for (const char* n : {"gpipe", "1f1b", "interleaved", "zb1p", "dualpipe", "dualpipev"}) {
    const auto k = app::parse_schedule_kind(n);
    REQUIRE(k.has_value());
    CHECK(std::string(app::schedule_kind_cli_name(*k)) == n);
  }
  CHECK(app::parse_schedule_kind("DualPipe") == ScheduleKind::DualPipe);
  CHECK(app::parse_schedule_kind("ZB-H1") == ScheduleKind::ZB1P);
  CHECK_FALSE(app::parse_schedule_kind("dualpipe2").has_value());
  CHECK_FALSE(app::parse_schedule_kind("").has_value());
  CHECK(app::schedule_kind_cli_names() == "gpipe, 1f1b, interleaved, zb1p, dualpipe, dualpipev");
}

TEST_CASE("schedule study: 1F1B JSON is consistent and its bubble equals (PP-1)(F+B) with zero p2p") {
  for (int pp : {1, 2, 4, 8}) {
    for (int m : {1, pp, 3 * pp + 1}) {
      CAPTURE(pp);
      CAPTURE(m);
      StudyParams p = params(ScheduleKind::OneFOneB, pp, m);
      p.f = 1.25;
      p.b = 2.5;
      p.w = 0.75;
      const auto r = app::run_study(p);
      check_consistent(r);
      const Json j = app::study_json(r);
      CHECK(j["kind"] == "1f1b");
      CHECK(j["stages"] == pp);
      CHECK(j["virtual_stages"] == 1);
      CHECK(j["formula"]["name"] == "(PP-1)(F+B)");
      const double formula = j["formula"]["bubble"].get<double>();
      CHECK(formula == doctest::Approx((pp - 1) * 3.75));
      for (const auto& b : j["bubble_per_rank"]) CHECK(b.get<double>() == doctest::Approx(formula));
      CHECK(j["makespan"].get<double>() == doctest::Approx((m + pp - 1) * 3.75));
      // 1F1B holds min(PP - r, m) micro-batches on rank r.
      CHECK(j["peak_activations_per_rank"][0].get<int>() == std::min(pp, m));
    }
  }
}

TEST_CASE("schedule study: p2p adds transfer time; fb defaults to f + b") {
  StudyParams p = params(ScheduleKind::OneFOneB, 4, 1);
  const auto base = app::run_study(p);
  CHECK(base.params.fb.has_value());
  CHECK(*base.params.fb == doctest::Approx(3.0));
  p.p2p = 0.5;
  const auto one = app::run_study(p);
  check_consistent(one);
  // One micro-batch's round trip crosses 2(PP-1) links.
  CHECK(one.exec.makespan.to_ms() == doctest::Approx(base.exec.makespan.to_ms() + 2 * 3 * 0.5));
  p.microbatches = 8;
  const auto r = app::run_study(p);
  check_consistent(r);
  CHECK(max_bubble(r) > *r.formula.bubble);
  CHECK(r.formula.note.find("--p2p") != std::string::npos);
}

TEST_CASE("schedule study: DualPipe, formula vs simulated bubble (equal when B-W = F, not otherwise)") {
  // B - W = F: the largest per-rank bubble is the published
  // (PP/2-1)(F&B+B-3W), i.e. 3 x (2.5 + 2 - 3) = 4.5 for PP = 8.
  StudyParams p = params(ScheduleKind::DualPipe, 8, 20);
  p.f = 1;
  p.b = 2;
  p.w = 1;
  p.fb = 2.5;
  const auto r = app::run_study(p);
  check_consistent(r);
  CHECK(r.formula.name == "(PP/2-1)(F&B+B-3W)");
  CHECK(*r.formula.bubble == doctest::Approx(4.5));
  CHECK(max_bubble(r) == doctest::Approx(4.5));
  CHECK(r.formula.note.find("so it applies") != std::string::npos);
  const Json j = app::study_json(r);
  CHECK(j["kind"] == "dualpipe");
  CHECK(j["durations"]["fb"].get<double>() == doctest::Approx(2.5));
  // DualPipe holds PP+1 micro-batch chunks on every rank.
  for (const auto& a : j["peak_activations_per_rank"]) CHECK(a.get<int>() == 9);
  // An FB op in the JSON names both chunks.
  bool saw_fb = false;
  for (const auto& op : j["ranks_ops"][0])
    if (op["type"] == "FB") {
      saw_fb = true;
      CHECK(op["forward"]["direction"].get<int>() != op["backward"]["direction"].get<int>());
    }
  CHECK(saw_fb);

  // B - W = 2 != F = 1: the formula (9) is not what the schedule does (8).
  p.b = 3;
  p.fb = 3;
  const auto r2 = app::run_study(p);
  check_consistent(r2);
  CHECK(*r2.formula.bubble == doctest::Approx(9.0));
  CHECK(max_bubble(r2) == doctest::Approx(8.0));
  CHECK(r2.formula.note.find("does not") != std::string::npos);
}

TEST_CASE("schedule study: the other kinds run, stay consistent and meet their formulas") {
  struct Case {
    ScheduleKind kind;
    int ranks, m, v;
  };
  for (const Case& c : {Case{ScheduleKind::GPipe, 4, 8, 0}, Case{ScheduleKind::Interleaved, 4, 8, 0},
                        Case{ScheduleKind::Interleaved, 4, 12, 3}, Case{ScheduleKind::ZB1P, 4, 8, 0},
                        Case{ScheduleKind::DualPipeV, 4, 8, 0}, Case{ScheduleKind::DualPipeV, 4, 20, 0}}) {
    CAPTURE(app::schedule_kind_cli_name(c.kind));
    CAPTURE(c.m);
    StudyParams p = params(c.kind, c.ranks, c.m);
    p.virtual_stages = c.v;
    const auto r = app::run_study(p);
    check_consistent(r);
    REQUIRE(r.formula.bubble.has_value());
    const Json j = app::study_json(r);
    CHECK(j["kind"] == app::schedule_kind_cli_name(c.kind));
    // Default durations f=1, b=2, w=1 (so B-W = F), fb = 3, zero p2p: every
    // published formula holds, as the largest per-rank bubble.
    CHECK(max_bubble(r) == doctest::Approx(*r.formula.bubble));
    if (c.kind == ScheduleKind::Interleaved) {
      CHECK(j["virtual_stages"] == (c.v == 0 ? 2 : c.v));
      CHECK(j["stages"] == 4 * j["virtual_stages"].get<int>());
      CHECK(app::rank_sequence(r.schedule, 0).find('@') != std::string::npos);
    }
    if (c.kind == ScheduleKind::DualPipeV) CHECK(j["stages"] == 8);
    // Every kind draws.
    const std::string svg = app::study_svg(r);
    std::size_t ops = 0;
    for (const auto& v : r.schedule.per_rank) ops += v.size();
    CHECK(count(svg, "class=\"op\"") == ops);
  }
}

TEST_CASE("schedule study: SVG has a rect per op plus the legend, the micro-batch numbers, and is deterministic") {
  StudyParams p = params(ScheduleKind::DualPipe, 8, 20);
  p.fb = 2.5;
  const auto r = app::run_study(p);
  const std::string svg = app::study_svg(r);
  CHECK(svg.rfind("<svg ", 0) == 0);
  CHECK(svg.find("</svg>\n") == svg.size() - 7);
  std::size_t ops = 0, fbs = 0;
  for (const auto& v : r.schedule.per_rank)
    for (const auto& op : v) {
      ++ops;
      if (op.type == model::ChunkOpType::FB) ++fbs;
    }
  CHECK(count(svg, "class=\"op\"") == ops);
  CHECK(count(svg, "class=\"fb-forward\"") == fbs);
  // Legend: F, BW, B, W with two shades each; FB with two two-part swatches.
  CHECK(count(svg, "class=\"legend-swatch\"") == 4 * 2 + 2 * 2);
  // Every rect: ops, FB forward halves, legend swatches, background, frame.
  CHECK(count(svg, "<rect ") == ops + fbs + 12 + 2);
  // One text per chunk: F, B, W, BW have one, FB two.
  CHECK(count(svg, "text-anchor=\"middle\" stroke=\"none\"") == ops + fbs);
  for (int mb = 0; mb < 10; ++mb) CHECK(svg.find(fmt::format(">{}</text>", mb)) != std::string::npos);
  for (int k = 0; k < 8; ++k) CHECK(svg.find(fmt::format(">Device {}</text>", k)) != std::string::npos);
  for (const char* name : {"Forward", "Backward", "Backward for input", "Backward for weights",
                           "Overlapped forward &amp; backward"})
    CHECK(svg.find(fmt::format(">{}</text>", name)) != std::string::npos);
  // Direction 1 is drawn in a deeper shade with white numbers.
  CHECK(svg.find("fill=\"#ffffff\">") != std::string::npos);
  CHECK(svg == app::study_svg(app::run_study(p)));
  // 1F1B has one direction: only the light shades, only F and BW in the legend.
  const std::string one = app::study_svg(app::run_study(params(ScheduleKind::OneFOneB, 4, 8)));
  CHECK(count(one, "class=\"legend-swatch\"") == 2);
  CHECK(count(one, "class=\"op\"") == 4 * 16);
}

TEST_CASE("schedule study: bad parameters give a clear message") {
  auto p = params(ScheduleKind::OneFOneB, 0, 8);
  CHECK(error_of(p).find("--ranks must be >= 1") != std::string::npos);
  p = params(ScheduleKind::OneFOneB, 4, 0);
  CHECK(error_of(p).find("--microbatches must be >= 1") != std::string::npos);
  p = params(ScheduleKind::DualPipe, 3, 8);  // odd ranks
  CHECK(error_of(p).find("DualPipe") != std::string::npos);
  p = params(ScheduleKind::DualPipe, 8, 10);  // fewer than 2 x ranks micro-batches
  CHECK_FALSE(error_of(p).empty());
  p = params(ScheduleKind::OneFOneB, 4, 8);
  p.f = -1;
  CHECK(error_of(p).find("--f must be a finite number >= 0") != std::string::npos);
  p = params(ScheduleKind::OneFOneB, 4, 8);
  p.fb = -0.5;
  CHECK(error_of(p).find("--fb") != std::string::npos);
  p = params(ScheduleKind::OneFOneB, 4, 8);
  p.p2p = -0.5;
  CHECK(error_of(p).find("--p2p") != std::string::npos);
  p = params(ScheduleKind::OneFOneB, 4, 8);
  p.w = 3;
  CHECK(error_of(p).find("must be >= --w") != std::string::npos);
  p = params(ScheduleKind::OneFOneB, 4, 8);
  p.virtual_stages = 2;
  CHECK(error_of(p).find("interleaved schedule only") != std::string::npos);
  p = params(ScheduleKind::Interleaved, 4, 6);  // micro-batches not a multiple of ranks
  CHECK_FALSE(error_of(p).empty());
  p = params(ScheduleKind::OneFOneB, 100000, 8);
  CHECK(error_of(p).find("too large") != std::string::npos);
  p = params(ScheduleKind::OneFOneB, 4, 8);
  CHECK(error_of(p).empty());
}

TEST_CASE("CLI: trainsim schedule --json parses; bad arguments exit 2 and write nothing") {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(TRAINSIM_BINARY_DIR) / "cli-schedule-test";
  fs::create_directories(dir);
  const fs::path out = dir / "out.txt", err = dir / "err.txt", svg = dir / "dp.svg";
  fs::remove(svg);
  CHECK(run_cli("schedule --kind dualpipe --ranks 8 --microbatches 20 --f 1 --b 2 --w 1 --fb 2.5 --json --svg " +
                    svg.string(),
                out, err) == 0);
  const Json j = Json::parse(read_file(out));
  CHECK(j["kind"] == "dualpipe");
  CHECK(j["ranks"] == 8);
  CHECK(j["microbatches"] == 20);
  CHECK(j["formula"]["bubble"].get<double>() == doctest::Approx(4.5));
  CHECK(j["ranks_ops"][0][0]["text"] == "F0a");
  CHECK(fs::exists(svg));
  CHECK_FALSE(fs::exists(svg.string() + ".tmp"));
  CHECK(read_file(svg) == app::study_svg([] {
          StudyParams p = params(ScheduleKind::DualPipe, 8, 20);
          p.fb = 2.5;
          return app::run_study(p);
        }()));

  // Text summary by default.
  CHECK(run_cli("schedule --kind 1f1b --ranks 4 --microbatches 8", out, err) == 0);
  CHECK(read_file(out).find("makespan: 33\n") != std::string::npos);

  const fs::path svg2 = dir / "never.svg";
  fs::remove(svg2);
  CHECK(run_cli("schedule --kind pipedream --ranks 4 --microbatches 8 --svg " + svg2.string(), out, err) == 2);
  std::string msg = read_file(err);
  CHECK(msg.find("--kind: got \"pipedream\"; expected one of") != std::string::npos);
  CHECK(count(msg, "\n") == 1);
  CHECK(read_file(out).empty());
  CHECK(run_cli("schedule --kind dualpipe --ranks 8 --microbatches 9 --svg " + svg2.string(), out, err) == 2);
  msg = read_file(err);
  CHECK(msg.rfind("trainsim: error: ", 0) == 0);
  CHECK(count(msg, "\n") == 1);
  CHECK(run_cli("schedule --kind 1f1b --ranks 4 --microbatches 8 --b 1 --w 2 --svg " + svg2.string(), out, err) ==
        2);
  CHECK(read_file(err).find("--w") != std::string::npos);
  CHECK_FALSE(fs::exists(svg2));
}
}
