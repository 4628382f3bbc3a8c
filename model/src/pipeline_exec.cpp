#include "trainsim/model/pipeline_exec.hpp"

#include <algorithm>
#include <memory>
#include <stdexcept>

#include <fmt/format.h>

namespace trainsim::model {

namespace {

bool has_forward(ChunkOpType t) { return t == ChunkOpType::F || t == ChunkOpType::FB; }
bool has_input_backward(ChunkOpType t) {
  return t == ChunkOpType::B || t == ChunkOpType::BW || t == ChunkOpType::FB;
}

// Dense index of chunks: (direction, stage, micro-batch).
struct ChunkIndex {
  int stages = 0;
  int directions = 0;
  int per_direction = 0;
  explicit ChunkIndex(const Schedule& s)
      : stages(s.stages), directions(s.directions()), per_direction(s.microbatches_per_direction()) {}
  std::size_t size() const {
    return static_cast<std::size_t>(stages) * static_cast<std::size_t>(directions) *
           static_cast<std::size_t>(per_direction);
  }
  bool valid(const ChunkRef& c) const {
    return c.stage >= 0 && c.stage < stages && c.direction >= 0 && c.direction < directions &&
           c.microbatch >= 0 && c.microbatch < per_direction;
  }
  std::size_t operator()(const ChunkRef& c) const {
    return (static_cast<std::size_t>(c.direction) * static_cast<std::size_t>(stages) +
            static_cast<std::size_t>(c.stage)) *
               static_cast<std::size_t>(per_direction) +
           static_cast<std::size_t>(c.microbatch);
  }
};

void validate_shape(const Schedule& s, const ChunkIndex& ix) {
  if (s.stages < 1 || s.ranks < 1 || static_cast<int>(s.per_rank.size()) != s.ranks)
    throw std::invalid_argument(fmt::format(
        "execute: schedule has ranks={} stages={} but {} rank lists", s.ranks, s.stages,
        s.per_rank.size()));
  for (int r = 0; r < s.ranks; ++r) {
    const auto& ops = s.per_rank[static_cast<std::size_t>(r)];
    for (std::size_t i = 0; i < ops.size(); ++i) {
      const ScheduleOp& op = ops[i];
      const bool ok = (!has_forward(op.type) || ix.valid(op.fwd)) &&
                      (op.type == ChunkOpType::F || ix.valid(op.bwd));
      if (!ok)
        throw std::invalid_argument(fmt::format("execute: rank {} op {} ({}) names a chunk out of range",
                                                r, i, describe(op)));
    }
  }
}

class Executor : public std::enable_shared_from_this<Executor> {
 public:
  Executor(sim::Engine& engine, const Schedule& s, const ExecCosts& costs)
      : engine_(engine), s_(s), costs_(costs), ix_(s) {
    validate_shape(s_, ix_);
    if (!costs_.duration) throw std::invalid_argument("execute: ExecCosts::duration is empty");
    const std::size_t n = ix_.size();
    fwd_input_.assign(n, 0);
    fwd_done_.assign(n, 0);
    grad_input_.assign(n, 0);
    bwd_done_.assign(n, 0);
    const auto ranks = static_cast<std::size_t>(s_.ranks);
    next_.assign(ranks, 0);
    busy_.assign(ranks, 0);
    live_.assign(ranks, 0);
    owed_w_.assign(ranks, 0);
    start_ = engine_.now();
    result_.busy_per_rank.assign(ranks, Time::zero());
    result_.peak_activations_per_rank.assign(ranks, 0);
    result_.peak_deferred_weight_per_rank.assign(ranks, 0);
    result_.timeline.resize(ranks);
    for (std::size_t r = 0; r < ranks; ++r) result_.timeline[r].reserve(s_.per_rank[r].size());
  }

  // After an exception escapes the run, events still queued in a caller's
  // engine must not touch the schedule or the costs, which may be gone.
  void abort() { aborted_ = true; }

  void begin() {
    for (int r = 0; r < s_.ranks; ++r) try_start(r);
  }

