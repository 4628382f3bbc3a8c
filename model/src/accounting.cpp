#include "trainsim/model/accounting.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace trainsim::model {

const char* to_string(LayerKind k) {
  switch (k) {
    case LayerKind::Embedding: return "embedding";
    case LayerKind::Dense: return "dense";
    case LayerKind::Moe: return "moe";
    case LayerKind::Head: return "head";
    case LayerKind::Mtp: return "mtp";
  }
  return "?";
}

namespace {

constexpr double kBf16 = 2.0;
constexpr double kFp32 = 4.0;
// One FP8 element plus its share of the fp32 scale kept per 128 elements
// (1x128 activation tiles, 128x1 for wgrad): 1 + 4/128 bytes.
constexpr double kFp8Tiled = 1.0 + 4.0 / 128.0;
constexpr double kE5m6 = 1.5;  // 12-bit E5M6 (V3 report §3.3.3), power-of-2 scales ignored

std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }
double d(std::int64_t v) { return static_cast<double>(v); }

// ---------------------------------------------------------------------------
// Closed-form sizes (unsharded, per layer). Independent of the op lists so
// the tests can check one against the other.

double ffn_matmul_params(const Architecture& a, std::int64_t width) {
  // SwiGLU: gate, up (h -> w) and down (w -> h); GeLU: up and down.
  const double mats = a.activation == FfnActivation::SwiGLU ? 3.0 : 2.0;
  return mats * d(a.hidden) * d(width);
}

double attention_matmul_params(const Architecture& a) {
  const double h = a.hidden, H = a.heads;
  if (a.attention == AttentionKind::MLA) {
    const MlaConfig& m = *a.mla;
    const double qk = m.qk_nope_head_dim + m.qk_rope_head_dim;
    double p = 0;
    if (m.q_lora_rank > 0) p += h * m.q_lora_rank + d(m.q_lora_rank) * H * qk;  // wq_a, wq_b
    else p += h * H * qk;                                                         // wq
    p += h * (m.kv_lora_rank + m.qk_rope_head_dim);                             // wkv_a
    p += d(m.kv_lora_rank) * H * (m.qk_nope_head_dim + m.v_head_dim);           // wkv_b
    p += H * m.v_head_dim * h;                                                  // wo
    return p;
  }
  const double hd = a.head_dim;
  return h * H * hd + 2.0 * h * a.kv_heads * hd + H * hd * h;  // q, k, v, o
}

double attention_norm_params(const Architecture& a) {
  if (a.attention != AttentionKind::MLA) return 0;
  return a.mla->q_lora_rank + a.mla->kv_lora_rank;  // q_norm, kv_norm
}

// Attention core FLOPs per token, causal: 2 x heads x (qk + v) x seq / 2.
double attention_core_flops_per_token(const Architecture& a, std::int64_t seq) {
  double qk = a.head_dim, v = a.head_dim;
  if (a.attention == AttentionKind::MLA) {
    qk = a.mla->qk_nope_head_dim + a.mla->qk_rope_head_dim;
    v = a.mla->v_head_dim;
  }
  return 2.0 * a.heads * (qk + v) * d(seq) / 2.0;
}

const MoeConfig& require_moe(const Architecture& a) {
  if (!a.moe) throw std::invalid_argument(fmt::format("model '{}' has no MoE layers", a.name));
  return *a.moe;
}

// ---------------------------------------------------------------------------
// Per-GPU dimensions of one micro-batch under the context.

struct Dims {
  std::int64_t b, s;
  std::int64_t T;   // tokens of the micro-batch: rows of TP-sharded GEMMs
  std::int64_t Tn;  // tokens of elementwise work (norms, residuals): T/tp with SP
  std::int64_t Tm;  // tokens entering the MoE block on this GPU: T/tp under TP
  std::int64_t h;
  std::int64_t Hl, KVl;  // query / kv heads on this GPU
  std::int64_t Fl;       // dense FFN width on this GPU
  std::int64_t Vl;       // vocabulary shard on this GPU (padded)
  int tp;
  bool sp;
  bool fp8;
  Precision lin;   // precision of attention/MLP/expert linear layers
  Precision high;  // embedding, output head, MoE gate
  double a_lin;    // bytes per element of a cached Linear input
  double a_act;    // bytes per element of a cached SwiGLU/GeLU input
};

Dims make_dims(const Architecture& a, const OpContext& c) {
  if (c.micro_batch_size < 1 || c.seq_len < 1 || c.tp < 1 || c.ep < 1 || c.gpus_per_node < 1)
    throw std::invalid_argument("OpContext: micro_batch_size, seq_len, tp, ep, gpus_per_node must be >= 1");
  if (a.heads % c.tp != 0)
    throw std::invalid_argument(fmt::format("tp={} does not divide heads={}", c.tp, a.heads));
  Dims x{};
  x.b = c.micro_batch_size;
  x.s = c.seq_len;
  x.T = x.b * x.s;
  x.tp = c.tp;
  x.sp = c.sequence_parallel && c.tp > 1;
  x.Tn = x.sp ? ceil_div(x.T, c.tp) : x.T;
  x.Tm = ceil_div(x.T, c.tp);
  x.h = a.hidden;
  x.Hl = a.heads / c.tp;
  x.KVl = ceil_div(a.kv_heads, c.tp);  // kv heads are replicated when tp > kv_heads
  x.Fl = ceil_div(a.ffn_hidden, c.tp);
  x.Vl = ceil_div(a.vocab, c.tp);
  x.fp8 = c.gemm_precision == Precision::FP8;
  x.lin = c.gemm_precision;
  x.high = x.fp8 ? Precision::BF16 : c.gemm_precision;
  x.a_lin = x.fp8 ? kFp8Tiled : bytes_per_element(c.gemm_precision);
  x.a_act = x.fp8 ? kFp8Tiled : bytes_per_element(c.gemm_precision);
  return x;
}

