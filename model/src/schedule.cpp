#include "trainsim/model/schedule.hpp"

#include <algorithm>
#include <deque>
#include <stdexcept>

#include <fmt/format.h>

namespace trainsim::model {

const char* to_string(ChunkOpType t) {
  switch (t) {
    case ChunkOpType::F: return "F";
    case ChunkOpType::B: return "B";
    case ChunkOpType::BW: return "BW";
    case ChunkOpType::W: return "W";
    case ChunkOpType::FB: return "FB";
  }
  return "?";
}

namespace {

std::string chunk_text(const ChunkRef& c) {
  return fmt::format("{}/d{}/s{}", c.microbatch, c.direction, c.stage);
}

}  // namespace

std::string describe(const ScheduleOp& op) {
  switch (op.type) {
    case ChunkOpType::F: return fmt::format("F {}", chunk_text(op.fwd));
    case ChunkOpType::FB:
      return fmt::format("FB F {} + BW {}", chunk_text(op.fwd), chunk_text(op.bwd));
    case ChunkOpType::B:
    case ChunkOpType::BW:
    case ChunkOpType::W: return fmt::format("{} {}", to_string(op.type), chunk_text(op.bwd));
  }
  return "?";
}

int Schedule::rank_of(const ChunkRef& c) const {
  if (kind == ScheduleKind::DualPipe && c.direction == 1) return stages - 1 - c.stage;
  return c.stage;
}

namespace {

// ---------------------------------------------------------------------------
// 1F1B (PipeDream-Flush / Megatron-LM non-interleaved schedule).
// Rank r holds stage r. Each backward is a full backward (BW).
// ---------------------------------------------------------------------------
std::vector<ScheduleOp> one_f_one_b_rank(int pp, int m, int rank) {
  std::vector<ScheduleOp> ops;
  ops.reserve(static_cast<std::size_t>(2 * m));
  int next_f = 0;
  int next_b = 0;
  auto forward = [&](const char* phase) {
    ops.push_back({ChunkOpType::F, ChunkRef{rank, next_f++, 0}, ChunkRef{}, phase});
  };
  auto backward = [&](const char* phase) {
    ops.push_back({ChunkOpType::BW, ChunkRef{}, ChunkRef{rank, next_b++, 0}, phase});
  };

  // Warm-up: the first backward reaches rank r only after the first
  // micro-batch has gone through the pp-r-1 later stages, so rank r fills
  // that time with pp-r-1 forwards (fewer if there are fewer micro-batches).
  const int warmup = std::min(pp - rank - 1, m);
  for (int i = 0; i < warmup; ++i) forward("warmup");

  // Steady state: one forward then one backward, for the m - warmup
  // micro-batches not yet started; activations held stay at warmup + 1.
  const int steady = m - warmup;
  for (int i = 0; i < steady; ++i) {
    forward("steady");
    backward("steady");
  }

  // Cool-down: the backwards of the warm-up micro-batches.
  const int cooldown = warmup;
  for (int i = 0; i < cooldown; ++i) backward("cooldown");
  return ops;
}

// ---------------------------------------------------------------------------
// DualPipe (DeepSeek-V3 report section 3.2.1; reference implementation
// deepseek-ai/DualPipe, dualpipe/dualpipe.py, DualPipe.step).
//
// The reference code speaks of a rank-local "phase": in the first half of the
// ranks phase 0 is direction 0 (the stream that enters at rank 0, i.e. the
// nearer end) and phase 1 is direction 1; in the second half the two are
// swapped, so phase 0 is always the stream entering at the nearer end. The
// builder below takes phases and maps them to directions the same way, and
// keeps per-direction FIFO counters of the next micro-batch to run forward and
// backward, and a FIFO of deferred weight gradients, as the reference does.
// ---------------------------------------------------------------------------
class DualPipeRank {
 public:
  DualPipeRank(int pp, int rank) : pp_(pp), rank_(rank), second_half_(rank >= pp / 2) {}

