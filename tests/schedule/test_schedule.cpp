// Tests of the pipeline schedule generators (model/schedule.hpp) and of their
// execution on the event engine (model/pipeline_exec.hpp).
//
// Notation of the golden strings: see schedule_test_support.hpp.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "trainsim/model/pipeline_exec.hpp"
#include "trainsim/model/schedule.hpp"
#include "trainsim/sim/engine.hpp"

#include "schedule_test_support.hpp"

using trainsim::Time;
using namespace trainsim::model;
using namespace schedule_test;

TEST_SUITE("unit") {

TEST_CASE("1F1B: phases are warm-up pp-r-1 forwards, steady F/BW pairs, cool-down backwards") {
  const Schedule s = make_schedule(ScheduleKind::OneFOneB, 4, 8);
  CHECK(s.ranks == 4);
  CHECK(s.stages == 4);
  CHECK(s.microbatches == 8);
  CHECK(sequence(s, 0) == "F0a F1a F2a F3a BW0a F4a BW1a F5a BW2a F6a BW3a F7a BW4a BW5a BW6a BW7a");
  CHECK(sequence(s, 3) == "F0a BW0a F1a BW1a F2a BW2a F3a BW3a F4a BW4a F5a BW5a F6a BW6a F7a BW7a");
  for (int r = 0; r < 4; ++r) {
    std::map<std::string, int> per_phase;
    for (const auto& op : s.per_rank[static_cast<std::size_t>(r)]) {
      ++per_phase[op.phase];
      if (op.type == ChunkOpType::F) CHECK(op.fwd.stage == r);
      if (op.type == ChunkOpType::BW) CHECK(op.bwd.stage == r);
    }
    CHECK(per_phase["warmup"] == 4 - r - 1);        // pp - r - 1 forwards
    CHECK(per_phase["steady"] == 2 * (8 - (4 - r - 1)));  // (m - warmup) pairs
    CHECK(per_phase["cooldown"] == 4 - r - 1);      // as many backwards
  }
  // Fewer micro-batches than stages: the warm-up is cut to m.
  const Schedule few = make_schedule(ScheduleKind::OneFOneB, 4, 2);
  CHECK(sequence(few, 0) == "F0a F1a BW0a BW1a");
  CHECK(sequence(few, 3) == "F0a BW0a F1a BW1a");
}

TEST_CASE("1F1B: bubble of every rank is (PP-1)(F+B), makespan (m+PP-1)(F+B)") {
  // Zero transfer time, F = 3 us, B (full backward) = 7 us. The first
  // micro-batch needs (PP-1)F to reach the last rank and its gradient needs
  // (PP-1)B to come back, and each rank does m(F+B) of work: so every rank
  // idles (PP-1)(F+B) and the step takes (m+PP-1)(F+B). This holds for m < PP
  // too (the last micro-batch's gradient reaches rank 0 at (PP-1)F + m(F+B)
  // + (PP-1)B).
  const Durations d{Time::us(3), Time::us(7), Time::zero(), Time::zero()};
  for (int pp : {1, 2, 3, 4, 8, 16}) {
    for (int m : {1, pp, 2 * pp + 1, 120}) {
      CAPTURE(pp);
      CAPTURE(m);
      const Schedule s = make_schedule(ScheduleKind::OneFOneB, pp, m);
      const ExecResult r = execute(s, costs_of(d));
      CHECK(r.makespan == Time::us(10) * (m + pp - 1));
      for (int k = 0; k < pp; ++k) {
        CHECK(r.busy_per_rank[static_cast<std::size_t>(k)] == Time::us(10) * m);
        CHECK(r.bubble_per_rank[static_cast<std::size_t>(k)] == Time::us(10) * (pp - 1));
      }
    }
  }
}

TEST_CASE("1F1B: transfers add 2(PP-1) hops to a single micro-batch; p2p sees the right edges") {
  // One micro-batch: PP forwards and PP backwards in a chain with a transfer
  // between each neighbouring pair: PP(F+B) + 2(PP-1)c.
  const Durations d{Time::us(3), Time::us(7), Time::zero(), Time::zero()};
  const int pp = 5;
  const Time c = Time::us(2);
  ExecCosts costs = costs_of(d);
  std::vector<std::string> edges;
  costs.p2p = [&](int from, int to, bool forward) {
    edges.push_back(fmt::format("{}{}{}", from, forward ? '>' : '<', to));
    return c;
  };
  const Schedule s = make_schedule(ScheduleKind::OneFOneB, pp, 1);
  const ExecResult r = execute(s, costs);
  CHECK(r.makespan == Time::us(10) * pp + c * (2 * (pp - 1)));
  CHECK(join(edges) == "0>1\n1>2\n2>3\n3>4\n4<3\n3<2\n2<1\n1<0\n");
  CHECK(check_invariants(s, r).empty());
}

TEST_CASE("DualPipe: golden op order of PP=4, 8 micro-batches matches the reference code") {
  // Verified against deepseek-ai/DualPipe dualpipe/dualpipe.py @ 3da1bbe by
  // running its step() with recorders (dualpipe_reference_trace.py). Rank 0:
  // nF0 = 2 forwards, nF0F1 = 1 pair, nB1W1F1 = 1 zero-bubble triple, main
  // loop 2 iterations (F0B1 then F1B0, i.e. FB pairs), nB1F1B0 = 1,
  // nB1B0 = 1 pair (the B0 split into B/W), nWB0 = 1, nW = 1.
  const Schedule s = make_schedule(ScheduleKind::DualPipe, 4, 8);
  CHECK(sequence(s, 0) ==
        "F0a F1a F2a F0b B0b W0b F1b F3a+BW1b F2b+BW0a BW2b F3b+BW1a BW3b B2a W2a B3a W3a");
  CHECK(sequence(s, 3) ==
        "F0b F1b F2b F0a B0a W0a F1a F3b+BW1a F2a+BW0b BW2a F3a+BW1b BW3a B2b W2b B3b W3b");
  // Rank 1 is a middle rank: its first main-loop pair is not overlapped.
  CHECK(sequence(s, 1) ==
        "F0a F0b F1a F1b F2a BW0b F2b+BW0a F3a+BW1b F3b+BW1a BW2b BW2a B3b B3a W3b W3a");
  std::vector<std::string> phases;
  for (const auto& op : s.per_rank[0])
    if (phases.empty() || phases.back() != op.phase) phases.push_back(op.phase);
  CHECK(join(phases) ==
        "warmup\ninterleaved_warmup\nzero_bubble_warmup\nmain_fb\ndrain_b1_f1b0\ndrain_b1_b0\n"
        "zero_bubble_cooldown\ncooldown\n");
}

TEST_CASE("DualPipe: op order of every rank equals the reference code's, many sizes") {
  CHECK(compare_with_reference(ScheduleKind::DualPipe, TRAINSIM_SOURCE_DIR "/tests/schedule/dualpipe_reference_order.txt") == 92);
}

TEST_CASE("DualPipe: phase lengths are the reference formulas of rank and size") {
  // pp = 8, 20 micro-batches (10 per direction); half_rank h = min(r, 7-r).
  const int pp = 8, m = 20, half = pp / 2, half_chunks = m / 2;
  const Schedule s = make_schedule(ScheduleKind::DualPipe, pp, m);
  for (int r = 0; r < pp; ++r) {
    CAPTURE(r);
    const int h = std::min(r, pp - 1 - r);
    const bool middle = r == half - 1 || r == half;
    std::map<std::string, int> n;
    for (const auto& op : s.per_rank[static_cast<std::size_t>(r)]) ++n[op.phase];
    CHECK(n["warmup"] == 2 * (half - h - 1));                       // nF0
    CHECK(n["interleaved_warmup"] == 2 * (h + 1));                  // nF0F1
    CHECK(n["zero_bubble_warmup"] == 3 * (half - h - 1));           // nB1W1F1
    CHECK(n["main_fb"] == 2 * (half_chunks - pp + h + 1) + (middle ? 1 : 0));  // nF0B1F1B0
    CHECK(n["drain_b1_f1b0"] == 2 * (half - h - 1));                // nB1F1B0
    CHECK(n["drain_b1_b0"] == 2 * (h + 1));                         // nB1B0
    CHECK(n["zero_bubble_cooldown"] == 2 * (half - h - 1));         // nWB0
    CHECK(n["cooldown"] == h + 1);                                  // nW
  }
}

TEST_CASE("DualPipe: stage-to-rank mapping and directions") {
  const Schedule s = make_schedule(ScheduleKind::DualPipe, 6, 12);
  CHECK(s.rank_of(ChunkRef{0, 0, 0}) == 0);
  CHECK(s.rank_of(ChunkRef{5, 0, 0}) == 5);
  CHECK(s.rank_of(ChunkRef{0, 0, 1}) == 5);
  CHECK(s.rank_of(ChunkRef{5, 0, 1}) == 0);
  CHECK(s.rank_of(ChunkRef{2, 3, 1}) == 3);
  CHECK(s.microbatches_per_direction() == 6);
  // Rank 0 starts with direction 0, the last rank with direction 1.
  CHECK(s.per_rank[0].front().fwd == ChunkRef{0, 0, 0});
  CHECK(s.per_rank[5].front().fwd == ChunkRef{0, 0, 1});
  const Schedule one = make_schedule(ScheduleKind::OneFOneB, 6, 12);
  CHECK(one.rank_of(ChunkRef{4, 0, 0}) == 4);
}

TEST_CASE("DualPipe: bubble of the middle ranks is (PP/2-1)(F&B+B-3W) when B-W == F") {
  // F = B_in = 10 us, W = 4 us (so full B = 14 us), F&B = 15 us; the formula
  // term is F&B + B - 3W = 15 + 14 - 12 = 17 us per rank pair.
  // Observed (the table's formula describes the schedule's worst ranks):
  //  * the ranks with half_rank h = min(r, PP-1-r) in {PP/2-2, PP/2-1} (the
  //    four central ranks; all of them for PP = 4) idle exactly the formula;
  //  * a rank with smaller h idles (PP/2-2-h)(F+B-F&B) less: the makespan is
  //    the same, but it runs that many fewer overlapped F&B pairs (its step
  //    4 + step 5 hold 2(H-PP+h+1) + (PP/2-h-1) of them) and so is busier.
  // This needs W <= F&B - F (see the next test).
  for (const Durations d : {Durations{Time::us(10), Time::us(10), Time::us(4), Time::us(15)},
                            Durations{Time::us(10), Time::us(10), Time::us(2), Time::us(20)},
                            Durations{Time::us(10), Time::us(10), Time::us(1), Time::us(24)}}) {
    const Time full_b = d.bw();
    for (int pp : {4, 8, 16}) {
      for (int m : {2 * pp, 20, 120}) {
        if (m < 2 * pp) continue;
        CAPTURE(pp);
        CAPTURE(m);
        CAPTURE(d.fb.to_us());
        const Schedule s = make_schedule(ScheduleKind::DualPipe, pp, m);
        const ExecResult r = execute(s, costs_of(d));
        REQUIRE(check_invariants(s, r).empty());
        const int half = pp / 2;
        const Time formula = (d.fb + full_b - d.w * 3) * (half - 1);
        for (int k = 0; k < pp; ++k) {
          CAPTURE(k);
          const int h = std::min(k, pp - 1 - k);
          const Time less = (d.f + full_b - d.fb) * std::max(0, half - 2 - h);
          CHECK(r.bubble_per_rank[static_cast<std::size_t>(k)] == formula - less);
        }
      }
    }
  }
}

TEST_CASE("DualPipe: a W longer than F&B - F no longer hides; the formula then undercounts") {
  // With F = B_in, each W in the zero-bubble phases fills a gap of F&B - F;
  // observed: the central ranks idle (PP/2-1)(F&B + B_in - 2 min(W, F&B-F)),
  // which is the table's (PP/2-1)(F&B+B-3W) while W <= F&B - F.
  const Time f = Time::us(10);
  for (int w_us : {4, 5, 6, 8, 10}) {
    const Durations d{f, f, Time::us(w_us), Time::us(15)};
    const int pp = 8;
    const Schedule s = make_schedule(ScheduleKind::DualPipe, pp, 40);
    const ExecResult r = execute(s, costs_of(d));
    const Time hidden = min(d.w, d.fb - d.f);
    const Time expected = (d.fb + d.b_in - hidden * 2) * (pp / 2 - 1);
    CAPTURE(w_us);
    CHECK(r.bubble_per_rank[3] == expected);
    CHECK(r.bubble_per_rank[4] == expected);
    if (d.w > d.fb - d.f) CHECK(expected > (d.fb + d.bw() - d.w * 3) * (pp / 2 - 1));
  }
}

TEST_CASE("DualPipe with PP=2 has no bubble when all ops are ready in time") {
  // (PP/2-1) = 0: both ranks are middle ranks and never wait.
  const Durations d{Time::us(10), Time::us(10), Time::us(4), Time::us(15)};
  for (int m : {4, 6, 20}) {
    const ExecResult r = execute(make_schedule(ScheduleKind::DualPipe, 2, m), costs_of(d));
    CHECK(r.bubble_per_rank[0] == Time::zero());
    CHECK(r.bubble_per_rank[1] == Time::zero());
  }
}

TEST_CASE("invariants hold for both schedules across many sizes, with and without transfers") {
  // Uneven costs: rank- and type-dependent, and a transfer delay.
  const ExecCosts uneven = uneven_costs();
  const Durations unit{Time::us(1), Time::us(1), Time::us(1), Time::us(2)};
  const Durations zero{Time::zero(), Time::zero(), Time::zero(), Time::zero()};
  auto run_all = [&](const Schedule& s) {
    for (const ExecCosts& c : {uneven, costs_of(unit), costs_of(zero), costs_of(unit, Time::us(3))}) {
      const ExecResult r = execute(s, c);
      const auto problems = check_invariants(s, r);
      CHECK_MESSAGE(problems.empty(), join(problems));
      for (std::size_t k = 0; k < r.bubble_per_rank.size(); ++k)
        CHECK(r.bubble_per_rank[k] + r.busy_per_rank[k] == r.makespan);
    }
  };
  for (int pp : {1, 2, 3, 4, 8, 16}) {
    for (int m : {1, pp, 2 * pp + 1, 120}) {
      CAPTURE(pp);
      CAPTURE(m);
      run_all(make_schedule(ScheduleKind::OneFOneB, pp, m));
    }
  }
  for (int pp : {2, 4, 6, 8, 16}) {
    for (int m : {2 * pp, 2 * pp + 2, 20, 120}) {
      if (m < 2 * pp) continue;
      CAPTURE(pp);
      CAPTURE(m);
      const Schedule s = make_schedule(ScheduleKind::DualPipe, pp, m);
      run_all(s);
      // Every op is F, B, BW, W or FB; every B has its W later on the rank;
      // and each direction carries half of the micro-batches.
      int forwards[2] = {0, 0};
      for (const auto& ops : s.per_rank)
        for (const auto& op : ops)
          if (op.type == ChunkOpType::F || op.type == ChunkOpType::FB) ++forwards[op.fwd.direction];
      CHECK(forwards[0] == pp * m / 2);
      CHECK(forwards[1] == pp * m / 2);
    }
  }
}

TEST_CASE("check_invariants reports a broken schedule") {
  const Schedule good = make_schedule(ScheduleKind::DualPipe, 4, 8);
  const ExecCosts c = costs_of({Time::us(1), Time::us(1), Time::us(1), Time::us(2)});

  SUBCASE("a missing W") {
    Schedule s = good;
    auto& ops = s.per_rank[0];
    ops.erase(std::find_if(ops.begin(), ops.end(),
                           [](const ScheduleOp& op) { return op.type == ChunkOpType::W; }));
    const auto problems = check_invariants(s, execute(s, c));
    REQUIRE(problems.size() == 1);
    CHECK(problems[0].find("0 weight backwards") != std::string::npos);
  }
  SUBCASE("a W before its B") {
    Schedule s = good;
    auto& ops = s.per_rank[0];
    // "F0a F1a F2a F0b B0b W0b ...": move W0b in front of F0b. The W then
    // waits for its B, which comes later on the same rank: a deadlock.
    std::swap(ops[3], ops[5]);
    CHECK_THROWS_AS(execute(s, c), std::logic_error);
    ExecResult fake;
    fake.timeline.resize(4);
    const auto problems = check_invariants(s, fake);
    CHECK(std::any_of(problems.begin(), problems.end(), [](const std::string& p) {
      return p.find("W is not after its B") != std::string::npos;
    }));
    CHECK(std::any_of(problems.begin(), problems.end(), [](const std::string& p) {
      return p.find("0 of 16 ops executed") != std::string::npos;
    }));
  }
  SUBCASE("an op on the wrong rank, a duplicate forward") {
    Schedule s = good;
    s.per_rank[1].insert(s.per_rank[1].begin(), s.per_rank[0].front());
    ExecResult fake;
    fake.timeline.resize(4);
    const auto problems = check_invariants(s, fake);
    CHECK(std::any_of(problems.begin(), problems.end(), [](const std::string& p) {
      return p.find("belongs to rank 0") != std::string::npos;
    }));
    CHECK(std::any_of(problems.begin(), problems.end(), [](const std::string& p) {
      return p.find("2 forwards") != std::string::npos;
    }));
  }
  SUBCASE("a timeline that breaks a cross-stage dependency") {
    Schedule s = make_schedule(ScheduleKind::OneFOneB, 2, 1);
    ExecResult r = execute(s, c);
    REQUIRE(check_invariants(s, r).empty());
    r.timeline[1][0].start = Time::zero();  // F on stage 1 before stage 0's F ends
    const auto problems = check_invariants(s, r);
    CHECK(std::any_of(problems.begin(), problems.end(), [](const std::string& p) {
      return p.find("forward starts before stage 0 forward ends") != std::string::npos;
    }));
  }
}

TEST_CASE("execute: a deadlock names the stuck rank and op") {
  // Two stages, one micro-batch; rank 1 asks for the backward before the
  // forward, rank 0 then waits for a gradient that never comes.
  Schedule s = make_schedule(ScheduleKind::OneFOneB, 2, 1);
  std::swap(s.per_rank[1][0], s.per_rank[1][1]);
  const ExecCosts c = costs_of({Time::us(1), Time::us(1), Time::us(1), Time::us(2)});
  try {
    (void)execute(s, c);
    FAIL("expected a deadlock");
  } catch (const std::logic_error& e) {
    const std::string what = e.what();
    CHECK(what.find("deadlock") != std::string::npos);
    CHECK(what.find("rank 0 is stuck at op 1 (BW 0/d0/s0") != std::string::npos);
    CHECK(what.find("gradient of micro-batch 0 dir 0 from stage 1") != std::string::npos);
  }
  // A malformed chunk and missing costs are input errors.
  Schedule bad = make_schedule(ScheduleKind::OneFOneB, 2, 1);
  bad.per_rank[0][0].fwd.microbatch = 5;
  CHECK_THROWS_AS(execute(bad, c), std::invalid_argument);
  CHECK_THROWS_AS(execute(make_schedule(ScheduleKind::OneFOneB, 2, 1), ExecCosts{}),
                  std::invalid_argument);
}

TEST_CASE("make_schedule rejects bad sizes with a clear message") {
  CHECK_THROWS_AS(make_schedule(ScheduleKind::OneFOneB, 0, 4), std::invalid_argument);
  CHECK_THROWS_AS(make_schedule(ScheduleKind::OneFOneB, 4, 0), std::invalid_argument);
  CHECK_THROWS_AS(make_schedule(ScheduleKind::DualPipe, 3, 12), std::invalid_argument);
  CHECK_THROWS_AS(make_schedule(ScheduleKind::DualPipe, 0, 12), std::invalid_argument);
  CHECK_THROWS_AS(make_schedule(ScheduleKind::DualPipe, 4, 9), std::invalid_argument);
  CHECK_THROWS_AS(make_schedule(ScheduleKind::DualPipe, 4, 6), std::invalid_argument);
  CHECK_NOTHROW(make_schedule(ScheduleKind::DualPipe, 4, 8));
  CHECK_NOTHROW(make_schedule(ScheduleKind::OneFOneB, 8, 3));
  try {
    (void)make_schedule(ScheduleKind::DualPipe, 4, 6);
    FAIL("expected invalid_argument");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()) ==
          "DualPipe schedule: microbatches=6 must be even and >= 2*ranks=8 "
          "(at least ranks micro-batches per direction)");
  }
}