int ffn_mult(const Architecture& a) { return a.activation == FfnActivation::SwiGLU ? 2 : 1; }

// ---------------------------------------------------------------------------
// Op construction.

Op memory_op(std::string name, Pass pass, double hbm) {
  Op op;
  op.name = std::move(name);
  op.kind = OpKind::Memory;
  op.pass = pass;
  op.hbm_bytes = ByteCount(hbm);
  return op;
}

Op comm_op(std::string name, Pass pass, CommKind kind, double bytes, int group, Precision p) {
  Op op;
  op.name = std::move(name);
  op.kind = OpKind::Comm;
  op.pass = pass;
  op.precision = p;
  op.comm.kind = kind;
  op.comm.bytes = ByteCount(bytes);
  op.comm.group_size = group;
  return op;
}

// A linear layer y = x W^T over `rows` rows (tokens, or routed rows split
// evenly over `groups` experts for a grouped GEMM).
struct Linear {
  std::string name;
  std::int64_t rows = 0;
  std::int64_t out = 0;  // n of the forward GEMM
  std::int64_t in = 0;   // k of the forward GEMM
  std::int64_t groups = 1;
  Precision precision = Precision::BF16;
  bool quantize_input = true;     // FP8: emit the 1x128 quantization of x in forward
  bool wgrad_input_quant = true;  // FP8: 128x1 quantization of x for wgrad (once per shared input)
  bool dgrad_quant = true;        // FP8: quantize dy (false when dy arrives already in FP8)
  bool input_recomputed = false;  // selective recompute re-creates x (so its quantization too)
  bool recomputable = false;      // selective recompute re-runs this forward GEMM
  double model_share = 1.0;       // model FLOPs / FLOPs: 1/tp for TP-replicated layers
};

class Builder {
 public:
  Builder(const Architecture& a, const OpContext& c) : a_(a), c_(c), x_(make_dims(a, c)) {}

  const Dims& dims() const { return x_; }

  // A forward op; its copy is re-emitted into BackwardInput when the
  // recompute policy says so (Full: every op; Selective: `recomputable`).
  void fwd(Op op, bool recomputable) {
    op.pass = Pass::Forward;
    if (c_.recompute == Recompute::Full ||
        (c_.recompute == Recompute::Selective && recomputable)) {
      Op r = op;
      r.name += ".recompute";
      r.pass = Pass::BackwardInput;
      r.recompute = true;
      r.model_flops = Flops(0);
      pending_.push_back(std::move(r));
    }
    fwd_.push_back(std::move(op));
  }
  // Backward work belonging to the forward position reached so far. Segments
  // run in the reverse order of their pushes (data flows backward); the ops
  // inside one segment run in the order given.
  void bwd(std::vector<Op> seg) {
    for (auto& op : seg) op.pass = Pass::BackwardInput;
    bwd_.push_back(std::move(seg));
  }
  void wgt(std::vector<Op> seg) {
    for (auto& op : seg) op.pass = Pass::BackwardWeight;
    wgt_.push_back(std::move(seg));
  }
  // Selective recompute happens per block, at the start of the block's
  // backward. Full recompute re-runs the whole layer before its backward
  // (a block's recompute needs the recomputed output of the block before).
  void end_block() {
    if (c_.recompute == Recompute::Selective) flush();
  }

  std::vector<Op> finish() {
    flush();
    std::vector<Op> out = std::move(fwd_);
    for (auto it = bwd_.rbegin(); it != bwd_.rend(); ++it)
      for (auto& op : *it) out.push_back(std::move(op));
    for (auto it = wgt_.rbegin(); it != wgt_.rend(); ++it)
      for (auto& op : *it) out.push_back(std::move(op));
    return out;
  }

  // ---- building blocks ----------------------------------------------------

  // RMSNorm over rows x width: forward reads x, writes y; backward reads x and
  // dy, writes dx. Recomputed under selective recompute (V3: all RMSNorm).
  void norm(const std::string& name, std::int64_t rows, std::int64_t width) {
    const double t = d(rows) * d(width) * kBf16;
    fwd(memory_op(name, Pass::Forward, 2 * t), true);
    bwd({memory_op(name + ".bwd", Pass::BackwardInput, 3 * t)});
  }

  // Residual add over the rows x hidden stream: reads two, writes one. The
  // backward add (skip gradient + branch gradient) is pushed at the block
  // start by residual_backward so it runs at the end of the block's backward.
  void residual(const std::string& name) {
    fwd(memory_op(name, Pass::Forward, 3 * d(x_.Tn) * d(x_.h) * kBf16), false);
  }
  void residual_backward(const std::string& name) {
    bwd({memory_op(name + ".bwd", Pass::BackwardInput, 3 * d(x_.Tn) * d(x_.h) * kBf16)});
  }

  // FFN activation over rows x width (output width). SwiGLU reads gate and up
  // (2w), writes w; backward reads 2w inputs and w grad, writes 2w. GeLU reads
  // w, writes w; backward reads 2w, writes w. Recomputed under selective
  // recompute (V3 caches SwiGLU inputs and recomputes the output).
  void activation(const std::string& prefix, std::int64_t rows, std::int64_t width) {
    const double t = d(rows) * d(width) * kBf16;
    const bool swiglu = a_.activation == FfnActivation::SwiGLU;
    const std::string name = prefix + (swiglu ? ".swiglu" : ".gelu");
    fwd(memory_op(name, Pass::Forward, (swiglu ? 3 : 2) * t), true);
    bwd({memory_op(name + ".bwd", Pass::BackwardInput, (swiglu ? 5 : 3) * t)});
  }

