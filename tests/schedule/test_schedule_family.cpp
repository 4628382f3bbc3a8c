// Tests of the schedule family beyond 1F1B and DualPipe (test_schedule.cpp
// has those): GPipe, interleaved 1F1B, ZB-H1 and DualPipeV, and properties
// every kind shares (invariants, stage mapping, preconditions, determinism,
// peaks). Notation of the golden strings: see schedule_test_support.hpp.
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

namespace {

std::map<std::string, int> phase_counts(const Schedule& s, int rank) {
  std::map<std::string, int> n;
  for (const auto& op : s.per_rank[static_cast<std::size_t>(rank)]) ++n[op.phase];
  return n;
}

// Megatron-LM's warm-up length of interleaved 1F1B, in chunk-forwards.
int interleaved_warmup(int pp, int v, int m, int rank) {
  return std::min((pp - rank - 1) * 2 + (v - 1) * pp, m * v);
}

// Every kind at many sizes (DualPipe's own sweep is in test_schedule.cpp).
std::vector<Schedule> family_sweep() {
  std::vector<Schedule> out;
  for (ScheduleKind k : {ScheduleKind::GPipe, ScheduleKind::OneFOneB, ScheduleKind::ZB1P})
    for (int pp : {1, 2, 3, 4, 8, 16})
      for (int m : {1, pp, 2 * pp + 1, 120}) out.push_back(make_schedule(k, pp, m));
  for (int pp : {1, 2, 3, 4, 8})
    for (int v : {2, 3, 4})
      for (int m : {pp, 2 * pp, 5 * pp}) out.push_back(make_schedule(ScheduleKind::Interleaved, pp, m, v));
  for (int n : {1, 2, 3, 4, 8, 16})
    for (int m : {2 * n, 2 * n + 1, 20, 120})
      if (m >= 2 * n) out.push_back(make_schedule(ScheduleKind::DualPipeV, n, m));
  for (int pp : {2, 4, 8}) out.push_back(make_schedule(ScheduleKind::DualPipe, pp, 4 * pp));
  return out;
}

std::string label(const Schedule& s) {
  return fmt::format("{} ranks={} m={} v={}", to_string(s.kind), s.ranks, s.microbatches,
                     s.virtual_stages);
}

std::string expect_invalid(ScheduleKind k, int ranks, int m, int v = 1) {
  try {
    (void)make_schedule(k, ranks, m, v);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no exception)";
}

}  // namespace