TEST_CASE("peak activations: 1F1B rank r holds min(PP-r, m); DualPipe holds PP+1") {
  const ExecCosts c = costs_of({Time::us(1), Time::us(1), Time::us(1), Time::us(2)});
  for (int pp : {1, 2, 4, 8, 16}) {
    for (int m : {1, pp, 3 * pp}) {
      const Schedule s = make_schedule(ScheduleKind::OneFOneB, pp, m);
      const ExecResult r = execute(s, c);
      for (int k = 0; k < pp; ++k)
        CHECK(r.peak_activations_per_rank[static_cast<std::size_t>(k)] == std::min(pp - k, m));
      // The published table: the first rank holds PP (when m >= PP).
      if (m >= pp) CHECK(r.peak_activations_per_rank[0] == pp);
    }
  }
  // DualPipe. The executor counts an FB's forward as done before its backward
  // frees its chunk (both are resident while they overlap): every rank then
  // peaks at PP+1, the table's figure. Counted between ops instead (an FB is
  // net zero), the two middle ranks hold PP+1 (their first main-loop pair is
  // a plain F then BW) and the others PP.
  for (int pp : {2, 4, 6, 8, 16}) {
    for (int m : {2 * pp, 120}) {
      CAPTURE(pp);
      CAPTURE(m);
      const Schedule s = make_schedule(ScheduleKind::DualPipe, pp, m);
      const ExecResult r = execute(s, c);
      const std::vector<int> between = peaks_between_ops(s);
      for (int k = 0; k < pp; ++k) {
        const bool middle = k == pp / 2 - 1 || k == pp / 2;
        CHECK(r.peak_activations_per_rank[static_cast<std::size_t>(k)] == pp + 1);
        CHECK(between[static_cast<std::size_t>(k)] == (middle ? pp + 1 : pp));
      }
    }
  }
}