  // Forward GEMM, dgrad GEMM (BackwardInput), wgrad GEMM (BackwardWeight),
  // with the FP8 quantization work around them.
  void linear(const Linear& L) {
    const bool fp8 = L.precision == Precision::FP8;
    const std::int64_t m = ceil_div(L.rows, L.groups);  // rows per group (balanced)
    const OpKind kind = L.groups > 1 ? OpKind::GroupedGemm : OpKind::Gemm;
    // FLOPs from the exact row count (grouped rows need not divide evenly).
    const double flops = 2.0 * d(L.rows) * d(L.out) * d(L.in);
    auto gemm = [&](std::string name, Pass pass, std::int64_t gm, std::int64_t gn, std::int64_t gk) {
      Op op;
      op.name = std::move(name);
      op.kind = kind;
      op.pass = pass;
      op.precision = L.precision;
      op.gemm = GemmShape{gm, gn, gk, L.groups};
      op.flops = Flops(flops);
      op.model_flops = Flops(flops * L.model_share);
      return op;
    };
    // Forward: 1x128 tile quantization of x (read bf16, write fp8 + scales).
    if (fp8 && L.quantize_input)
      fwd(memory_op(L.name + ".quant", Pass::Forward, d(L.rows) * d(L.in) * (kBf16 + kFp8Tiled)),
          L.input_recomputed);
    fwd(gemm(L.name, Pass::Forward, m, L.out, L.in), L.recomputable);

    // BackwardInput: quantize dy to 1x128 tiles, then dx = dy W.
    std::vector<Op> b;
    if (fp8 && L.dgrad_quant)
      b.push_back(memory_op(L.name + ".dgrad_quant", Pass::BackwardInput,
                            d(L.rows) * d(L.out) * (kBf16 + kFp8Tiled)));
    b.push_back(gemm(L.name + ".dgrad", Pass::BackwardInput, m, L.in, L.out));
    bwd(std::move(b));

    // BackwardWeight: 128x1 (transposed) tiles of dy and of x, then dW = dy^T x.
    std::vector<Op> w;
    if (fp8) {
      const double dy_in = L.dgrad_quant ? kBf16 : kFp8Tiled;  // dy kept in bf16, or received in fp8
      double q = d(L.rows) * d(L.out) * (dy_in + kFp8Tiled);
      if (L.wgrad_input_quant) q += d(L.rows) * d(L.in) * (kFp8Tiled + kFp8Tiled);  // cached fp8 x
      w.push_back(memory_op(L.name + ".wgrad_quant", Pass::BackwardWeight, q));
    }
    w.push_back(gemm(L.name + ".wgrad", Pass::BackwardWeight, L.out, L.in, m));
    wgt(std::move(w));
  }

  // Fused causal attention over b sequences x heads_l heads.
  void attention(const std::string& name, std::int64_t qk, std::int64_t v) {
    Op op;
    op.name = name;
    op.kind = OpKind::Attention;
    op.precision = Precision::BF16;  // attention operators stay in BF16 (V3 §3.3)
    op.attn = AttentionShape{x_.b, x_.Hl, x_.s, x_.s, qk, v, true};
    // 2 x b x heads x (s^2 / 2) x (qk + v): QK^T and PV over the causal half.
    const double f = 2.0 * d(x_.b) * d(x_.Hl) * (d(x_.s) * d(x_.s) / 2.0) * d(qk + v);
    op.flops = Flops(f);
    op.model_flops = Flops(f);
    Op back = op;
    back.name = name + ".bwd";
    back.pass = Pass::BackwardInput;
    back.flops = Flops(2.5 * f);        // dQ, dK, dV, dP plus the recomputed QK^T
    back.model_flops = Flops(2.0 * f);  // the recomputed QK^T is not model work
    fwd(std::move(op), false);
    bwd({std::move(back)});
  }

  // Megatron TP region boundaries over the hidden stream (bytes = full tensor).
  // enter: non-SP "f" (identity forward, all-reduce of dx backward); SP
  // all-gather forward, reduce-scatter backward.
  void tp_enter(const std::string& prefix) {
    if (x_.tp <= 1) return;
    const double bytes = d(x_.T) * d(x_.h) * kBf16;
    if (x_.sp) {
      fwd(comm_op(prefix + ".allgather", Pass::Forward, CommKind::TpAllGather, bytes, x_.tp, Precision::BF16),
          false);
      bwd({comm_op(prefix + ".allgather.bwd", Pass::BackwardInput, CommKind::TpReduceScatter, bytes, x_.tp,
                   Precision::BF16)});
    } else {
      bwd({comm_op(prefix + ".input_allreduce.bwd", Pass::BackwardInput, CommKind::TpAllReduce, bytes, x_.tp,
                   Precision::BF16)});
    }
  }
  // exit: non-SP "g" (all-reduce forward, identity backward); SP
  // reduce-scatter forward, all-gather backward.
  void tp_exit(const std::string& prefix) {
    if (x_.tp <= 1) return;
    const double bytes = d(x_.T) * d(x_.h) * kBf16;
    if (x_.sp) {
      fwd(comm_op(prefix + ".reducescatter", Pass::Forward, CommKind::TpReduceScatter, bytes, x_.tp,
                  Precision::BF16),
          false);
      bwd({comm_op(prefix + ".reducescatter.bwd", Pass::BackwardInput, CommKind::TpAllGather, bytes, x_.tp,
                   Precision::BF16)});
    } else {
      fwd(comm_op(prefix + ".allreduce", Pass::Forward, CommKind::TpAllReduce, bytes, x_.tp, Precision::BF16),
          false);
    }
  }