  // Forward of the next micro-batch of `phase`.
  void forward(int phase, const char* name) {
    ops_.push_back({ChunkOpType::F, take_forward(phase), ChunkRef{}, name});
  }
  // Backward of the next micro-batch of `phase`; with zero_bubble the weight
  // gradient is deferred to a later weight() (op B), else it is included (BW).
  void backward(int phase, bool zero_bubble, const char* name) {
    const ChunkRef c = take_backward(phase);
    if (zero_bubble) {
      ops_.push_back({ChunkOpType::B, ChunkRef{}, c, name});
      deferred_.push_back(c);
    } else {
      ops_.push_back({ChunkOpType::BW, ChunkRef{}, c, name});
    }
  }
  // The oldest deferred weight gradient (the reference's queue is FIFO).
  void weight(const char* name) {
    if (deferred_.empty()) throw std::logic_error("DualPipe builder: W with no deferred B");
    ops_.push_back({ChunkOpType::W, ChunkRef{}, deferred_.front(), name});
    deferred_.pop_front();
  }
  // Forward of `phase_f` overlapped with a full backward of `phase_b`.
  void forward_backward(int phase_f, int phase_b, const char* name) {
    const ChunkRef f = take_forward(phase_f);
    const ChunkRef b = take_backward(phase_b);
    ops_.push_back({ChunkOpType::FB, f, b, name});
  }

  std::vector<ScheduleOp> finish() {
    if (!deferred_.empty()) throw std::logic_error("DualPipe builder: deferred W left over");
    return std::move(ops_);
  }

 private:
  int direction(int phase) const { return phase ^ (second_half_ ? 1 : 0); }
  ChunkRef chunk(int dir, int mb) const {
    return ChunkRef{dir == 0 ? rank_ : pp_ - 1 - rank_, mb, dir};
  }
  ChunkRef take_forward(int phase) {
    const int d = direction(phase);
    return chunk(d, next_f_[d]++);
  }
  ChunkRef take_backward(int phase) {
    const int d = direction(phase);
    return chunk(d, next_b_[d]++);
  }