  ExecResult finish() {
    for (int r = 0; r < s_.ranks; ++r) {
      const auto& ops = s_.per_rank[static_cast<std::size_t>(r)];
      const std::size_t i = next_[static_cast<std::size_t>(r)];
      if (i < ops.size())
        throw std::logic_error(fmt::format(
            "pipeline schedule deadlock: rank {} is stuck at op {} ({}, phase '{}'): {}", r, i,
            describe(ops[i]), ops[i].phase, waiting_for(ops[i])));
    }
    Time last = start_;
    for (const auto& line : result_.timeline)
      for (const auto& t : line) last = max(last, t.end);
    result_.makespan = last - start_;
    result_.bubble_per_rank.clear();
    for (Time b : result_.busy_per_rank) result_.bubble_per_rank.push_back(result_.makespan - b);
    return std::move(result_);
  }

 private:
  bool forward_ready(const ChunkRef& c) const {
    return c.stage == 0 || fwd_input_[ix_(c)] != 0;
  }
  bool backward_ready(const ChunkRef& c) const {
    return fwd_done_[ix_(c)] != 0 && (c.stage == s_.stages - 1 || grad_input_[ix_(c)] != 0);
  }
  bool ready(const ScheduleOp& op) const {
    switch (op.type) {
      case ChunkOpType::F: return forward_ready(op.fwd);
      case ChunkOpType::B:
      case ChunkOpType::BW: return backward_ready(op.bwd);
      case ChunkOpType::W: return bwd_done_[ix_(op.bwd)] != 0;
      case ChunkOpType::FB: return forward_ready(op.fwd) && backward_ready(op.bwd);
    }
    return false;
  }

  std::string waiting_for(const ScheduleOp& op) const {
    std::vector<std::string> why;
    if (has_forward(op.type) && !forward_ready(op.fwd))
      why.push_back(fmt::format("activation of micro-batch {} dir {} from stage {}",
                                op.fwd.microbatch, op.fwd.direction, op.fwd.stage - 1));
    if (op.type == ChunkOpType::W) {
      if (bwd_done_[ix_(op.bwd)] == 0) why.push_back("its input backward (B)");
    } else if (op.type != ChunkOpType::F) {
      if (fwd_done_[ix_(op.bwd)] == 0) why.push_back("its own forward");
      if (op.bwd.stage != s_.stages - 1 && grad_input_[ix_(op.bwd)] == 0)
        why.push_back(fmt::format("gradient of micro-batch {} dir {} from stage {}",
                                  op.bwd.microbatch, op.bwd.direction, op.bwd.stage + 1));
    }
    std::string text = "waiting for ";
    for (std::size_t i = 0; i < why.size(); ++i) text += (i ? " and " : "") + why[i];
    return why.empty() ? "ready but never started" : text;
  }

  void try_start(int r) {
    const auto ru = static_cast<std::size_t>(r);
    const auto& ops = s_.per_rank[ru];
    if (busy_[ru] || next_[ru] >= ops.size()) return;
    const std::size_t i = next_[ru];
    const ScheduleOp& op = ops[i];
    if (!ready(op)) return;
    const Time d = costs_.duration(op, r);
    if (d < Time::zero())
      throw std::invalid_argument(
          fmt::format("execute: negative duration for rank {} op {} ({})", r, i, describe(op)));
    busy_[ru] = 1;
    const Time now = engine_.now();
    result_.timeline[ru].push_back(OpTiming{r, static_cast<int>(i), now, now + d});
    result_.busy_per_rank[ru] += d;
    auto self = shared_from_this();
    engine_.schedule(d, [self, r] {
      if (!self->aborted_) self->complete(r);
    });
  }

  // Makes the output of `from` (an activation when forward, else a gradient)
  // available to the neighbouring chunk `to` after the transfer time.
  void deliver(const ChunkRef& from, const ChunkRef& to, bool forward) {
    const int src = s_.rank_of(from);
    const int dst = s_.rank_of(to);
    Time delay = Time::zero();
    if (src != dst && costs_.p2p) delay = costs_.p2p(src, dst, forward);
    if (delay < Time::zero())
      throw std::invalid_argument(fmt::format("execute: negative p2p time {} -> {}", src, dst));
    const std::size_t k = ix_(to);
    if (delay == Time::zero()) {
      arrive(k, dst, forward);
      return;
    }
    auto self = shared_from_this();
    engine_.schedule(delay, [self, k, dst, forward] {
      if (!self->aborted_) self->arrive(k, dst, forward);
    });
  }