TEST_SUITE("unit") {

TEST_CASE("GPipe: all forwards, then all full backwards, on every rank") {
  const Schedule s = make_schedule(ScheduleKind::GPipe, 3, 4);
  CHECK(s.stages == 3);
  CHECK(s.virtual_stages == 1);
  for (int r = 0; r < 3; ++r) {
    CHECK(sequence(s, r) == "F0a F1a F2a F3a BW0a BW1a BW2a BW3a");
    auto n = phase_counts(s, r);
    CHECK(n["forward"] == 4);   // m forwards
    CHECK(n["backward"] == 4);  // m full backwards
    for (const auto& op : s.per_rank[static_cast<std::size_t>(r)])
      CHECK((op.type == ChunkOpType::F ? op.fwd : op.bwd).stage == r);
  }
}

TEST_CASE("Interleaved 1F1B: Megatron's order of chunks and micro-batches") {
  // PP = 2, v = 2 (rank 0 holds stages 0 and 2 = chunks a and b, rank 1
  // stages 1 and 3), m = 4. Worked out by hand from Megatron-LM's
  // get_model_chunk_id: forwards go in groups of PP micro-batches per chunk
  // (0,1 on a; 0,1 on b; 2,3 on a; 2,3 on b), backwards the same with the
  // chunks reversed. Warm-up: rank 0 (2-0-1)*2 + (2-1)*2 = 4, rank 1 2.
  const Schedule s = make_schedule(ScheduleKind::Interleaved, 2, 4, 2);
  CHECK(s.stages == 4);
  CHECK(s.virtual_stages == 2);
  CHECK(sequence(s, 0) ==
        "F0a F1a F0b F1b F2a BW0b F3a BW1b F2b BW0a F3b BW1a BW2b BW3b BW2a BW3a");
  CHECK(sequence(s, 1) ==
        "F0a F1a F0b BW0b F1b BW1b F2a BW0a F3a BW1a F2b BW2b F3b BW3b BW2a BW3a");
  CHECK(s.per_rank[0][2].fwd == ChunkRef{2, 0, 0});
  CHECK(s.per_rank[1][2].fwd == ChunkRef{3, 0, 0});
}

TEST_CASE("Interleaved 1F1B: phase lengths are Megatron's formulas") {
  const int pp = 4, v = 3, m = 8;
  const Schedule s = make_schedule(ScheduleKind::Interleaved, pp, m, v);
  for (int r = 0; r < pp; ++r) {
    CAPTURE(r);
    const int warmup = interleaved_warmup(pp, v, m, r);  // (pp-r-1)*2 + (v-1)*pp
    auto n = phase_counts(s, r);
    CHECK(n["warmup"] == warmup);
    CHECK(n["steady"] == 2 * (m * v - warmup));  // F/BW pairs for the rest
    CHECK(n["cooldown"] == warmup);              // the warm-up chunks' backwards
  }
  // The warm-up is capped at all m*v chunk-forwards: PP = 4, v = 4, m = 4
  // gives (4-0-1)*2 + 3*4 = 18 > 16 on rank 0.
  const Schedule capped = make_schedule(ScheduleKind::Interleaved, 4, 4, 4);
  CHECK(phase_counts(capped, 0)["warmup"] == 16);
  CHECK(phase_counts(capped, 0)["steady"] == 0);
}

TEST_CASE("ZB-H1: 1F1B with each rank's first r W passes deferred to the end") {
  const Schedule s = make_schedule(ScheduleKind::ZB1P, 4, 6);
  // Rank 0 defers nothing: its W follows its B at once.
  CHECK(sequence(s, 0) == "F0a F1a F2a F3a B0a W0a F4a B1a W1a F5a B2a W2a B3a W3a B4a W4a B5a W5a");
  // The last rank has no warm-up and defers 3 W's, which it runs last.
  CHECK(sequence(s, 3) == "F0a B0a F1a B1a F2a B2a F3a B3a W0a F4a B4a W1a F5a B5a W2a W3a W4a W5a");
  const int pp = 4, m = 10;
  const Schedule t = make_schedule(ScheduleKind::ZB1P, pp, m);
  for (int r = 0; r < pp; ++r) {
    CAPTURE(r);
    auto n = phase_counts(t, r);
    CHECK(n["warmup"] == pp - r - 1);                   // as 1F1B
    CHECK(n["steady_defer_w"] == 2 * r);                // r F/B pairs, W deferred
    CHECK(n["steady"] == 3 * (m - (pp - r - 1) - r));   // F/B/W triples
    CHECK(n["cooldown"] == 2 * (pp - r - 1));           // B/W pairs
    CHECK(n["flush_w"] == r);                           // the deferred W's
  }
  // Fewer micro-batches than ranks: the phases shrink, nothing is lost.
  const Schedule few = make_schedule(ScheduleKind::ZB1P, 4, 2);
  CHECK(sequence(few, 0) == "F0a F1a B0a W0a B1a W1a");
  CHECK(sequence(few, 3) == "F0a B0a F1a B1a W0a W1a");
}

TEST_CASE("DualPipeV: op order of every device equals the reference code's, many sizes") {
  // dualpipev_reference_order.txt was recorded from deepseek-ai/DualPipe
  // dualpipe/dualpipev.py @ 3da1bbe by dualpipev_reference_trace.py.
  CHECK(compare_with_reference(ScheduleKind::DualPipeV, TRAINSIM_SOURCE_DIR "/tests/schedule/dualpipev_reference_order.txt") == 118);
}

TEST_CASE("DualPipeV: phase lengths are the reference formulas; it is DualPipe cut in half") {
  const int n = 4, m = 10;
  const Schedule s = make_schedule(ScheduleKind::DualPipeV, n, m);
  CHECK(s.ranks == n);
  CHECK(s.stages == 2 * n);
  CHECK(s.directions() == 1);
  CHECK(s.microbatches_per_direction() == m);
  for (int d = 0; d < n; ++d) {
    CAPTURE(d);
    auto c = phase_counts(s, d);
    CHECK(c["warmup"] == 2 * (n - d - 1));                                   // nF0
    CHECK(c["interleaved_warmup"] == 2 * (d + 1));                           // nF0F1
    CHECK(c["zero_bubble_warmup"] == 3 * (n - d - 1));                       // nB1W1F1
    CHECK(c["main_fb"] == 2 * (m - 2 * n + d + 1) + (d == n - 1 ? 1 : 0));   // nF0B1F1B0
    CHECK(c["drain_b1_f1b0"] == 2 * (n - d - 1));                            // nB1F1B0
    CHECK(c["drain_b1_b0"] == 2 * (d + 1));                                  // nB1B0
    CHECK(c["zero_bubble_cooldown"] == 2 * (n - d - 1));                     // nWB0
    CHECK(c["cooldown"] == d + 1);                                           // nW
  }
  // Cut in half: device d of DualPipeV(n, m) runs the program of rank d of
  // DualPipe(2n, 2m) (m micro-batches per direction), with DualPipe's
  // direction 0 as the down leg and direction 1 as the up leg.
  for (int nn : {1, 2, 3, 4, 8})
    for (int mm : {2 * nn, 2 * nn + 2, 20})
      for (int d = 0; d < nn; ++d) {
        CAPTURE(nn);
        CAPTURE(mm);
        CAPTURE(d);
        CHECK(sequence(make_schedule(ScheduleKind::DualPipeV, nn, mm), d) ==
              sequence(make_schedule(ScheduleKind::DualPipe, 2 * nn, 2 * mm), d));
      }
}

TEST_CASE("stage-to-rank mapping of every kind: rank_of and stages_of_rank agree") {
  const Schedule g = make_schedule(ScheduleKind::GPipe, 4, 4);
  const Schedule z = make_schedule(ScheduleKind::ZB1P, 4, 4);
  const Schedule o = make_schedule(ScheduleKind::OneFOneB, 4, 4);
  const Schedule i = make_schedule(ScheduleKind::Interleaved, 4, 8, 3);
  const Schedule d = make_schedule(ScheduleKind::DualPipe, 4, 8);
  const Schedule v = make_schedule(ScheduleKind::DualPipeV, 4, 8);
  for (const Schedule* s : {&g, &z, &o}) CHECK(s->stages_of_rank(2) == std::vector<int>{2});
  CHECK(i.stages == 12);
  CHECK(i.stages_of_rank(1) == std::vector<int>{1, 5, 9});
  CHECK(i.rank_of(ChunkRef{9, 0, 0}) == 1);
  CHECK(d.stages_of_rank(0) == std::vector<int>{0, 3});
  CHECK(d.stages_of_rank(2) == std::vector<int>{1, 2});
  CHECK(v.stages == 8);
  CHECK(v.stages_of_rank(0) == std::vector<int>{0, 7});
  CHECK(v.stages_of_rank(3) == std::vector<int>{3, 4});
  CHECK(v.rank_of(ChunkRef{4, 0, 0}) == 3);
  CHECK(v.rank_of(ChunkRef{7, 5, 0}) == 0);
  CHECK(v.stages_of_rank(4).empty());
  CHECK(g.stages_of_rank(-1).empty());
  for (const Schedule* s : {&g, &z, &o, &i, &d, &v}) {
    CAPTURE(label(*s));
    CHECK(s->directions() == (s->kind == ScheduleKind::DualPipe ? 2 : 1));
    CHECK(s->virtual_stages == (s->kind == ScheduleKind::Interleaved ? 3 : 1));
    // Every stage belongs to exactly one rank, and that rank lists it.
    std::vector<int> owners(static_cast<std::size_t>(s->stages), 0);
    for (int r = 0; r < s->ranks; ++r)
      for (int st : s->stages_of_rank(r)) {
        ++owners[static_cast<std::size_t>(st)];
        if (s->kind != ScheduleKind::DualPipe) CHECK(s->rank_of(ChunkRef{st, 0, 0}) == r);
      }
    if (s->kind != ScheduleKind::DualPipe)
      for (int count : owners) CHECK(count == 1);
    // Every op of a rank works on a stage the rank holds.
    for (int r = 0; r < s->ranks; ++r) {
      const auto held = s->stages_of_rank(r);
      for (const auto& op : s->per_rank[static_cast<std::size_t>(r)]) {
        if (op.type == ChunkOpType::F || op.type == ChunkOpType::FB)
          CHECK(std::count(held.begin(), held.end(), op.fwd.stage) == 1);
        if (op.type != ChunkOpType::F) CHECK(std::count(held.begin(), held.end(), op.bwd.stage) == 1);
      }
    }
  }
}

TEST_CASE("invariants hold for every kind across many sizes, with and without transfers") {
  const Durations unit{Time::us(1), Time::us(1), Time::us(1), Time::us(2)};
  const Durations zero{Time::zero(), Time::zero(), Time::zero(), Time::zero()};
  const std::vector<ExecCosts> costs{uneven_costs(), costs_of(unit), costs_of(zero),
                                     costs_of(unit, Time::us(3))};
  int checked = 0;
  for (const Schedule& s : family_sweep()) {
    CAPTURE(label(s));
    // Each stage runs every micro-batch of each direction forward once.
    std::vector<int> forwards(static_cast<std::size_t>(s.stages), 0);
    for (const auto& ops : s.per_rank)
      for (const auto& op : ops)
        if (op.type == ChunkOpType::F || op.type == ChunkOpType::FB)
          ++forwards[static_cast<std::size_t>(op.fwd.stage)];
    for (int f : forwards) CHECK(f == s.microbatches);
    for (const ExecCosts& c : costs) {
      const ExecResult r = execute(s, c);  // throws on a deadlock
      const auto problems = check_invariants(s, r);
      CHECK_MESSAGE(problems.empty(), join(problems));
      for (std::size_t k = 0; k < r.bubble_per_rank.size(); ++k) {
        CHECK(r.bubble_per_rank[k] + r.busy_per_rank[k] == r.makespan);
        CHECK(r.timeline[k].size() == s.per_rank[k].size());  // every queue drained
      }
      ++checked;
    }
  }
  CHECK(checked > 400);
}

TEST_CASE("p2p is asked only for hand-offs between different ranks") {
  const ExecCosts base = costs_of({Time::us(1), Time::us(1), Time::us(1), Time::us(2)});
  auto edges_of = [&](const Schedule& s) {
    std::vector<std::string> edges;
    ExecCosts c = base;
    c.p2p = [&edges](int from, int to, bool forward) {
      CHECK(from != to);
      edges.push_back(fmt::format("{}{}{}", from, forward ? '>' : '<', to));
      return Time::us(1);
    };
    const ExecResult r = execute(s, c);
    CHECK(check_invariants(s, r).empty());
    return edges;
  };
  // DualPipeV, 3 devices, 6 micro-batches: 6 stages, 5 stage boundaries, of
  // which the bottom of the V (stage 2 -> 3) stays on device 2: 4 transfers
  // per micro-batch each way.
  const auto v = edges_of(make_schedule(ScheduleKind::DualPipeV, 3, 6));
  CHECK(v.size() == 6u * 4u * 2u);
  CHECK(std::count(v.begin(), v.end(), "1>2") == 6);
  CHECK(std::count(v.begin(), v.end(), "2>1") == 6);  // up leg, stage 3 -> 4
  CHECK(std::count(v.begin(), v.end(), "1>0") == 6);  // up leg, stage 4 -> 5
  CHECK(std::count(v.begin(), v.end(), "0<1") == 6);  // gradient, stage 1 -> 0
  // Interleaved on 2 ranks: every one of the 3 boundaries of 4 stages
  // crosses ranks (0 -> 1 -> 0 -> 1); on 1 rank none does.
  CHECK(edges_of(make_schedule(ScheduleKind::Interleaved, 2, 2, 2)).size() == 2u * 3u * 2u);
  CHECK(edges_of(make_schedule(ScheduleKind::Interleaved, 1, 3, 3)).empty());
}

TEST_CASE("make_schedule: each kind's preconditions, with clear messages") {
  CHECK(expect_invalid(ScheduleKind::GPipe, 0, 4) == "GPipe schedule: ranks=0 must be >= 1");
  CHECK(expect_invalid(ScheduleKind::ZB1P, 4, 0) == "ZB-H1 schedule: microbatches=0 must be >= 1");
  CHECK(expect_invalid(ScheduleKind::OneFOneB, 4, 8, 2) ==
        "1F1B schedule: virtual_stages=2 must be 1 (virtual stages apply to the interleaved "
        "schedule only)");
  CHECK(expect_invalid(ScheduleKind::DualPipeV, 4, 8, 2) ==
        "DualPipeV schedule: virtual_stages=2 must be 1 (virtual stages apply to the interleaved "
        "schedule only; DualPipeV always runs 2 stages per device)");
  CHECK(expect_invalid(ScheduleKind::Interleaved, 4, 8, 1) ==
        "Interleaved 1F1B schedule: virtual_stages=1 must be >= 2 (model chunks per rank; use "
        "1F1B for one chunk)");
  CHECK(expect_invalid(ScheduleKind::Interleaved, 4, 6, 2) ==
        "Interleaved 1F1B schedule: microbatches=6 must be a multiple of ranks=4 (Megatron-LM's "
        "requirement: micro-batches go through the chunks in groups of ranks)");
  CHECK(expect_invalid(ScheduleKind::DualPipeV, 4, 7) ==
        "DualPipeV schedule: microbatches=7 must be >= 2*ranks=8 (ranks counts devices; the V has "
        "2*ranks stages)");
  CHECK(expect_invalid(ScheduleKind::DualPipe, 3, 12) == "DualPipe schedule: ranks=3 must be even and >= 2");
  CHECK_NOTHROW(make_schedule(ScheduleKind::DualPipeV, 3, 7));  // no evenness needed
  CHECK_NOTHROW(make_schedule(ScheduleKind::DualPipeV, 1, 2));
  CHECK_NOTHROW(make_schedule(ScheduleKind::Interleaved, 1, 3, 2));
  CHECK_NOTHROW(make_schedule(ScheduleKind::GPipe, 8, 3));
  CHECK_NOTHROW(make_schedule(ScheduleKind::ZB1P, 8, 3));
}

TEST_CASE("execute is deterministic for every kind") {
  const ExecCosts c = uneven_costs();
  for (const Schedule& s : {make_schedule(ScheduleKind::GPipe, 4, 9),
                            make_schedule(ScheduleKind::ZB1P, 5, 11),
                            make_schedule(ScheduleKind::Interleaved, 4, 8, 3),
                            make_schedule(ScheduleKind::DualPipeV, 4, 11)}) {
    CAPTURE(label(s));
    trainsim::sim::Engine e1, e2;
    const ExecResult a = execute(e1, s, c);
    const ExecResult b = execute(e2, s, c);
    CHECK(e1.fingerprint() == e2.fingerprint());
    CHECK(a.makespan == b.makespan);
    CHECK(a.peak_activations_per_rank == b.peak_activations_per_rank);
    for (std::size_t k = 0; k < a.timeline.size(); ++k)
      for (std::size_t i = 0; i < a.timeline[k].size(); ++i) {
        CHECK(a.timeline[k][i].start == b.timeline[k][i].start);
        CHECK(a.timeline[k][i].end == b.timeline[k][i].end);
      }
    // Generating the schedule again gives the same ops.
    const Schedule again = make_schedule(s.kind, s.ranks, s.microbatches, s.virtual_stages);
    for (int r = 0; r < s.ranks; ++r) CHECK(sequence(again, r) == sequence(s, r));
  }
}

TEST_CASE("peak activations of GPipe, ZB-H1, interleaved 1F1B and DualPipeV") {
  const ExecCosts c = costs_of({Time::us(1), Time::us(1), Time::us(1), Time::us(2)});
  for (int pp : {1, 2, 4, 8, 16}) {
    for (int m : {1, pp, 3 * pp}) {
      CAPTURE(pp);
      CAPTURE(m);
      // GPipe: every rank holds all m micro-batches at the turn.
      const ExecResult g = execute(make_schedule(ScheduleKind::GPipe, pp, m), c);
      for (int k = 0; k < pp; ++k) CHECK(g.peak_activations_per_rank[static_cast<std::size_t>(k)] == m);
      // ZB-H1: the same activations as 1F1B (released by B: min(PP-r, m),
      // PP on the first rank); on top, rank r keeps the weight-gradient
      // stash of up to r+1 chunks whose W is still owed.
      const ExecResult z = execute(make_schedule(ScheduleKind::ZB1P, pp, m), c);
      for (int k = 0; k < pp; ++k) {
        CAPTURE(k);
        CHECK(z.peak_activations_per_rank[static_cast<std::size_t>(k)] == std::min(pp - k, m));
        CHECK(z.peak_deferred_weight_per_rank[static_cast<std::size_t>(k)] == std::min(k + 1, m));
      }
      CHECK(g.peak_deferred_weight_per_rank[0] == 0);
    }
  }
  // Interleaved: rank r holds its warm-up plus one chunk, capped at all m*v
  // (in chunks of 1/(PP*v) of the model): rank 0 holds 2(PP-1) + (v-1)PP + 1.
  for (int pp : {2, 4, 8})
    for (int v : {2, 4})
      for (int m : {pp, 4 * pp}) {
        CAPTURE(pp);
        CAPTURE(v);
        CAPTURE(m);
        const ExecResult r = execute(make_schedule(ScheduleKind::Interleaved, pp, m, v), c);
        for (int k = 0; k < pp; ++k)
          CHECK(r.peak_activations_per_rank[static_cast<std::size_t>(k)] ==
                std::min(interleaved_warmup(pp, v, m, k) + 1, m * v));
      }
  // DualPipeV: every device peaks at PP+1 chunks with PP = 2n stages (the
  // table's "PP+1"), counting an F&B pair's two chunks as both resident.
  // Counted between ops (a pair is net zero), the bottom device n-1 holds
  // 2n+1 (its first main-step pair is a plain F then BW) and the others 2n:
  // DualPipe's middle-rank pattern, as expected of DualPipe cut in half.
  for (int n : {1, 2, 3, 4, 8, 16})
    for (int m : {2 * n, 120}) {
      CAPTURE(n);
      CAPTURE(m);
      const Schedule s = make_schedule(ScheduleKind::DualPipeV, n, m);
      const ExecResult r = execute(s, c);
      const std::vector<int> between = peaks_between_ops(s);
      for (int d = 0; d < n; ++d) {
        CHECK(r.peak_activations_per_rank[static_cast<std::size_t>(d)] == 2 * n + 1);
        CHECK(between[static_cast<std::size_t>(d)] == (d == n - 1 ? 2 * n + 1 : 2 * n));
      }
    }
}

}  // TEST_SUITE("unit")