  int pp_;
  int rank_;
  bool second_half_;
  int next_f_[2] = {0, 0};
  int next_b_[2] = {0, 0};
  std::deque<ChunkRef> deferred_;
  std::vector<ScheduleOp> ops_;
};

std::vector<ScheduleOp> dualpipe_rank(int pp, int num_chunks, int rank) {
  const int half_ranks = pp / 2;
  // Distance from the nearer end of the pipeline: ranks r and pp-1-r run
  // mirror-image programs.
  const int half_rank = std::min(rank, pp - 1 - rank);
  const int half_chunks = num_chunks / 2;  // micro-batches per direction
  // The two ranks in the middle start their first backward straight after
  // their first forwards, and do not overlap the first F&B pair.
  const bool middle = rank == half_ranks - 1 || rank == half_ranks;
  DualPipeRank b(pp, rank);

  // Step 1, nF0 (warm-up): forwards of the near stream until the far stream's
  // first micro-batch arrives; it needs 2 forward slots per rank it still has
  // to cross before reaching this one's mirror position.
  const int step1 = (half_ranks - half_rank - 1) * 2;
  for (int i = 0; i < step1; ++i) b.forward(0, "warmup");

  // Step 2, nF0F1 (interleaved warm-up): alternate near and far forwards,
  // one pair per rank between this one and the nearer end, inclusive.
  const int step2 = half_rank + 1;
  for (int i = 0; i < step2; ++i) {
    b.forward(0, "interleaved_warmup");
    b.forward(1, "interleaved_warmup");
  }

  // Step 3, nB1W1F1 (zero-bubble warm-up): the first far-stream backwards
  // come back; split them into B and W and run the W at once, filling the
  // wait for the next far forward. As long as step 1.
  const int step3 = half_ranks - half_rank - 1;
  for (int i = 0; i < step3; ++i) {
    b.backward(1, /*zero_bubble=*/true, "zero_bubble_warmup");
    b.weight("zero_bubble_warmup");
    b.forward(1, "zero_bubble_warmup");
  }

  // Step 4, nF0B1F1B0 (main F&B): pairs of overlapped forward+backward
  // chunks, alternating which stream is forward. Its length makes each
  // direction's forward total come to half_chunks:
  //   half_chunks - pp + half_rank + 1 (>= 1 because half_chunks >= pp).
  const int step4 = half_chunks - pp + half_rank + 1;
  for (int i = 0; i < step4; ++i) {
    if (i == 0 && middle) {
      // The reference does not overlap this first pair on the middle ranks
      // (to shorten the bubble): a forward, then a full backward.
      b.forward(0, "main_fb");
      b.backward(1, /*zero_bubble=*/false, "main_fb");
    } else {
      b.forward_backward(0, 1, "main_fb");
    }
    b.forward_backward(1, 0, "main_fb");
  }

  // Step 5, nB1F1B0 (first drain): the near stream's forwards are all done;
  // a far backward then a far-forward/near-backward pair. As long as step 1/2.
  const int step5 = half_ranks - half_rank - 1;
  for (int i = 0; i < step5; ++i) {
    b.backward(1, /*zero_bubble=*/false, "drain_b1_f1b0");
    b.forward_backward(1, 0, "drain_b1_f1b0");
  }

  // Step 6, nB1B0 (second drain): all forwards are done; alternate far and
  // near backwards, one pair per rank up to the nearer end. The second half
  // of these half_rank+1 pairs defers its weight gradients (zero bubble);
  // which B of the middle pair is the first deferred one depends on the
  // parity of half_rank, so that exactly half_rank+1 backwards are split.
  const int step6 = half_rank + 1;
  bool zero_bubble = false;
  for (int i = 0; i < step6; ++i) {
    if (i == step6 / 2 && half_rank % 2 == 1) zero_bubble = true;
    b.backward(1, zero_bubble, "drain_b1_b0");
    if (i == step6 / 2 && half_rank % 2 == 0) zero_bubble = true;
    b.backward(0, zero_bubble, "drain_b1_b0");
  }

  // Step 7, nWB0 (zero-bubble cool-down): the remaining near backwards, each
  // preceded by a deferred weight gradient that fills the wait for it.
  const int step7 = half_ranks - half_rank - 1;
  for (int i = 0; i < step7; ++i) {
    b.weight("zero_bubble_cooldown");
    b.backward(0, /*zero_bubble=*/true, "zero_bubble_cooldown");
  }

  // Step 8, nW (cool-down): the weight gradients still deferred; there are
  // half_rank+1 of them (step 6 deferred half_rank+1, step 7 ran as many W
  // as it deferred B).
  const int step8 = half_rank + 1;
  for (int i = 0; i < step8; ++i) b.weight("cooldown");

  return b.finish();
}

}  // namespace

Schedule make_schedule(ScheduleKind kind, int pp, int microbatches) {
  Schedule s;
  s.kind = kind;
  s.ranks = pp;
  s.stages = pp;
  s.microbatches = microbatches;
  switch (kind) {
    case ScheduleKind::OneFOneB:
      if (pp < 1) throw std::invalid_argument(fmt::format("1F1B schedule: pp={} must be >= 1", pp));
      if (microbatches < 1)
        throw std::invalid_argument(
            fmt::format("1F1B schedule: microbatches={} must be >= 1", microbatches));
      for (int r = 0; r < pp; ++r) s.per_rank.push_back(one_f_one_b_rank(pp, microbatches, r));
      return s;
    case ScheduleKind::DualPipe:
      if (pp < 2 || pp % 2 != 0)
        throw std::invalid_argument(
            fmt::format("DualPipe schedule: pp={} must be even and >= 2", pp));
      if (microbatches % 2 != 0 || microbatches < 2 * pp)
        throw std::invalid_argument(fmt::format(
            "DualPipe schedule: microbatches={} must be even and >= 2*pp={} "
            "(at least pp micro-batches per direction)",
            microbatches, 2 * pp));
      for (int r = 0; r < pp; ++r) s.per_rank.push_back(dualpipe_rank(pp, microbatches, r));
      return s;
    case ScheduleKind::GPipe:
    case ScheduleKind::Interleaved:
    case ScheduleKind::ZB1P:
    case ScheduleKind::DualPipeV:
      throw std::invalid_argument(fmt::format("{} schedule: not implemented yet", to_string(kind)));
  }
  throw std::invalid_argument("make_schedule: unknown schedule kind");
}

}  // namespace trainsim::model