  void arrive(std::size_t k, int dst, bool forward) {
    (forward ? fwd_input_ : grad_input_)[k] = 1;
    try_start(dst);
  }

  void forward_done(const ChunkRef& c, int r) {
    const auto ru = static_cast<std::size_t>(r);
    fwd_done_[ix_(c)] = 1;
    int& peak = result_.peak_activations_per_rank[ru];
    peak = std::max(peak, ++live_[ru]);
    if (c.stage + 1 < s_.stages) deliver(c, ChunkRef{c.stage + 1, c.microbatch, c.direction}, true);
  }

  void input_backward_done(const ChunkRef& c, int r) {
    bwd_done_[ix_(c)] = 1;
    --live_[static_cast<std::size_t>(r)];
    if (c.stage > 0) deliver(c, ChunkRef{c.stage - 1, c.microbatch, c.direction}, false);
  }

  void complete(int r) {
    const auto ru = static_cast<std::size_t>(r);
    const ScheduleOp& op = s_.per_rank[ru][next_[ru]];
    switch (op.type) {
      case ChunkOpType::F: forward_done(op.fwd, r); break;
      case ChunkOpType::B: {
        input_backward_done(op.bwd, r);
        int& peak = result_.peak_deferred_weight_per_rank[ru];
        peak = std::max(peak, ++owed_w_[ru]);
        break;
      }
      case ChunkOpType::BW: input_backward_done(op.bwd, r); break;
      case ChunkOpType::W: --owed_w_[ru]; break;
      case ChunkOpType::FB:
        forward_done(op.fwd, r);  // counted first: both chunks are resident
        input_backward_done(op.bwd, r);
        break;
    }
    busy_[ru] = 0;
    ++next_[ru];
    try_start(r);
  }