  // ---- layers -------------------------------------------------------------

  void mha_block(const std::string& p) {
    const std::int64_t hd = a_.head_dim;
    residual_backward(p + "attn.residual");
    norm(p + "attn.norm", x_.Tn, x_.h);
    tp_enter(p + "attn");
    // Fused QKV projection, column parallel (heads split over TP).
    linear({.name = p + "attn.wqkv", .rows = x_.T, .out = (x_.Hl + 2 * x_.KVl) * hd, .in = x_.h,
            .precision = x_.lin, .input_recomputed = true});
    // RoPE on q and k, in place: read + write.
    const double rope = 2.0 * d(x_.T) * d(x_.Hl + x_.KVl) * d(hd) * kBf16;
    fwd(memory_op(p + "attn.rope", Pass::Forward, rope), false);
    bwd({memory_op(p + "attn.rope.bwd", Pass::BackwardInput, rope)});
    attention(p + "attn.core", hd, hd);
    // Output projection, row parallel.
    linear({.name = p + "attn.wo", .rows = x_.T, .out = x_.h, .in = x_.Hl * hd, .precision = x_.lin});
    tp_exit(p + "attn");
    residual(p + "attn.residual");
    end_block();
  }

  void mla_block(const std::string& p) {
    const MlaConfig& m = *a_.mla;
    const std::int64_t qk = m.qk_nope_head_dim + m.qk_rope_head_dim;
    const double replicated = 1.0 / x_.tp;  // down-projections are not split by TP
    residual_backward(p + "attn.residual");
    norm(p + "attn.norm", x_.Tn, x_.h);
    tp_enter(p + "attn");
    if (m.q_lora_rank > 0) {
      // Query down-projection h -> q_lora (replicated under TP), its RMSNorm,
      // and the up-projection q_lora -> heads x (nope + rope), recomputed
      // under selective recompute.
      linear({.name = p + "mla.wq_a", .rows = x_.T, .out = m.q_lora_rank, .in = x_.h, .precision = x_.lin,
              .input_recomputed = true, .model_share = replicated});
      norm(p + "mla.q_norm", x_.T, m.q_lora_rank);
      linear({.name = p + "mla.wq_b", .rows = x_.T, .out = x_.Hl * qk, .in = m.q_lora_rank,
              .precision = x_.lin, .input_recomputed = true, .recomputable = true});
    } else {
      // No query compression: h -> heads x (nope + rope), column parallel.
      linear({.name = p + "mla.wq", .rows = x_.T, .out = x_.Hl * qk, .in = x_.h, .precision = x_.lin,
              .input_recomputed = true});
    }
    // KV down-projection h -> kv_lora + rope (shares its quantized input with
    // the query projection), kv RMSNorm, and the up-projection
    // kv_lora -> heads x (nope + v), recomputed under selective recompute.
    linear({.name = p + "mla.wkv_a", .rows = x_.T, .out = m.kv_lora_rank + m.qk_rope_head_dim, .in = x_.h,
            .precision = x_.lin, .quantize_input = false, .wgrad_input_quant = false,
            .model_share = replicated});
    norm(p + "mla.kv_norm", x_.T, m.kv_lora_rank);
    linear({.name = p + "mla.wkv_b", .rows = x_.T, .out = x_.Hl * (m.qk_nope_head_dim + m.v_head_dim),
            .in = m.kv_lora_rank, .precision = x_.lin, .input_recomputed = true, .recomputable = true});
    // RoPE on the query rope part and the shared key rope part (read + write),
    // and assembly of K = [k_nope, k_rope broadcast over heads].
    const double T = d(x_.T), H = d(x_.Hl);
    const double rope = 2.0 * T * (H + 1.0) * m.qk_rope_head_dim * kBf16 +
                        T * (H * m.qk_nope_head_dim + m.qk_rope_head_dim) * kBf16 + T * H * d(qk) * kBf16;
    fwd(memory_op(p + "mla.rope", Pass::Forward, rope), true);
    bwd({memory_op(p + "mla.rope.bwd", Pass::BackwardInput, rope)});
    attention(p + "attn.core", qk, m.v_head_dim);
    linear({.name = p + "mla.wo", .rows = x_.T, .out = x_.h, .in = x_.Hl * m.v_head_dim, .precision = x_.lin});
    tp_exit(p + "attn");
    residual(p + "attn.residual");
    end_block();
  }

  void attention_block(const std::string& p) {
    if (a_.attention == AttentionKind::MLA) mla_block(p);
    else mha_block(p);
  }

  void dense_mlp_block(const std::string& p) {
    residual_backward(p + "mlp.residual");
    norm(p + "mlp.norm", x_.Tn, x_.h);
    tp_enter(p + "mlp");
    // Gate and up fused (SwiGLU) or up alone (GeLU), column parallel.
    linear({.name = p + "mlp.up", .rows = x_.T, .out = ffn_mult(a_) * x_.Fl, .in = x_.h, .precision = x_.lin,
            .input_recomputed = true});
    activation(p + "mlp", x_.T, x_.Fl);
    // Down projection, row parallel; its input is the recomputed activation output.
    linear({.name = p + "mlp.down", .rows = x_.T, .out = x_.h, .in = x_.Fl, .precision = x_.lin,
            .input_recomputed = true});
    tp_exit(p + "mlp");
    residual(p + "mlp.residual");
    end_block();
  }

