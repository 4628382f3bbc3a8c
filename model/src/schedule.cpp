#include "trainsim/model/schedule.hpp"

#include <algorithm>
#include <deque>
#include <stdexcept>
#include <string>

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
  switch (kind) {
    case ScheduleKind::Interleaved: return ranks > 0 ? c.stage % ranks : 0;
    case ScheduleKind::DualPipe: return c.direction == 1 ? stages - 1 - c.stage : c.stage;
    case ScheduleKind::DualPipeV: return c.stage < ranks ? c.stage : 2 * ranks - 1 - c.stage;
    case ScheduleKind::GPipe:
    case ScheduleKind::OneFOneB:
    case ScheduleKind::ZB1P: break;
  }
  return c.stage;
}

std::vector<int> Schedule::stages_of_rank(int rank) const {
  std::vector<int> out;
  if (rank < 0 || rank >= ranks) return out;
  switch (kind) {
    case ScheduleKind::Interleaved:
      for (int c = 0; c < virtual_stages; ++c) out.push_back(rank + c * ranks);
      break;
    case ScheduleKind::DualPipe: out = {rank, ranks - 1 - rank}; break;
    case ScheduleKind::DualPipeV: out = {rank, 2 * ranks - 1 - rank}; break;
    case ScheduleKind::GPipe:
    case ScheduleKind::OneFOneB:
    case ScheduleKind::ZB1P: out = {rank}; break;
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

namespace {

ScheduleOp forward_op(const ChunkRef& c, const char* phase) {
  return {ChunkOpType::F, c, ChunkRef{}, phase};
}
ScheduleOp backward_op(ChunkOpType t, const ChunkRef& c, const char* phase) {
  return {t, ChunkRef{}, c, phase};
}

// ---------------------------------------------------------------------------
// GPipe (Huang et al. 2019): every rank runs the forwards of all micro-batches,
// then their full backwards. Rank r holds stage r. Backwards go in micro-batch
// order, so the last rank starts the backward of micro-batch 0 as soon as its
// last forward ends; every rank holds all m activations at the turn.
// ---------------------------------------------------------------------------
std::vector<ScheduleOp> gpipe_rank(int m, int rank) {
  std::vector<ScheduleOp> ops;
  ops.reserve(static_cast<std::size_t>(2 * m));
  // Forward: m forwards.
  for (int mb = 0; mb < m; ++mb) ops.push_back(forward_op(ChunkRef{rank, mb, 0}, "forward"));
  // Backward: m full backwards.
  for (int mb = 0; mb < m; ++mb)
    ops.push_back(backward_op(ChunkOpType::BW, ChunkRef{rank, mb, 0}, "backward"));
  return ops;
}

// ---------------------------------------------------------------------------
// 1F1B (PipeDream-Flush / Megatron-LM non-interleaved schedule).
// Rank r holds stage r. Each backward is a full backward (BW).
// ---------------------------------------------------------------------------
std::vector<ScheduleOp> one_f_one_b_rank(int pp, int m, int rank) {
  std::vector<ScheduleOp> ops;
  ops.reserve(static_cast<std::size_t>(2 * m));
  int next_f = 0;
  int next_b = 0;
  auto forward = [&](const char* phase) { ops.push_back(forward_op(ChunkRef{rank, next_f++, 0}, phase)); };
  auto backward = [&](const char* phase) {
    ops.push_back(backward_op(ChunkOpType::BW, ChunkRef{rank, next_b++, 0}, phase));
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
// Interleaved 1F1B (Narayanan et al. 2021, "Efficient Large-Scale Language
// Model Training on GPU Clusters Using Megatron-LM", section 2.2.2; Megatron-
// LM's forward_backward_pipelining_with_interleaving). Rank r holds the v
// model chunks (virtual stages) r, r+pp, ..., r+(v-1)pp.
//
// The rank runs m*v chunk-forwards and as many chunk-backwards, numbered by a
// "virtual micro-batch" k. Forwards go through the chunks in groups of pp
// micro-batches: k = 0..pp-1 are micro-batches 0..pp-1 on chunk 0, k =
// pp..2pp-1 the same micro-batches on chunk 1, and so on, then the next group
// of pp micro-batches (this is why m must be a multiple of pp). Backwards go
// the same way through the chunks in reverse order (the last chunk first).
// ---------------------------------------------------------------------------
struct VirtualIndex {
  int pp, v;
  int chunk(int k, bool forward) const {
    const int c = (k % (pp * v)) / pp;
    return forward ? c : v - 1 - c;
  }
  int microbatch(int k) const { return (k / (pp * v)) * pp + k % pp; }
};

std::vector<ScheduleOp> interleaved_rank(int pp, int v, int m, int rank) {
  const VirtualIndex vi{pp, v};
  const int total = m * v;  // chunk-forwards (and chunk-backwards) on this rank
  std::vector<ScheduleOp> ops;
  ops.reserve(static_cast<std::size_t>(2 * total));
  auto chunk = [&](int k, bool fwd) {
    return ChunkRef{vi.chunk(k, fwd) * pp + rank, vi.microbatch(k), 0};
  };
  int next_f = 0;
  int next_b = 0;
  auto forward = [&](const char* phase) { ops.push_back(forward_op(chunk(next_f++, true), phase)); };
  auto backward = [&](const char* phase) {
    ops.push_back(backward_op(ChunkOpType::BW, chunk(next_b++, false), phase));
  };

  // Warm-up: the first backward this rank runs is of micro-batch 0 on its
  // last chunk (stage (v-1)pp + r). Before it can arrive, the rank runs the
  // first pp micro-batches through its v-1 earlier chunks ((v-1)*pp
  // forwards), plus two forward slots for each of the pp-r-1 ranks after it
  // (one while micro-batch 0 goes down the last chunks to the end, one while
  // its gradient comes back): (pp-r-1)*2 + (v-1)*pp, capped at m*v.
  const int warmup = std::min((pp - rank - 1) * 2 + (v - 1) * pp, total);
  for (int i = 0; i < warmup; ++i) forward("warmup");

  // Steady state: one chunk-forward then one chunk-backward for the
  // m*v - warmup chunk-forwards not yet run.
  const int steady = total - warmup;
  for (int i = 0; i < steady; ++i) {
    forward("steady");
    backward("steady");
  }

  // Cool-down: the backwards of the warm-up chunks.
  const int cooldown = warmup;
  for (int i = 0; i < cooldown; ++i) backward("cooldown");
  return ops;
}

// ---------------------------------------------------------------------------
// ZB-H1 (Qi et al., "Zero Bubble Pipeline Parallelism", ICLR 2024, section 2.1
// and Figure 3; ZB1P in the DualPipe table). Rank r holds stage r; every
// backward is split into B (input gradient) and W (weight gradient). The
// schedule is 1F1B with the W passes started late: rank r delays its first W
// by r micro-batches, so the B passes (the critical path back to rank 0) run
// as early as in a pipeline of B only, and the r W passes still owed at the
// end fill the cool-down bubble that 1F1B has there. Each rank holds as many
// in-flight micro-batches as in 1F1B (pp-r), so memory is 1F1B's. This is the
// paper's uniform split ("exact semantics" in its Megatron-DeepSpeed port):
// every backward is a B then, later, a W, the W's in the order of their B's.
// ---------------------------------------------------------------------------
std::vector<ScheduleOp> zb_h1_rank(int pp, int m, int rank) {
  std::vector<ScheduleOp> ops;
  ops.reserve(static_cast<std::size_t>(3 * m));
  int next_f = 0;
  int next_b = 0;
  int next_w = 0;
  auto forward = [&](const char* phase) { ops.push_back(forward_op(ChunkRef{rank, next_f++, 0}, phase)); };
  auto input_backward = [&](const char* phase) {
    ops.push_back(backward_op(ChunkOpType::B, ChunkRef{rank, next_b++, 0}, phase));
  };
  auto weight = [&](const char* phase) {  // the oldest W owed (FIFO)
    ops.push_back(backward_op(ChunkOpType::W, ChunkRef{rank, next_w++, 0}, phase));
  };

  // Warm-up: as 1F1B, pp-r-1 forwards (fewer if m is smaller).
  const int warmup = std::min(pp - rank - 1, m);
  for (int i = 0; i < warmup; ++i) forward("warmup");

  // Deferred-W steady state: F then B, no W yet, r times: the W's of the
  // first r micro-batches are postponed to the end.
  const int deferred = std::min(rank, m - warmup);
  for (int i = 0; i < deferred; ++i) {
    forward("steady_defer_w");
    input_backward("steady_defer_w");
  }

  // Steady state: F, B, then the oldest owed W, for the micro-batches left.
  const int steady = m - warmup - deferred;
  for (int i = 0; i < steady; ++i) {
    forward("steady");
    input_backward("steady");
    weight("steady");
  }

  // Cool-down: the B's of the warm-up micro-batches, each followed by an owed W.
  const int cooldown = warmup;
  for (int i = 0; i < cooldown; ++i) {
    input_backward("cooldown");
    weight("cooldown");
  }

  // W flush: the `deferred` W's still owed fill the tail bubble.
  const int flush = deferred;
  for (int i = 0; i < flush; ++i) weight("flush_w");
  return ops;
}

// ---------------------------------------------------------------------------
// DualPipe and DualPipeV builder. The reference code (deepseek-ai/DualPipe,
// dualpipe/dualpipe.py DualPipe.step and dualpipe/dualpipev.py
// DualPipeV.step) speaks of a rank-local "phase" 0 or 1, each naming one of
// the two chunks the rank holds, and keeps per-phase FIFO counters of the next
// micro-batch to run forward and backward, and a FIFO of deferred weight
// gradients. The builder does the same; `phase_chunk` maps a phase to the
// chunk's stage and direction.
//   DualPipe: in the first half of the ranks phase 0 is direction 0 (the
//     stream that enters at rank 0, i.e. the nearer end) and phase 1 is
//     direction 1; in the second half the two are swapped, so phase 0 is
//     always the stream entering at the nearer end.
//   DualPipeV: phase 0 is the down leg (stage d), phase 1 the up leg (stage
//     2R-1-d); one direction.
// ---------------------------------------------------------------------------
class PhasedRank {
 public:
  PhasedRank(ChunkRef phase0, ChunkRef phase1) : phase_chunk_{phase0, phase1} {}

  // Forward of the next micro-batch of `phase`.
  void forward(int phase, const char* name) { ops_.push_back(forward_op(take_forward(phase), name)); }
  // Backward of the next micro-batch of `phase`; with zero_bubble the weight
  // gradient is deferred to a later weight() (op B), else it is included (BW).
  void backward(int phase, bool zero_bubble, const char* name) {
    const ChunkRef c = take_backward(phase);
    if (zero_bubble) {
      ops_.push_back(backward_op(ChunkOpType::B, c, name));
      deferred_.push_back(c);
    } else {
      ops_.push_back(backward_op(ChunkOpType::BW, c, name));
    }
  }
  // The oldest deferred weight gradient (the reference's queue is FIFO).
  void weight(const char* name) {
    if (deferred_.empty()) throw std::logic_error("DualPipe builder: W with no deferred B");
    ops_.push_back(backward_op(ChunkOpType::W, deferred_.front(), name));
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
  ChunkRef chunk(int phase, int mb) const {
    ChunkRef c = phase_chunk_[phase];
    c.microbatch = mb;
    return c;
  }
  ChunkRef take_forward(int phase) { return chunk(phase, next_f_[phase]++); }
  ChunkRef take_backward(int phase) { return chunk(phase, next_b_[phase]++); }

  ChunkRef phase_chunk_[2];
  int next_f_[2] = {0, 0};
  int next_b_[2] = {0, 0};
  std::deque<ChunkRef> deferred_;
  std::vector<ScheduleOp> ops_;
};

// ---------------------------------------------------------------------------
// DualPipe (DeepSeek-V3 report section 3.2.1; reference implementation
// deepseek-ai/DualPipe, dualpipe/dualpipe.py, DualPipe.step).
// ---------------------------------------------------------------------------
// The eight steps of DualPipe's reference implementation, shared by DualPipe
// and DualPipeV (which is DualPipe cut in half: device d of DualPipeV with n
// devices and m micro-batches runs rank d's program of DualPipe with 2n ranks
// and 2m micro-batches). Stream 0 of `b` is the near stream (DualPipe: the
// direction that starts on this rank's half; DualPipeV: the down leg of the
// V), stream 1 the far one (the other direction; the up leg).
//   half_ranks  ranks per half (DualPipe pp/2; DualPipeV n devices)
//   half_rank   distance from the nearer end (DualPipe min(r, pp-1-r); DualPipeV d)
//   half_chunks micro-batches per stream (DualPipe m/2; DualPipeV m)
//   middle      the rank(s) at the turning point, which do not overlap their first F&B pair
void dual_eight_steps(PhasedRank& b, int half_ranks, int half_rank, int half_chunks, bool middle) {
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
  //   half_chunks - 2 * half_ranks + half_rank + 1 (>= 1 because half_chunks >= pp).
  const int step4 = half_chunks - 2 * half_ranks + half_rank + 1;
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

}

std::vector<ScheduleOp> dualpipe_rank(int pp, int num_chunks, int rank) {
  const int half_ranks = pp / 2;
  // Distance from the nearer end of the pipeline: ranks r and pp-1-r run
  // mirror-image programs.
  const int half_rank = std::min(rank, pp - 1 - rank);
  const int half_chunks = num_chunks / 2;  // micro-batches per direction
  // The two ranks in the middle start their first backward straight after
  // their first forwards, and do not overlap the first F&B pair.
  const bool middle = rank == half_ranks - 1 || rank == half_ranks;
  const ChunkRef dir0{rank, 0, 0};
  const ChunkRef dir1{pp - 1 - rank, 0, 1};
  const bool second_half = rank >= half_ranks;
  PhasedRank b(second_half ? dir1 : dir0, second_half ? dir0 : dir1);

  dual_eight_steps(b, half_ranks, half_rank, half_chunks, middle);
  return b.finish();
}

// ---------------------------------------------------------------------------
// DualPipeV (deepseek-ai/DualPipe, dualpipe/dualpipev.py, DualPipeV.step; the
// "cut-in-half" DualPipe of Sea AI Lab). `n` devices, 2n stages in a V: device
// d runs stage d on the way down (phase 0) and stage 2n-1-d on the way back
// up (phase 1); every micro-batch goes down the V and up again, so the last
// device (d = n-1) holds the bottom of the V and device 0 holds the loss.
// The eight steps are DualPipe's with "distance from the nearer end" replaced
// by the device index d: the far stream of DualPipe becomes the up leg.
// ---------------------------------------------------------------------------
std::vector<ScheduleOp> dualpipev_rank(int n, int m, int d) {
  PhasedRank b(ChunkRef{d, 0, 0}, ChunkRef{2 * n - 1 - d, 0, 0});

  // Device d is DualPipe's rank d at distance d from the nearer end; the
  // bottom of the V (d = n-1) is the turning point.
  dual_eight_steps(b, n, d, m, d == n - 1);
  return b.finish();
}

// The names the papers use, for messages.
const char* display_name(ScheduleKind kind) {
  switch (kind) {
    case ScheduleKind::GPipe: return "GPipe";
    case ScheduleKind::OneFOneB: return "1F1B";
    case ScheduleKind::Interleaved: return "Interleaved 1F1B";
    case ScheduleKind::ZB1P: return "ZB-H1";
    case ScheduleKind::DualPipe: return "DualPipe";
    case ScheduleKind::DualPipeV: return "DualPipeV";
  }
  return "?";
}

[[noreturn]] void reject(ScheduleKind kind, const std::string& what) {
  throw std::invalid_argument(fmt::format("{} schedule: {}", display_name(kind), what));
}

}  // namespace

Schedule make_schedule(ScheduleKind kind, int ranks, int microbatches, int virtual_stages) {
  if (ranks < 1) reject(kind, fmt::format("ranks={} must be >= 1", ranks));
  if (microbatches < 1) reject(kind, fmt::format("microbatches={} must be >= 1", microbatches));
  if (kind != ScheduleKind::Interleaved && virtual_stages != 1)
    reject(kind, fmt::format("virtual_stages={} must be 1 (virtual stages apply to the interleaved "
                             "schedule only{})",
                             virtual_stages,
                             kind == ScheduleKind::DualPipeV ? "; DualPipeV always runs 2 stages per device"
                                                             : ""));
  Schedule s;
  s.kind = kind;
  s.ranks = ranks;
  s.stages = ranks;
  s.microbatches = microbatches;
  s.virtual_stages = 1;
  s.per_rank.reserve(static_cast<std::size_t>(ranks));
  switch (kind) {
    case ScheduleKind::GPipe:
      for (int r = 0; r < ranks; ++r) s.per_rank.push_back(gpipe_rank(microbatches, r));
      return s;
    case ScheduleKind::OneFOneB:
      for (int r = 0; r < ranks; ++r) s.per_rank.push_back(one_f_one_b_rank(ranks, microbatches, r));
      return s;
    case ScheduleKind::Interleaved:
      if (virtual_stages < 2)
        reject(kind, fmt::format("virtual_stages={} must be >= 2 (model chunks per rank; use 1F1B "
                                 "for one chunk)",
                                 virtual_stages));
      if (microbatches % ranks != 0)
        reject(kind, fmt::format("microbatches={} must be a multiple of ranks={} (Megatron-LM's "
                                 "requirement: micro-batches go through the chunks in groups of ranks)",
                                 microbatches, ranks));
      s.virtual_stages = virtual_stages;
      s.stages = ranks * virtual_stages;
      for (int r = 0; r < ranks; ++r)
        s.per_rank.push_back(interleaved_rank(ranks, virtual_stages, microbatches, r));
      return s;
    case ScheduleKind::ZB1P:
      for (int r = 0; r < ranks; ++r) s.per_rank.push_back(zb_h1_rank(ranks, microbatches, r));
      return s;
    case ScheduleKind::DualPipe:
      if (ranks % 2 != 0) reject(kind, fmt::format("ranks={} must be even and >= 2", ranks));
      if (microbatches % 2 != 0 || microbatches < 2 * ranks)
        reject(kind, fmt::format("microbatches={} must be even and >= 2*ranks={} "
                                 "(at least ranks micro-batches per direction)",
                                 microbatches, 2 * ranks));
      for (int r = 0; r < ranks; ++r) s.per_rank.push_back(dualpipe_rank(ranks, microbatches, r));
      return s;
    case ScheduleKind::DualPipeV:
      if (microbatches < 2 * ranks)
        reject(kind, fmt::format("microbatches={} must be >= 2*ranks={} (ranks counts devices; the V "
                                 "has 2*ranks stages)",
                                 microbatches, 2 * ranks));
      s.stages = 2 * ranks;
      for (int r = 0; r < ranks; ++r) s.per_rank.push_back(dualpipev_rank(ranks, microbatches, r));
      return s;
  }
  throw std::invalid_argument("make_schedule: unknown schedule kind");
}

}  // namespace trainsim::model