  sim::Engine& engine_;
  const Schedule& s_;
  const ExecCosts& costs_;
  ChunkIndex ix_;
  Time start_;
  std::vector<unsigned char> fwd_input_;   // activation has arrived at the chunk's rank
  std::vector<unsigned char> fwd_done_;    // forward finished
  std::vector<unsigned char> grad_input_;  // output gradient has arrived
  std::vector<unsigned char> bwd_done_;    // input backward finished
  std::vector<std::size_t> next_;          // next op index per rank
  std::vector<unsigned char> busy_;
  std::vector<int> live_;    // chunks with forward done and input backward not
  std::vector<int> owed_w_;  // chunks with B done and W not
  ExecResult result_;
  bool aborted_ = false;
};

}  // namespace

ExecResult execute(sim::Engine& engine, const Schedule& schedule, const ExecCosts& costs) {
  auto ex = std::make_shared<Executor>(engine, schedule, costs);
  try {
    ex->begin();
    engine.run();
  } catch (...) {
    ex->abort();
    throw;
  }
  return ex->finish();
}

ExecResult execute(const Schedule& schedule, const ExecCosts& costs) {
  sim::Engine engine;
  return execute(engine, schedule, costs);
}

std::vector<std::string> check_invariants(const Schedule& s, const ExecResult& result) {
  std::vector<std::string> problems;
  const ChunkIndex ix(s);
  if (static_cast<int>(s.per_rank.size()) != s.ranks || s.stages < 1) {
    problems.push_back(fmt::format("schedule has ranks={} stages={} but {} rank lists", s.ranks,
                                   s.stages, s.per_rank.size()));
    return problems;
  }
  if (result.timeline.size() != s.per_rank.size()) {
    problems.push_back("result timeline has a different number of ranks than the schedule");
    return problems;
  }

  // Per chunk: where and when each pass ran.
  struct Pass {
    int count = 0;
    int rank = -1;
    int index = -1;
    Time start;
    Time end;
  };
  const std::size_t n = ix.size();
  std::vector<Pass> fwd(n), bin(n), wgt(n);
  auto note = [](Pass& p, int r, int i, const OpTiming* t) {
    ++p.count;
    p.rank = r;
    p.index = i;
    if (t) {
      p.start = t->start;
      p.end = t->end;
    }
  };

  for (int r = 0; r < s.ranks; ++r) {
    const auto& ops = s.per_rank[static_cast<std::size_t>(r)];
    const auto& line = result.timeline[static_cast<std::size_t>(r)];
    if (line.size() != ops.size())
      problems.push_back(
          fmt::format("rank {}: {} of {} ops executed", r, line.size(), ops.size()));
    for (std::size_t i = 0; i < ops.size(); ++i) {
      const ScheduleOp& op = ops[i];
      const OpTiming* t = i < line.size() ? &line[i] : nullptr;
      if (t && (t->index != static_cast<int>(i) || t->rank != r || t->end < t->start))
        problems.push_back(fmt::format("rank {} op {}: malformed timing entry", r, i));
      if (t && i > 0 && i - 1 < line.size() && t->start < line[i - 1].end)
        problems.push_back(fmt::format("rank {} op {} starts before op {} ends", r, i, i - 1));
      auto check_chunk = [&](const ChunkRef& c) {
        if (!ix.valid(c)) {
          problems.push_back(fmt::format("rank {} op {} ({}): chunk out of range", r, i, describe(op)));
          return false;
        }
        if (s.rank_of(c) != r) {
          problems.push_back(fmt::format("rank {} op {} ({}): chunk belongs to rank {}", r, i,
                                         describe(op), s.rank_of(c)));
        }
        return true;
      };
      const int ii = static_cast<int>(i);
      if (has_forward(op.type) && check_chunk(op.fwd)) note(fwd[ix(op.fwd)], r, ii, t);
      if (op.type != ChunkOpType::F && check_chunk(op.bwd)) {
        const std::size_t k = ix(op.bwd);
        if (has_input_backward(op.type)) note(bin[k], r, ii, t);
        if (op.type != ChunkOpType::B) note(wgt[k], r, ii, t);
      }
    }
  }

  const bool timed = problems.empty();
  for (int d = 0; d < ix.directions; ++d) {
    for (int st = 0; st < ix.stages; ++st) {
      for (int mb = 0; mb < ix.per_direction; ++mb) {
        const ChunkRef c{st, mb, d};
        const std::size_t k = ix(c);
        const std::string name = fmt::format("chunk mb {} dir {} stage {}", mb, d, st);
        if (fwd[k].count != 1)
          problems.push_back(fmt::format("{}: {} forwards (expected 1)", name, fwd[k].count));
        if (bin[k].count != 1)
          problems.push_back(fmt::format("{}: {} input backwards (expected 1)", name, bin[k].count));
        if (wgt[k].count != 1)
          problems.push_back(fmt::format("{}: {} weight backwards (expected 1)", name, wgt[k].count));
        if (fwd[k].count != 1 || bin[k].count != 1 || wgt[k].count != 1) continue;
        if (wgt[k].rank != bin[k].rank || wgt[k].index < bin[k].index)
          problems.push_back(fmt::format("{}: W is not after its B on the same rank", name));
        if (!timed) continue;
        if (bin[k].start < fwd[k].end)
          problems.push_back(fmt::format("{}: backward starts before its forward ends", name));
        if (wgt[k].index != bin[k].index && wgt[k].start < bin[k].end)
          problems.push_back(fmt::format("{}: W starts before its B ends", name));
        if (st > 0) {
          const std::size_t p = ix(ChunkRef{st - 1, mb, d});
          if (fwd[p].count == 1 && fwd[k].start < fwd[p].end)
            problems.push_back(fmt::format("{}: forward starts before stage {} forward ends", name, st - 1));
        }
        if (st + 1 < ix.stages) {
          const std::size_t q = ix(ChunkRef{st + 1, mb, d});
          if (bin[q].count == 1 && bin[k].start < bin[q].end)
            problems.push_back(
                fmt::format("{}: backward starts before stage {} backward ends", name, st + 1));
        }
      }
    }
  }
  return problems;
}

}  // namespace trainsim::model