TEST_CASE("execute is deterministic and runs on a caller-owned engine") {
  const Schedule s = make_schedule(ScheduleKind::DualPipe, 8, 20);
  const ExecCosts c = costs_of({Time::us(10), Time::us(10), Time::us(4), Time::us(15)}, Time::us(1));
  trainsim::sim::Engine e1, e2;
  e2.run_until(Time::us(5));  // a later start: times shift, measures do not
  const ExecResult a = execute(e1, s, c);
  const ExecResult b = execute(e2, s, c);
  const ExecResult again = execute(s, c);
  CHECK(a.makespan == b.makespan);
  CHECK(a.makespan == again.makespan);
  CHECK(a.bubble_per_rank == b.bubble_per_rank);
  for (std::size_t k = 0; k < a.timeline.size(); ++k) {
    REQUIRE(a.timeline[k].size() == b.timeline[k].size());
    for (std::size_t i = 0; i < a.timeline[k].size(); ++i) {
      CHECK(b.timeline[k][i].start == a.timeline[k][i].start + Time::us(5));
      CHECK(again.timeline[k][i].end == a.timeline[k][i].end);
    }
  }
  trainsim::sim::Engine e3;
  (void)execute(e3, s, c);
  CHECK(e3.fingerprint() == e1.fingerprint());
  CHECK(e1.executed() > 0);
}