  void moe_block(const std::string& p) {
    const MoeConfig& m = require_moe(a_);
    if (m.routed_experts % c_.ep != 0)
      throw std::invalid_argument(
          fmt::format("ep={} does not divide routed_experts={}", c_.ep, m.routed_experts));
    const std::int64_t Tm = x_.Tm, h = x_.h, fe = m.expert_ffn_hidden;
    const std::int64_t groups = m.routed_experts / c_.ep;        // experts on this GPU
    const std::int64_t rows = Tm * m.experts_per_token;          // routed rows per GPU, balanced
    const bool ep_comm = c_.ep > 1;
    const double npt = dispatch_nodes_per_token(a_, c_);
    const Precision dispatch_p = x_.fp8 ? Precision::FP8 : x_.lin;
    const double dispatch_bytes = d(Tm) * npt * dispatch_bytes_per_token(a_, dispatch_p);
    const double combine_bytes = d(Tm) * npt * d(h) * kBf16;  // combine always BF16
    const double row_bytes = x_.fp8 ? kFp8Tiled : bytes_per_element(x_.lin);  // dispatched element

    residual_backward(p + "moe.residual");
    norm(p + "moe.norm", x_.Tn, h);
    if (x_.tp > 1 && !x_.sp) {
      // Without SP the stream is replicated over TP: each rank takes its 1/tp
      // slice of tokens (free); backward all-gathers the input gradient.
      bwd({comm_op(p + "moe.slice.bwd", Pass::BackwardInput, CommKind::TpAllGather, d(x_.T) * d(h) * kBf16,
                   x_.tp, Precision::BF16)});
    }
    // FP8: one 1x128 quantization of the normed input, shared by the shared
    // expert's up projection and the dispatch.
    if (x_.fp8) fwd(memory_op(p + "moe.input.quant", Pass::Forward, d(Tm) * d(h) * (kBf16 + kFp8Tiled)), true);
    if (m.shared_experts > 0) {
      // Shared experts as one wider MLP over all tokens of this GPU.
      const std::int64_t fs = static_cast<std::int64_t>(m.shared_experts) * fe;
      linear({.name = p + "moe.shared.up", .rows = Tm, .out = ffn_mult(a_) * fs, .in = h, .precision = x_.lin,
              .quantize_input = false});
      activation(p + "moe.shared", Tm, fs);
      // dy of the shared down projection is the layer-output gradient, already
      // quantized for the combine backward.
      linear({.name = p + "moe.shared.down", .rows = Tm, .out = h, .in = fs, .precision = x_.lin,
              .dgrad_quant = !x_.fp8, .input_recomputed = true});
    }
    // Router: gate GEMM h -> routed experts, kept in BF16.
    linear({.name = p + "moe.gate", .rows = Tm, .out = m.routed_experts, .in = h, .precision = x_.high});
    // Scores (sigmoid/softmax in fp32), group-limited top-k: read logits, write
    // scores (kept for backward) and top-k indices + weights.
    const double E = m.routed_experts, k = m.experts_per_token;
    fwd(memory_op(p + "moe.router", Pass::Forward, d(Tm) * (2 * E * kFp32 + k * 8)), false);
    bwd({memory_op(p + "moe.router.bwd", Pass::BackwardInput, d(Tm) * (2 * E * kFp32 + k * kFp32))});
    if (ep_comm) {
      // Dispatch: tokens x distinct target nodes x bytes per token (FP8 + scales
      // with FP8 GEMMs). Its backward is a combine of the input gradients (BF16).
      fwd(comm_op(p + "moe.dispatch", Pass::Forward, CommKind::EpDispatch, dispatch_bytes, c_.ep, dispatch_p),
          false);
      bwd({comm_op(p + "moe.dispatch.bwd", Pass::BackwardInput, CommKind::EpCombine, combine_bytes, c_.ep,
                   Precision::BF16)});
    }
    // Permute received rows into expert-contiguous order: read + write.
    fwd(memory_op(p + "moe.permute", Pass::Forward, 2 * d(rows) * d(h) * row_bytes), false);
    bwd({memory_op(p + "moe.permute.bwd", Pass::BackwardInput, 2 * d(rows) * d(h) * kBf16)});
    // Experts: grouped GEMMs over this GPU's experts. Gate and up fused.
    linear({.name = p + "moe.experts.up", .rows = rows, .out = ffn_mult(a_) * fe, .in = h, .groups = groups,
            .precision = x_.lin, .quantize_input = false});
    activation(p + "moe.experts", rows, fe);
    // dy of the down projection arrives in FP8 (the combine backward sends
    // FP8 activation gradients in V3).
    linear({.name = p + "moe.experts.down", .rows = rows, .out = h, .in = fe, .groups = groups,
            .precision = x_.lin, .dgrad_quant = !x_.fp8, .input_recomputed = true});
    // Unpermute and scale by routing weights: read + write rows. Backward
    // permutes the gradient rows and reads the cached expert outputs for the
    // routing-weight gradient.
    fwd(memory_op(p + "moe.unpermute", Pass::Forward, 2 * d(rows) * d(h) * kBf16), false);
    bwd({memory_op(p + "moe.unpermute.bwd", Pass::BackwardInput,
                   2 * d(rows) * d(h) * row_bytes + d(rows) * d(h) * kBf16)});
    // Combine (BF16); its backward dispatches the output gradient, in FP8 with
    // FP8 GEMMs (quantized first).
    {
      std::vector<Op> b;
      if (x_.fp8)
        b.push_back(memory_op(p + "moe.combine.bwd_quant", Pass::BackwardInput, d(Tm) * d(h) * (kBf16 + kFp8Tiled)));
      if (ep_comm)
        b.push_back(comm_op(p + "moe.combine.bwd", Pass::BackwardInput, CommKind::EpDispatch, dispatch_bytes, c_.ep,
                            dispatch_p));
      bwd(std::move(b));
    }
    if (ep_comm)
      fwd(comm_op(p + "moe.combine", Pass::Forward, CommKind::EpCombine, combine_bytes, c_.ep, Precision::BF16),
          false);
    // Weighted sum: routed output (the top-k reduction happens here when the
    // experts are local, inside the combine kernel otherwise) + shared output.
    // The backward only fans the gradient out: no op.
    {
      const double routed_in = ep_comm ? d(Tm) : d(rows);
      const double shared_in = m.shared_experts > 0 ? d(Tm) : 0.0;
      fwd(memory_op(p + "moe.combine_sum", Pass::Forward, (routed_in + shared_in + d(Tm)) * d(h) * kBf16), false);
    }
    if (x_.tp > 1 && !x_.sp)
      fwd(comm_op(p + "moe.allgather", Pass::Forward, CommKind::TpAllGather, d(x_.T) * d(h) * kBf16, x_.tp,
                  Precision::BF16),
          false);
    residual(p + "moe.residual");
    end_block();
  }

