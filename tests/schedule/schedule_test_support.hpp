#pragma once
// Helpers shared by the schedule tests.
//
// Notation of the golden strings (the same as dualpipe_reference_order.txt
// and dualpipev_reference_order.txt, which were produced by running the
// reference DualPipe.step / DualPipeV.step with recorders, see
// dualpipe_reference_trace.py and dualpipev_reference_trace.py):
//   F3a   forward of micro-batch 3 on chunk "a"
//   B3a   input-only backward (weight gradient deferred)
//   BW3a  full backward
//   W3a   deferred weight gradient
//   F3a+BW1b  an overlapped forward/backward pair (op FB)
// The letter names the chunk: for DualPipe its direction (a = 0, b = 1); for
// interleaved 1F1B and DualPipeV which of the rank's chunks, in stage order
// (stage / ranks: a = the first, b = the second, ...; for DualPipeV a = the
// down leg, b = the up leg); "a" for GPipe, 1F1B and ZB-H1.
#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "trainsim/common/units.hpp"
#include "trainsim/model/pipeline_exec.hpp"
#include "trainsim/model/schedule.hpp"

namespace schedule_test {

using trainsim::Time;
using namespace trainsim::model;

inline std::string token(const Schedule& s, const ChunkRef& c) {
  const int letter = s.kind == ScheduleKind::DualPipe ? c.direction : c.stage / s.ranks;
  return fmt::format("{}{}", c.microbatch, static_cast<char>('a' + letter));
}

inline std::string token(const Schedule& s, const ScheduleOp& op) {
  switch (op.type) {
    case ChunkOpType::F: return fmt::format("F{}", token(s, op.fwd));
    case ChunkOpType::B: return fmt::format("B{}", token(s, op.bwd));
    case ChunkOpType::BW: return fmt::format("BW{}", token(s, op.bwd));
    case ChunkOpType::W: return fmt::format("W{}", token(s, op.bwd));
    case ChunkOpType::FB: return fmt::format("F{}+BW{}", token(s, op.fwd), token(s, op.bwd));
  }
  return "?";
}

inline std::string sequence(const Schedule& s, int rank) {
  std::string out;
  for (const auto& op : s.per_rank[static_cast<std::size_t>(rank)]) {
    if (!out.empty()) out += ' ';
    out += token(s, op);
  }
  return out;
}

// Costs for the bubble tests. F: forward; Bin: input-only backward; W: weight
// backward; BW = Bin + W (the "B" of the papers); FB: overlapped pair.

// Compares every line "<size> <micro-batches> <rank>: <ops>" of a recorded
// reference order (tests/schedule/*_reference_order.txt) with the generator's
// op sequence for that rank; returns the number of lines compared.
inline int compare_with_reference(ScheduleKind kind, const std::string& file) {
  std::ifstream in(file);
  REQUIRE(in.good());
  std::string line;
  int compared = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto colon = line.find(':');
    REQUIRE(colon != std::string::npos);
    std::istringstream head(line.substr(0, colon));
    int size = 0, m = 0, rank = 0;
    head >> size >> m >> rank;
    CAPTURE(line);
    const Schedule s = make_schedule(kind, size, m);
    CHECK(sequence(s, rank) == line.substr(colon + 2));
    ++compared;
  }
  return compared;
}

struct Durations {
  Time f, b_in, w, fb;
  Time bw() const { return b_in + w; }
};

inline ExecCosts costs_of(const Durations& d, Time p2p = Time::zero()) {
  ExecCosts c;
  c.duration = [d](const ScheduleOp& op, int) {
    switch (op.type) {
      case ChunkOpType::F: return d.f;
      case ChunkOpType::B: return d.b_in;
      case ChunkOpType::W: return d.w;
      case ChunkOpType::BW: return d.bw();
      case ChunkOpType::FB: return d.fb;
    }
    return Time::zero();
  };
  if (p2p > Time::zero()) c.p2p = [p2p](int, int, bool) { return p2p; };
  return c;
}

inline std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += s + "\n";
  return out;
}

// Activation count from the op order alone, with an FB's forward and backward
// taken as one step (net zero): the count between ops.
inline std::vector<int> peaks_between_ops(const Schedule& s) {
  std::vector<int> peaks;
  for (const auto& ops : s.per_rank) {
    int live = 0, peak = 0;
    for (const auto& op : ops) {
      if (op.type == ChunkOpType::F) ++live;
      if (op.type == ChunkOpType::B || op.type == ChunkOpType::BW) --live;
      peak = std::max(peak, live);
    }
    peaks.push_back(peak);
  }
  return peaks;
}

// Rank- and type-dependent costs with transfers, for invariant sweeps.
inline ExecCosts uneven_costs() {
  ExecCosts uneven;
  uneven.duration = [](const ScheduleOp& op, int rank) {
    const std::int64_t base = 1000 + 37 * rank;
    switch (op.type) {
      case ChunkOpType::F: return Time::ps(base);
      case ChunkOpType::B: return Time::ps(base + 200);
      case ChunkOpType::W: return Time::ps(700);
      case ChunkOpType::BW: return Time::ps(base + 900);
      case ChunkOpType::FB: return Time::ps(2 * base + 500);
    }
    return Time::zero();
  };
  uneven.p2p = [](int from, int to, bool forward) {
    return Time::ps(forward ? 100 + 10 * from : 150 + 10 * to);
  };
  return uneven;
}

}  // namespace schedule_test