TEST_CASE("execute: an exception from a cost leaves the caller's engine safe to run on") {
  const Schedule s = make_schedule(ScheduleKind::OneFOneB, 4, 8);
  ExecCosts c = costs_of({Time::us(1), Time::us(1), Time::us(1), Time::us(2)});
  c.duration = [](const ScheduleOp& op, int rank) {
    if (rank == 2 && op.type == ChunkOpType::BW) throw std::runtime_error("no cost for BW");
    return Time::us(1);
  };
  trainsim::sim::Engine e;
  CHECK_THROWS_AS(execute(e, s, c), std::runtime_error);
  // Events of the aborted run are still queued; they must do nothing.
  CHECK_NOTHROW(e.run());
  CHECK(e.empty());
}

}  // TEST_SUITE("unit")

TEST_SUITE("validation") {
// DeepSeek-V3's layout (V3 report §3.2.1, deepseek-ai/DualPipe): PP = 16
// ranks, 120 micro-batches per step, 60 per direction. Every rank holds two
// stages (r and PP-1-r) and runs each of its 120 chunks exactly once forward,
// once backward for inputs and once backward for weights; with zero-bubble
// splitting, part of the backward runs split (B then W) and the rest as full
// backwards, mostly inside overlapped F&B pairs.
TEST_CASE("DualPipe operation counts per rank for DeepSeek-V3's PP=16, 120 micro-batches") {
  const Schedule s = make_schedule(ScheduleKind::DualPipe, 16, 120);
  REQUIRE(s.per_rank.size() == 16);
  for (int r = 0; r < 16; ++r) {
    int fwd = 0, bin = 0, wgt = 0, fb = 0;
    for (const auto& op : s.per_rank[static_cast<std::size_t>(r)]) {
      switch (op.type) {
        case ChunkOpType::F: ++fwd; break;
        case ChunkOpType::B: ++bin; break;
        case ChunkOpType::W: ++wgt; break;
        case ChunkOpType::BW: ++bin; ++wgt; break;
        case ChunkOpType::FB: ++fwd; ++bin; ++wgt; ++fb; break;
      }
    }
    CAPTURE(r);
    CHECK(fwd == 120);
    CHECK(bin == 120);
    CHECK(wgt == 120);
    // The main phase alone gives 2 x (60 - 16 + h + 1) overlapped pairs,
    // h = min(r, 15 - r): at least 90 of the 120 forward chunks are hidden
    // behind a backward chunk on every rank.
    CHECK(fb >= 90);
  }
}
}