  // Vocabulary-parallel embedding lookup; the weight gradient is a
  // scatter-add of token gradients into fp32 gradient rows.
  void embedding(const std::string& p) {
    const double t = d(x_.T) * d(x_.h);
    fwd(memory_op(p + "embed.lookup", Pass::Forward, 2 * t * kBf16), false);
    if (x_.tp > 1) {
      if (x_.sp) {
        fwd(comm_op(p + "embed.reducescatter", Pass::Forward, CommKind::TpReduceScatter, t * kBf16, x_.tp,
                    Precision::BF16),
            false);
        bwd({comm_op(p + "embed.reducescatter.bwd", Pass::BackwardInput, CommKind::TpAllGather, t * kBf16, x_.tp,
                     Precision::BF16)});
      } else {
        fwd(comm_op(p + "embed.allreduce", Pass::Forward, CommKind::TpAllReduce, t * kBf16, x_.tp,
                    Precision::BF16),
            false);
      }
    }
    wgt({memory_op(p + "embed.wgrad", Pass::BackwardWeight, t * (kBf16 + 2 * kFp32))});
  }

  // Final norm, vocabulary-parallel output projection (BF16) and
  // softmax-cross-entropy on fp32 logits.
  void head(const std::string& p) {
    norm(p + "head.norm", x_.Tn, x_.h);
    tp_enter(p + "head");
    linear({.name = p + "head.proj", .rows = x_.T, .out = x_.Vl, .in = x_.h, .precision = x_.high});
    const double logits = d(x_.T) * d(x_.Vl);
    fwd(memory_op(p + "head.xent", Pass::Forward, 2 * logits * kFp32), false);
    if (x_.tp > 1)  // max, sum of exponentials and target logit across vocab shards
      fwd(comm_op(p + "head.xent.allreduce", Pass::Forward, CommKind::TpAllReduce, 3 * d(x_.T) * kFp32, x_.tp,
                  Precision::FP32),
          false);
    bwd({memory_op(p + "head.xent.bwd", Pass::BackwardInput, logits * (kFp32 + kBf16))});
    end_block();
  }

  // One MTP module: embedding of the shifted tokens, RMSNorm of it and of the
  // previous depth's hidden state into the two halves of a 2h concat, the
  // projection 2h -> h, one transformer block, and the head through the
  // shared output projection.
  void mtp() {
    const std::string p = "mtp.";
    embedding(p);
    norm(p + "enorm", x_.Tn, x_.h);
    norm(p + "hnorm", x_.Tn, x_.h);
    // Projection per token on this rank's tokens with full weights: exact work
    // under SP, replicated (model share 1/tp) without.
    linear({.name = p + "eh_proj", .rows = x_.Tn, .out = x_.h, .in = 2 * x_.h, .precision = x_.lin,
            .input_recomputed = true, .model_share = x_.sp ? 1.0 : 1.0 / x_.tp});
    end_block();
    attention_block(p);
    if (a_.moe) moe_block(p);
    else dense_mlp_block(p);
    head(p);
  }

 private:
  const Architecture& a_;
  const OpContext& c_;
  Dims x_;
  std::vector<Op> fwd_;
  std::vector<std::vector<Op>> bwd_, wgt_;
  std::vector<Op> pending_;

  void flush() {
    if (pending_.empty()) return;
    bwd_.push_back(std::move(pending_));
    pending_.clear();
  }
};

// ---------------------------------------------------------------------------
// Activation bytes per block (see activation_bytes()).

double mha_activations(const Architecture& a, const Dims& x, Recompute r) {
  const double hd = a.head_dim;
  double keep = d(x.Tn) * d(x.h) * kBf16;                            // norm input
  if (r == Recompute::None) keep += d(x.Tn) * d(x.h) * x.a_lin;     // normed input of wqkv
  keep += d(x.T) * d(x.Hl + 2 * x.KVl) * hd * kBf16;                 // q, k, v after RoPE
  // Output + LSE; with FP8 kept once in E5M6 as in mla_activations.
  keep += d(x.T) * d(x.Hl) * hd * (x.fp8 ? kE5m6 : kBf16) + d(x.b) * d(x.Hl) * d(x.s) * kFp32;
  return keep;
}