TEST_SUITE("validation") {

// GPipe (Huang et al. 2019, "GPipe: Efficient Training of Giant Neural
// Networks using Pipeline Parallelism", section 2.3: bubble overhead
// (K-1)/(M+K-1) of the step): every rank idles (PP-1)(F+B).
TEST_CASE("GPipe: bubble (PP-1)(F+B) on every rank, makespan (m+PP-1)(F+B)") {
  const Durations d{Time::us(3), Time::us(5), Time::us(2), Time::zero()};  // B = 7
  for (int pp : {1, 2, 3, 4, 8, 16})
    for (int m : {1, pp, 2 * pp + 1, 120}) {
      CAPTURE(pp);
      CAPTURE(m);
      const ExecResult r = execute(make_schedule(ScheduleKind::GPipe, pp, m), costs_of(d));
      CHECK(r.makespan == Time::us(10) * (m + pp - 1));
      for (Time b : r.bubble_per_rank) CHECK(b == Time::us(10) * (pp - 1));
    }
}

// Interleaved 1F1B (Narayanan et al. 2021, section 2.2.2): with v chunks per
// rank the bubble is (PP-1)(t_f + t_b)/v in whole-model times, i.e.
// (PP-1)(f+b) with f, b the times of one chunk; Megatron-LM needs the
// micro-batch count to be a multiple of PP. Observed: exact on every rank,
// for every v, every multiple of PP (PP itself included) and any f, b.
TEST_CASE("Interleaved 1F1B: bubble (PP-1)(f+b) per chunk on every rank when PP divides m") {
  for (const Durations d : {Durations{Time::us(1), Time::us(1), Time::us(1), Time::zero()},
                            Durations{Time::us(2), Time::us(3), Time::us(1), Time::zero()},
                            Durations{Time::us(5), Time::us(2), Time::us(4), Time::zero()}}) {
    const Time per_chunk = d.f + d.bw();
    for (int pp : {1, 2, 3, 4, 8})
      for (int v : {2, 3, 4})
        for (int k : {1, 2, 3, 8}) {
          const int m = k * pp;
          CAPTURE(pp);
          CAPTURE(v);
          CAPTURE(m);
          const ExecResult r =
              execute(make_schedule(ScheduleKind::Interleaved, pp, m, v), costs_of(d));
          CHECK(r.makespan == per_chunk * (m * v + pp - 1));
          for (Time b : r.bubble_per_rank) CHECK(b == per_chunk * (pp - 1));
        }
  }
  // In whole-model units: the same model on 1F1B with F = v*f, B = v*b
  // idles v times as long.
  const Durations chunk{Time::us(1), Time::us(2), Time::zero(), Time::zero()};
  const Durations whole{Time::us(4), Time::us(8), Time::zero(), Time::zero()};
  const ExecResult inter = execute(make_schedule(ScheduleKind::Interleaved, 4, 8, 4), costs_of(chunk));
  const ExecResult plain = execute(make_schedule(ScheduleKind::OneFOneB, 4, 8), costs_of(whole));
  CHECK(plain.bubble_per_rank[0] == inter.bubble_per_rank[0] * 4);
}

// ZB-H1 (Qi et al. 2024, "Zero Bubble Pipeline Parallelism", section 2.1,
// bubble (p-1)(T_F + T_B - T_W) with T_B the input backward; the DualPipe
// README table's ZB1P row writes it (PP-1)(F+B-2W) with B the full backward,
// B = T_B + T_W). Observed with zero transfers and m >= PP: every rank idles
// exactly (PP-1)(F + B_in - min(W, F, B_in)): the formula holds, on every
// rank, whenever W <= min(F, B_in) (the paper's figures take F = B_in = W);
// a longer W no longer fits the cool-down gaps and the formula undercounts.
TEST_CASE("ZB-H1: bubble (PP-1)(F+B-2W) on every rank when W <= min(F, B_in)") {
  for (const Durations d : {Durations{Time::us(1), Time::us(1), Time::us(1), Time::zero()},
                            Durations{Time::us(3), Time::us(4), Time::us(3), Time::zero()},
                            Durations{Time::us(2), Time::us(1), Time::us(1), Time::zero()},
                            Durations{Time::us(4), Time::us(6), Time::us(1), Time::zero()}}) {
    const Time formula_term = d.f + d.bw() - d.w * 2;
    for (int pp : {2, 3, 4, 8, 16})
      for (int m : {pp, pp + 1, 2 * pp + 1, 120}) {
        CAPTURE(pp);
        CAPTURE(m);
        CAPTURE(d.w.to_us());
        const ExecResult r = execute(make_schedule(ScheduleKind::ZB1P, pp, m), costs_of(d));
        CHECK(r.makespan == (d.f + d.bw()) * m + formula_term * (pp - 1));
        for (Time b : r.bubble_per_rank) CHECK(b == formula_term * (pp - 1));
      }
  }
}

TEST_CASE("ZB-H1: with W > min(F, B_in) the simulation, not the formula, is the truth") {
  for (const Durations d : {Durations{Time::us(1), Time::us(1), Time::us(2), Time::zero()},
                            Durations{Time::us(1), Time::us(2), Time::us(3), Time::zero()},
                            Durations{Time::us(2), Time::us(1), Time::us(1.5), Time::zero()},
                            Durations{Time::us(3), Time::us(2), Time::us(2.5), Time::zero()}}) {
    const int pp = 4, m = 12;
    CAPTURE(d.w.to_us());
    const ExecResult r = execute(make_schedule(ScheduleKind::ZB1P, pp, m), costs_of(d));
    const Time hidden = min(d.w, min(d.f, d.b_in));
    const Time observed = (d.f + d.b_in - hidden) * (pp - 1);
    const Time formula = (d.f + d.bw() - d.w * 2) * (pp - 1);
    for (Time b : r.bubble_per_rank) CHECK(b == observed);
    CHECK(observed > formula);
  }
  // F = 1, B_in = 1, W = 2 us, PP = 4: the formula says no bubble at all,
  // the schedule idles 3 us on every rank.
  const ExecResult r = execute(make_schedule(ScheduleKind::ZB1P, 4, 12),
                               costs_of({Time::us(1), Time::us(1), Time::us(2), Time::zero()}));
  CHECK(r.bubble_per_rank[0] == Time::us(3));
}

// DualPipeV (deepseek-ai/DualPipe README: bubble (PP/2-1)(F&B+B-3W), where
// "PP denotes the number of pp stages", and the example "4 PP ranks (8 PP
// stages)"): for DualPipeV PP is the number of STAGES, 2 * devices, so the
// factor PP/2-1 is devices-1. Observed with zero transfers, B - W = F and
// W <= F&B - F: the two deepest devices (n-1, n-2; all devices when n <= 2)
// idle exactly the formula; device d < n-2 idles (n-2-d)(F+B-F&B) less
// (same makespan, fewer overlapped pairs): DualPipe's rank pattern, as for
// the first half of DualPipe on 2n ranks.
TEST_CASE("DualPipeV: bubble (PP/2-1)(F&B+B-3W) with PP = 2*devices on the deepest devices") {
  for (const Durations d : {Durations{Time::us(10), Time::us(10), Time::us(4), Time::us(15)},
                            Durations{Time::us(10), Time::us(10), Time::us(2), Time::us(20)},
                            Durations{Time::us(10), Time::us(10), Time::us(1), Time::us(24)}}) {
    const Time full_b = d.bw();
    for (int n : {1, 2, 3, 4, 8, 16})
      for (int m : {2 * n, 2 * n + 1, 20, 120}) {
        if (m < 2 * n) continue;
        CAPTURE(n);
        CAPTURE(m);
        CAPTURE(d.fb.to_us());
        const Schedule s = make_schedule(ScheduleKind::DualPipeV, n, m);
        const ExecResult r = execute(s, costs_of(d));
        REQUIRE(check_invariants(s, r).empty());
        const int pp_stages = 2 * n;
        const Time formula = (d.fb + full_b - d.w * 3) * (pp_stages / 2 - 1);
        for (int k = 0; k < n; ++k) {
          CAPTURE(k);
          const Time less = (d.f + full_b - d.fb) * std::max(0, n - 2 - k);
          CHECK(r.bubble_per_rank[static_cast<std::size_t>(k)] == formula - less);
        }
        CHECK(r.bubble_per_rank[static_cast<std::size_t>(n - 1)] == formula);
      }
  }
}

TEST_CASE("DualPipeV: a W longer than F&B - F no longer hides; the formula then undercounts") {
  // As DualPipe: the deepest devices idle (n-1)(F&B + B_in - 2 min(W, F&B-F)).
  const Time f = Time::us(10);
  for (int w_us : {4, 5, 6, 8, 10}) {
    const Durations d{f, f, Time::us(w_us), Time::us(15)};
    const int n = 4;
    const ExecResult r = execute(make_schedule(ScheduleKind::DualPipeV, n, 40), costs_of(d));
    const Time expected = (d.fb + d.b_in - min(d.w, d.fb - d.f) * 2) * (n - 1);
    CAPTURE(w_us);
    CHECK(r.bubble_per_rank[3] == expected);
    CHECK(r.bubble_per_rank[2] == expected);
    if (d.w > d.fb - d.f) CHECK(expected > (d.fb + d.bw() - d.w * 3) * (n - 1));
  }
}

TEST_CASE("DualPipe and DualPipeV when B-W != F: the simulation, not the formula, is the truth") {
  // 4 devices (8 stages) for DualPipeV, 8 ranks for DualPipe, F = 10 us,
  // W = 4 us. The formula (PP/2-1)(F&B+B-3W) = 3(F&B + B_in - 2W) misses on
  // the deepest devices in either direction; the numbers below are the
  // simulated schedule's (reference-verified op order, zero transfers).
  struct Case {
    Durations d;
    std::vector<int> bubble_us;  // devices 0..3
    int formula_us;
  };
  const std::vector<Case> cases{
      // B_in = 14 > F: the formula says 78, the deepest devices idle 68.
      {{Time::us(10), Time::us(14), Time::us(4), Time::us(20)}, {52, 60, 68, 68}, 78},
      // B_in = 6 < F: the formula says 36, the deepest devices idle 48.
      {{Time::us(10), Time::us(6), Time::us(4), Time::us(14)}, {36, 42, 48, 48}, 36},
      // B_in = 8: 48 formula, 54 simulated.
      {{Time::us(10), Time::us(8), Time::us(4), Time::us(16)}, {42, 48, 54, 54}, 48},
  };
  for (const Case& c : cases) {
    CAPTURE(c.d.b_in.to_us());
    const Time formula = (c.d.fb + c.d.bw() - c.d.w * 3) * 3;
    CHECK(formula == Time::us(c.formula_us));
    for (int m : {8, 9, 40}) {
      const ExecResult v = execute(make_schedule(ScheduleKind::DualPipeV, 4, m), costs_of(c.d));
      for (int k = 0; k < 4; ++k)
        CHECK(v.bubble_per_rank[static_cast<std::size_t>(k)] ==
              Time::us(c.bubble_us[static_cast<std::size_t>(k)]));
      CHECK(v.bubble_per_rank[3] != formula);
    }
    // DualPipe on 8 ranks idles the same, mirrored.
    const ExecResult p = execute(make_schedule(ScheduleKind::DualPipe, 8, 40), costs_of(c.d));
    for (int k = 0; k < 8; ++k)
      CHECK(p.bubble_per_rank[static_cast<std::size_t>(k)] ==
            Time::us(c.bubble_us[static_cast<std::size_t>(std::min(k, 7 - k))]));
  }
}

TEST_CASE("DualPipeV(n, m) times like the first half of DualPipe(2n, 2m) with zero transfers") {
  for (const Durations d : {Durations{Time::us(10), Time::us(10), Time::us(4), Time::us(15)},
                            Durations{Time::us(7), Time::us(13), Time::us(5), Time::us(17)},
                            Durations{Time::us(3), Time::us(2), Time::us(6), Time::us(4)}}) {
    for (int n : {1, 2, 3, 4, 8})
      for (int m : {2 * n, 2 * n + 2, 20}) {
        CAPTURE(n);
        CAPTURE(m);
        const ExecResult v = execute(make_schedule(ScheduleKind::DualPipeV, n, m), costs_of(d));
        const ExecResult p = execute(make_schedule(ScheduleKind::DualPipe, 2 * n, 2 * m), costs_of(d));
        CHECK(v.makespan == p.makespan);
        for (int k = 0; k < n; ++k)
          CHECK(v.bubble_per_rank[static_cast<std::size_t>(k)] == p.bubble_per_rank[static_cast<std::size_t>(k)]);
      }
  }
}

}  // TEST_SUITE("validation")