double mla_activations(const Architecture& a, const Dims& x, Recompute r) {
  const MlaConfig& m = *a.mla;
  const bool none = r == Recompute::None;
  const double T = d(x.T), H = d(x.Hl);
  const double qk = m.qk_nope_head_dim + m.qk_rope_head_dim;
  double keep = d(x.Tn) * d(x.h) * kBf16;                      // norm input
  if (none) keep += d(x.Tn) * d(x.h) * x.a_lin;               // normed input of wq_a / wkv_a
  if (m.q_lora_rank > 0) {
    keep += T * m.q_lora_rank * kBf16;                         // c_q (q_norm input)
    if (none) keep += T * m.q_lora_rank * x.a_lin;             // q_norm output (wq_b input)
    if (none) keep += T * H * qk * kBf16;                      // q (wq_b output after RoPE)
  } else {
    keep += T * H * qk * kBf16;                                // q (not an up-projection: kept)
  }
  keep += T * (m.kv_lora_rank + m.qk_rope_head_dim) * kBf16;  // c_kv and k_rope (kv_norm input)
  if (none) {
    keep += T * m.kv_lora_rank * x.a_lin;                      // kv_norm output (wkv_b input)
    keep += T * H * (qk + m.v_head_dim) * kBf16;               // k and v
  }
  // Attention output + LSE. With FP8 training DeepSeek-V3 caches the input
  // of the Linear after attention once, in its custom E5M6 format (12 bits)
  // with power-of-2 scales, and casts it back for the attention backward
  // (V3 report §3.3.3; the published training profile shows the cast-back
  // kernel); otherwise the BF16 output serves both.
  keep += T * H * m.v_head_dim * (x.fp8 ? kE5m6 : kBf16) + d(x.b) * H * d(x.s) * kFp32;
  return keep;
}

double dense_mlp_activations(const Architecture& a, const Dims& x, Recompute r) {
  const bool none = r == Recompute::None;
  double keep = d(x.Tn) * d(x.h) * kBf16;                          // norm input
  if (none) keep += d(x.Tn) * d(x.h) * x.a_lin;                   // up input
  keep += d(x.T) * d(ffn_mult(a) * x.Fl) * x.a_act;               // activation input
  if (none) keep += d(x.T) * d(x.Fl) * x.a_lin;                   // activation output (down input)
  return keep;
}

double moe_activations(const Architecture& a, const Dims& x, const OpContext& c, Recompute r) {
  const MoeConfig& m = *a.moe;
  const bool none = r == Recompute::None;
  const double Tm = d(x.Tm), h = d(x.h), fe = m.expert_ffn_hidden;
  const double rows = Tm * m.experts_per_token;
  const double row_bytes = x.fp8 ? kFp8Tiled : bytes_per_element(c.gemm_precision);
  double keep = d(x.Tn) * h * kBf16;                                     // norm input
  if (none) keep += Tm * h * kBf16 + (x.fp8 ? Tm * h * kFp8Tiled : 0);  // gate input (+ fp8 copy)
  keep += Tm * (m.routed_experts * kFp32 + m.experts_per_token * 8.0);  // scores, top-k idx + weights
  if (m.shared_experts > 0) {
    const double fs = m.shared_experts * fe;
    keep += Tm * ffn_mult(a) * fs * x.a_act;                             // shared activation input
    if (none) keep += Tm * fs * x.a_lin;                                 // shared activation output
  }
  keep += rows * h * row_bytes;                                          // received rows (up input)
  keep += rows * ffn_mult(a) * fe * x.a_act;                             // expert activation input
  if (none) keep += rows * fe * x.a_lin;                                 // expert activation output
  // Expert outputs are not kept: the routing weight is applied inside the
  // expert, to the SwiGLU output before the down-projection (the fused
  // "swiglu ... with_weight" kernels of DeepSeek's published training
  // profile), so the combine is a plain sum and the routing-weight gradient
  // comes from the SwiGLU backward.
  return keep;
}

double head_activations(const Dims& x, Recompute r) {
  double keep = d(x.Tn) * d(x.h) * kBf16;                         // norm input
  if (r == Recompute::None) keep += d(x.Tn) * d(x.h) * kBf16;    // projection input (BF16 GEMM)
  keep += d(x.T) * d(x.Vl) * kFp32;                               // fp32 softmax for the loss gradient
  return keep;
}

double block_activations(const Architecture& a, const Dims& x, const OpContext& c, bool moe) {
  const Recompute r = c.recompute;
  double keep = a.attention == AttentionKind::MLA ? mla_activations(a, x, r) : mha_activations(a, x, r);
  keep += moe ? moe_activations(a, x, c, r) : dense_mlp_activations(a, x, r);
  return keep;
}

}  // namespace

int dispatch_nodes_per_token(const Architecture& a, const OpContext& c) {
  if (!a.moe || c.ep <= 1) return 1;
  const MoeConfig& m = *a.moe;
  const std::int64_t nodes = std::max<std::int64_t>(1, ceil_div(c.ep, std::max(1, c.gpus_per_node)));
  std::int64_t limit = m.experts_per_token;
  if (m.max_groups_per_token > 0) {
    // A group spans nodes/groups nodes when there are more nodes than groups
    // (V3: 8 groups on 8 nodes, one node each).
    const std::int64_t nodes_per_group = std::max<std::int64_t>(1, ceil_div(nodes, m.expert_groups));
    limit = std::min<std::int64_t>(limit, m.max_groups_per_token * nodes_per_group);
  }
  return static_cast<int>(std::min(limit, nodes));
}

double dispatch_bytes_per_token(const Architecture& a, Precision p) {
  if (p == Precision::FP8) return d(a.hidden) * kFp8Tiled;  // fp8 + one fp32 scale per 128 channels
  return d(a.hidden) * bytes_per_element(p);
}

std::vector<Op> layer_ops(const Architecture& a, LayerKind kind, const OpContext& c) {
  Builder b(a, c);
  switch (kind) {
    case LayerKind::Embedding: b.embedding(""); break;
    case LayerKind::Dense:
      b.attention_block("");
      b.dense_mlp_block("");
      break;
    case LayerKind::Moe:
      require_moe(a);
      b.attention_block("");
      b.moe_block("");
      break;
    case LayerKind::Head: b.head(""); break;
    case LayerKind::Mtp: b.mtp(); break;
  }
  return b.finish();
}

ByteCount activation_bytes(const Architecture& a, LayerKind kind, const OpContext& c) {
  const Dims x = make_dims(a, c);
  const double ids = d(x.T) * 4.0;  // int32 token ids
  const double layer_input = d(x.Tn) * d(x.h) * kBf16;
  if (kind == LayerKind::Moe) require_moe(a);
  if (c.recompute == Recompute::Full) {
    switch (kind) {
      case LayerKind::Embedding: return ByteCount(ids);
      case LayerKind::Mtp: return ByteCount(ids + layer_input);
      default: return ByteCount(layer_input);
    }
  }
  switch (kind) {
    case LayerKind::Embedding: return ByteCount(ids);
    case LayerKind::Dense: return ByteCount(block_activations(a, x, c, false));
    case LayerKind::Moe: return ByteCount(block_activations(a, x, c, true));
    case LayerKind::Head: return ByteCount(head_activations(x, c.recompute));
    case LayerKind::Mtp: {
      // Ids, the embedding output (enorm input); the previous hidden state
      // (hnorm input) is the main model's final hidden state, counted by the
      // Head. Without recompute also the 2h concat (eh_proj input).
      double keep = ids + layer_input;
      if (c.recompute == Recompute::None) keep += d(x.Tn) * 2.0 * d(x.h) * x.a_lin;
      keep += block_activations(a, x, c, a.moe.has_value());
      keep += head_activations(x, c.recompute);
      return ByteCount(keep);
    }
  }
  return ByteCount(0);
}

ParamCount layer_params(const Architecture& a, LayerKind kind) {
  const double h = a.hidden;
  const double attn = attention_matmul_params(a) + attention_norm_params(a);
  switch (kind) {
    case LayerKind::Embedding: return {d(a.vocab) * h, d(a.vocab) * h};
    case LayerKind::Dense: {
      const double p = attn + ffn_matmul_params(a, a.ffn_hidden) + 2 * h;  // + two RMSNorms
      return {p, p};
    }
    case LayerKind::Moe: {
      const MoeConfig& m = require_moe(a);
      const double expert = ffn_matmul_params(a, m.expert_ffn_hidden);
      // Gate matrix plus one bias per routed expert (V3's auxiliary-loss-free
      // balancing bias; counted for every MoE, negligible elsewhere).
      const double common = attn + 2 * h + d(m.routed_experts) * h + m.routed_experts;
      return {common + d(m.routed_experts + m.shared_experts) * expert,
              common + d(m.experts_per_token + m.shared_experts) * expert};
    }
    case LayerKind::Head: {
      const double p = h + (a.tied_embeddings ? 0.0 : d(a.vocab) * h);
      return {p, p};
    }
    case LayerKind::Mtp: {
      // eh_proj (2h -> h) + enorm, hnorm and the module's own final norm +
      // one block (MoE if the model is MoE).
      const ParamCount block = layer_params(a, a.moe ? LayerKind::Moe : LayerKind::Dense);
      const double own = 2 * h * h + 3 * h;
      return {own + block.total, own + block.active};
    }
  }
  return {};
}

ParamCount model_params(const Architecture& a, bool include_mtp) {
  ParamCount total;
  auto add = [&](LayerKind k, double times) {
    if (times <= 0) return;
    const ParamCount p = layer_params(a, k);
    total.total += times * p.total;
    total.active += times * p.active;
  };
  add(LayerKind::Embedding, 1);
  add(LayerKind::Dense, a.dense_layer_count());
  if (a.moe) add(LayerKind::Moe, a.moe_layer_count());
  add(LayerKind::Head, 1);
  if (include_mtp) add(LayerKind::Mtp, a.mtp_depth);
  return total;
}

double forward_flops_per_token(const Architecture& a, LayerKind kind, std::int64_t seq_len) {
  const double h = a.hidden;
  switch (kind) {
    case LayerKind::Embedding: return 0.0;  // a lookup
    case LayerKind::Dense:
      return 2.0 * (attention_matmul_params(a) + ffn_matmul_params(a, a.ffn_hidden)) +
             attention_core_flops_per_token(a, seq_len);
    case LayerKind::Moe: {
      const MoeConfig& m = require_moe(a);
      const double matmul = attention_matmul_params(a) + d(m.routed_experts) * h +
                            d(m.experts_per_token + m.shared_experts) * ffn_matmul_params(a, m.expert_ffn_hidden);
      return 2.0 * matmul + attention_core_flops_per_token(a, seq_len);
    }
    case LayerKind::Head: return 2.0 * d(a.vocab) * h;
    case LayerKind::Mtp:
      return 2.0 * (2 * h * h) +
             forward_flops_per_token(a, a.moe ? LayerKind::Moe : LayerKind::Dense, seq_len) +
             forward_flops_per_token(a, LayerKind::Head, seq_len);
  }
  return 0.0;
}

double training_flops_per_token(const Architecture& a, std::int64_t seq_len, bool include_mtp) {
  double f = a.dense_layer_count() * forward_flops_per_token(a, LayerKind::Dense, seq_len) +
             forward_flops_per_token(a, LayerKind::Head, seq_len);
  if (a.moe) f += a.moe_layer_count() * forward_flops_per_token(a, LayerKind::Moe, seq_len);
  if (include_mtp) f += a.mtp_depth * forward_flops_per_token(a, LayerKind::Mtp, seq_len);
  return 3.0 * f;
}

}  // namespace trainsim::model
