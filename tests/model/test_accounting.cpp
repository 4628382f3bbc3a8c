#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <stdexcept>
#include <string>

#include "trainsim/model/accounting.hpp"

using namespace trainsim;
using namespace trainsim::model;

namespace {

struct Totals {
  double flops = 0, model_flops = 0, recompute_flops = 0;
};

Totals totals(const std::vector<Op>& ops) {
  Totals t;
  for (const Op& op : ops) {
    t.flops += op.flops.value();
    t.model_flops += op.model_flops.value();
    if (op.recompute) t.recompute_flops += op.flops.value();
  }
  return t;
}

const Op* find_op(const std::vector<Op>& ops, const std::string& name) {
  for (const Op& op : ops)
    if (op.name == name) return &op;
  return nullptr;
}

std::vector<const Op*> comm_ops(const std::vector<Op>& ops, CommKind kind, Pass pass) {
  std::vector<const Op*> out;
  for (const Op& op : ops)
    if (op.kind == OpKind::Comm && op.comm.kind == kind && op.pass == pass) out.push_back(&op);
  return out;
}

OpContext v3_context() {
  // DeepSeek-V3 training: one 4096-token sequence per micro-batch per GPU,
  // EP64 over 8 nodes, FP8 GEMMs, selective recompute.
  OpContext c;
  c.micro_batch_size = 1;
  c.seq_len = 4096;
  c.ep = 64;
  c.gemm_precision = Precision::FP8;
  c.recompute = Recompute::Selective;
  return c;
}

constexpr LayerKind kAllKinds[] = {LayerKind::Embedding, LayerKind::Dense, LayerKind::Moe, LayerKind::Head,
                                   LayerKind::Mtp};

}  // namespace

TEST_SUITE("validation") {
TEST_CASE("DeepSeek-V3 parameter counts") {
  // Source: /work/shared/reference/deepseek-v3-facts.json, model_config_671B
  // (config_671B.json arithmetic: derived_counts; README: 671B total, 37B
  // activated; README_WEIGHTS: 36.7B activated, MTP 11.5B unique).
  const Architecture a = architecture_preset("deepseek-v3");
  // Per-layer counts: exact.
  CHECK(layer_params(a, LayerKind::Dense).total == 583483392.0);
  CHECK(layer_params(a, LayerKind::Moe).total == 11507286272.0);
  CHECK(layer_params(a, LayerKind::Moe).active == 585318656.0);
  CHECK(layer_params(a, LayerKind::Embedding).total == 926679040.0);
  const ParamCount main = model_params(a, false);
  // Total: exactly derived_counts.total_params_main (671,026,419,200).
  CHECK(main.total == 671026419200.0);
  // Activated: derived 37,552,297,472 exactly; README 37B within 2%.
  CHECK(main.active == 37552297472.0);
  CHECK(main.active == doctest::Approx(37e9).epsilon(0.02));
  // MTP module: derived 11,610,068,224 (within 0.1%); README 11.5B within 2%.
  const ParamCount mtp = layer_params(a, LayerKind::Mtp);
  CHECK(mtp.total == doctest::Approx(11610068224.0).epsilon(0.001));
  CHECK(mtp.total == doctest::Approx(11.5e9).epsilon(0.02));
  // Main + MTP = HF checkpoint's 685B (README_WEIGHTS: 671B + 14B; the 14B
  // includes MTP's copies of embedding and head), within 1%.
  CHECK(model_params(a, true).total + 2 * 926679040.0 == doctest::Approx(685e9).epsilon(0.01));
}

TEST_CASE("DeepSeek-V3 FLOPs per token") {
  // Source: deepseek-v3-facts.json derived_counts (3 x forward, causal,
  // seq 4096, output head included, MTP excluded) and
  // training_cost_per_token_ISCA_Table2 (arXiv 2505.09343 Table 2: 250 GFLOP).
  const Architecture a = architecture_preset("deepseek-v3");
  // MoE layer forward, causal: 1,338,376,192 FLOP/token (tolerance 0.1%).
  CHECK(forward_flops_per_token(a, LayerKind::Moe, 4096) == doctest::Approx(1338376192.0).epsilon(0.001));
  // Training: 250.45 GFLOP/token (0.1%); ISCA Table 2 rounds to 250 (1%).
  const double train = training_flops_per_token(a, 4096, false);
  CHECK(train == doctest::Approx(250449887232.0).epsilon(0.001));
  CHECK(train == doctest::Approx(250e9).epsilon(0.01));
  // A 4-MoE-layer chunk of 4096 tokens: 65.78 TFLOP per micro-batch (0.1%).
  CHECK(4 * 3 * forward_flops_per_token(a, LayerKind::Moe, 4096) * 4096 ==
        doctest::Approx(65783866589184.0).epsilon(0.001));
  CHECK(forward_flops_per_token(a, LayerKind::Embedding, 4096) == 0.0);
}

TEST_CASE("DeepSeek-V3 per-GPU GEMM shapes match DeepGEMM's V3 training shapes") {
  // Source: deepseek-v3-facts.json deepgemm: dense M=4096 shapes N=24576 K=1536
  // (wq_b), N=32768 K=512 (wkv_b), N=7168 K=16384 (wo), N=7168 K=2048; grouped
  // contiguous 4 groups x 8192 rows with N=4096 K=7168 and N=7168 K=2048
  // ("the per-GPU expert GEMMs in V3 training"). Exact.
  const Architecture a = architecture_preset("deepseek-v3");
  const auto ops = layer_ops(a, LayerKind::Moe, v3_context());
  auto shape = [&](const std::string& n) {
    const Op* op = find_op(ops, n);
    REQUIRE(op != nullptr);
    return op->gemm;
  };
  CHECK(shape("mla.wq_b").m == 4096);
  CHECK(shape("mla.wq_b").n == 24576);
  CHECK(shape("mla.wq_b").k == 1536);
  CHECK(shape("mla.wkv_b").n == 32768);
  CHECK(shape("mla.wkv_b").k == 512);
  CHECK(shape("mla.wo").n == 7168);
  CHECK(shape("mla.wo").k == 16384);
  const GemmShape up = shape("moe.experts.up");
  CHECK(up.groups == 4);
  CHECK(up.m == 8192);
  CHECK(up.n == 4096);
  CHECK(up.k == 7168);
  const GemmShape down = shape("moe.experts.down");
  CHECK(down.groups == 4);
  CHECK(down.m == 8192);
  CHECK(down.n == 7168);
  CHECK(down.k == 2048);
  // Attention core as in the V3 profile (flash-attn over 4096 queries x 128
  // heads, qk 192, v 128).
  const Op* core = find_op(ops, "attn.core");
  REQUIRE(core != nullptr);
  CHECK(core->attn.heads == 128);
  CHECK(core->attn.seq_q == 4096);
  CHECK(core->attn.head_dim_qk == 192);
  CHECK(core->attn.head_dim_v == 128);
}

TEST_CASE("dense presets: parameter counts") {
  // Llama-3-70B: 70.6B (meta-llama/Meta-Llama-3-70B model card "70B";
  // safetensors total 70,553,706,496); tolerance 1%.
  CHECK(model_params(architecture_preset("llama3-70b"), false).total == doctest::Approx(70.6e9).epsilon(0.01));
  // Llama-3.1-405B: 405B (arXiv 2407.21783 Table 3, "405B"; 126 layers of
  // attention 2 h^2 + 2 h (8 x 128) per layer, MLP 3 h f, plus 2 V h for the
  // untied embeddings = 405.85B); tolerance 1%.
  CHECK(model_params(architecture_preset("llama3-405b"), false).total == doctest::Approx(405.9e9).epsilon(0.01));
  // Llama-3-8B: 8.03B (safetensors 8,030,261,248); tolerance 1%.
  CHECK(model_params(architecture_preset("llama3-8b"), false).total == doctest::Approx(8.03e9).epsilon(0.01));
  // GPT-3 175B: 174.6B (arXiv 2005.14165 Table 2.1 "175.0B"; 12 h^2 L + V h
  // = 174.56B without position embeddings and biases); tolerance 1%.
  const double gpt3 = model_params(architecture_preset("gpt3-175b"), false).total;
  CHECK(gpt3 == doctest::Approx(174.6e9).epsilon(0.01));
  CHECK(gpt3 == doctest::Approx(175.0e9).epsilon(0.01));
  // DeepSeek-V2-Lite: 15.7B total (model card); tolerance 1%. Activated 2.4B
  // (model card, rounded) against our 2.45B without the input embedding
  // lookup; tolerance 3%.
  const Architecture lite = architecture_preset("deepseek-v2-lite");
  const ParamCount p = model_params(lite, false);
  CHECK(p.total == doctest::Approx(15.7e9).epsilon(0.01));
  CHECK(p.active - layer_params(lite, LayerKind::Embedding).total == doctest::Approx(2.4e9).epsilon(0.03));
}

TEST_CASE("dense training FLOPs per token follow 6N + attention") {
  // Kaplan et al. (arXiv 2001.08361) 6N per token plus 6 x n_layer x seq x
  // d_attn for causal attention (matmul FLOPs, embedding excluded); exact up to
  // rounding for GPT-3 (tied embeddings: the head is the one V x h matmul).
  const Architecture a = architecture_preset("gpt3-175b");
  const double n_matmul = 12.0 * a.hidden * a.hidden * a.layers + double(a.vocab) * a.hidden;
  const double attn = 6.0 * a.layers * 2048.0 * a.hidden;  // 3 x 2 x L x s x d, causal half of 4
  CHECK(training_flops_per_token(a, 2048, false) == doctest::Approx(6.0 * n_matmul + attn).epsilon(1e-9));
}
}

TEST_SUITE("unit") {
TEST_CASE("model FLOPs of a layer's ops equal 3 x forward FLOPs per token x tokens") {
  for (const char* preset : {"deepseek-v3", "llama3-70b", "gpt3-175b", "deepseek-v2-lite"}) {
    const Architecture a = architecture_preset(preset);
    for (Precision prec : {Precision::BF16, Precision::FP8}) {
      for (int ep : {1, 8, 64}) {
        if (a.moe && a.moe->routed_experts % ep != 0) continue;
        for (LayerKind kind : kAllKinds) {
          if (kind == LayerKind::Moe && !a.moe) continue;
          CAPTURE(preset);
          CAPTURE(to_string(prec));
          CAPTURE(ep);
          CAPTURE(to_string(kind));
          OpContext c;
          c.micro_batch_size = 2;
          c.seq_len = 1024;
          c.ep = ep;
          c.gemm_precision = prec;
          const Totals t = totals(layer_ops(a, kind, c));
          const double expected = 3.0 * forward_flops_per_token(a, kind, c.seq_len) * 2048.0;
          CHECK(t.model_flops == doctest::Approx(expected).epsilon(1e-9));
          CHECK(t.recompute_flops == 0.0);
          // Without recompute, executed FLOPs exceed model FLOPs only by the
          // attention backward's recomputed QK^T (0.5 x forward attention).
          CHECK(t.flops >= t.model_flops);
        }
      }
    }
  }
}

TEST_CASE("model FLOPs split evenly over tensor parallel ranks") {
  // With dimensions divisible by tp, the per-GPU model FLOPs x tp equal the
  // layer's total: replicated work (MLA down-projections) counts 1/tp.
  for (const char* preset : {"deepseek-v3", "llama3-70b"}) {
    const Architecture a = architecture_preset(preset);
    for (bool sp : {false, true}) {
      for (LayerKind kind : kAllKinds) {
        if (kind == LayerKind::Moe && !a.moe) continue;
        CAPTURE(preset);
        CAPTURE(sp);
        CAPTURE(to_string(kind));
        OpContext c;
        c.seq_len = 4096;
        c.tp = 8;
        c.sequence_parallel = sp;
        const Totals t = totals(layer_ops(a, kind, c));
        CHECK(t.model_flops * 8 == doctest::Approx(3.0 * forward_flops_per_token(a, kind, 4096) * 4096).epsilon(1e-9));
      }
    }
  }
}

TEST_CASE("recompute adds FLOPs but not model FLOPs") {
  const Architecture a = architecture_preset("deepseek-v3");
  for (LayerKind kind : {LayerKind::Dense, LayerKind::Moe, LayerKind::Head, LayerKind::Mtp}) {
    CAPTURE(to_string(kind));
    OpContext c = v3_context();
    c.recompute = Recompute::None;
    const Totals none = totals(layer_ops(a, kind, c));
    c.recompute = Recompute::Selective;
    const auto sel_ops = layer_ops(a, kind, c);
    const Totals sel = totals(sel_ops);
    c.recompute = Recompute::Full;
    const auto full_ops = layer_ops(a, kind, c);
    const Totals full = totals(full_ops);
    CHECK(sel.model_flops == doctest::Approx(none.model_flops));
    CHECK(full.model_flops == doctest::Approx(none.model_flops));
    CHECK(full.flops > none.flops);
    CHECK(full.recompute_flops > sel.recompute_flops);
    if (kind == LayerKind::Dense || kind == LayerKind::Moe || kind == LayerKind::Mtp) {
      CHECK(sel.flops > none.flops);
    }
    // Full recompute re-executes exactly the forward FLOPs.
    double fwd = 0;
    for (const Op& op : full_ops)
      if (op.pass == Pass::Forward) fwd += op.flops.value();
    CHECK(full.recompute_flops == doctest::Approx(fwd));
    // Recompute ops live in BackwardInput and carry no model FLOPs.
    for (const auto* ops : {&sel_ops, &full_ops})
      for (const Op& op : *ops)
        if (op.recompute) {
          CHECK(op.pass == Pass::BackwardInput);
          CHECK(op.model_flops.value() == 0.0);
        }
  }
  // V3 selective recompute: MLA up-projections (GEMMs), norms and SwiGLU.
  OpContext c = v3_context();
  const auto ops = layer_ops(a, LayerKind::Moe, c);
  for (const char* n : {"mla.wq_b.recompute", "mla.wkv_b.recompute", "attn.norm.recompute", "mla.q_norm.recompute",
                        "mla.kv_norm.recompute", "moe.norm.recompute", "moe.experts.swiglu.recompute",
                        "moe.shared.swiglu.recompute"}) {
    CAPTURE(n);
    const Op* op = find_op(ops, n);
    REQUIRE(op != nullptr);
    CHECK(op->recompute);
  }
  CHECK(find_op(ops, "mla.wq_b.recompute")->kind == OpKind::Gemm);
  CHECK(find_op(ops, "mla.wq_a.recompute") == nullptr);
  CHECK(find_op(ops, "moe.experts.up.recompute") == nullptr);
  CHECK(find_op(ops, "moe.dispatch.recompute") == nullptr);
  // The attention block's recompute precedes the attention backward.
  auto index = [&](const std::string& n) {
    return std::find_if(ops.begin(), ops.end(), [&](const Op& o) { return o.name == n; }) - ops.begin();
  };
  CHECK(index("mla.wkv_b.recompute") < index("attn.core.bwd"));
  CHECK(index("moe.experts.swiglu.recompute") < index("moe.experts.down.dgrad"));
}

TEST_CASE("ops come in pass order with unique names and consistent GEMM shapes") {
  const Architecture a = architecture_preset("deepseek-v3");
  for (Recompute r : {Recompute::None, Recompute::Selective, Recompute::Full}) {
    for (LayerKind kind : kAllKinds) {
      CAPTURE(to_string(kind));
      CAPTURE(to_string(r));
      OpContext c = v3_context();
      c.recompute = r;
      const auto ops = layer_ops(a, kind, c);
      std::set<std::string> names;
      int last_pass = 0;
      for (const Op& op : ops) {
        CAPTURE(op.name);
        CHECK(names.insert(op.name).second);
        CHECK(static_cast<int>(op.pass) >= last_pass);
        last_pass = static_cast<int>(op.pass);
        if (op.kind == OpKind::Gemm || op.kind == OpKind::GroupedGemm) {
          const GemmShape& g = op.gemm;
          CHECK(op.flops.value() == doctest::Approx(2.0 * g.m * g.n * g.k * g.groups));
        }
        if (op.kind == OpKind::Memory) CHECK(op.hbm_bytes.value() > 0);
        if (op.kind == OpKind::Comm) CHECK(op.comm.bytes.value() > 0);
      }
    }
  }
  // dgrad and wgrad transpose the forward shape.
  const auto ops = layer_ops(a, LayerKind::Dense, v3_context());
  const Op* f = find_op(ops, "mla.wo");
  const Op* b = find_op(ops, "mla.wo.dgrad");
  const Op* w = find_op(ops, "mla.wo.wgrad");
  REQUIRE((f && b && w));
  CHECK(b->pass == Pass::BackwardInput);
  CHECK(w->pass == Pass::BackwardWeight);
  CHECK((b->gemm.m == f->gemm.m && b->gemm.n == f->gemm.k && b->gemm.k == f->gemm.n));
  CHECK((w->gemm.m == f->gemm.n && w->gemm.n == f->gemm.k && w->gemm.k == f->gemm.m));
}

TEST_CASE("attention op FLOPs: causal forward, backward 2.5x of which 2x model") {
  const Architecture a = architecture_preset("llama3-70b");
  OpContext c;
  c.micro_batch_size = 2;
  c.seq_len = 8192;
  const auto ops = layer_ops(a, LayerKind::Dense, c);
  const Op* f = find_op(ops, "attn.core");
  const Op* b = find_op(ops, "attn.core.bwd");
  REQUIRE((f && b));
  const double expected = 2.0 * 2 * 64 * (8192.0 * 8192.0 / 2) * (128 + 128);
  CHECK(f->flops.value() == doctest::Approx(expected));
  CHECK(b->flops.value() == doctest::Approx(2.5 * expected));
  CHECK(b->model_flops.value() == doctest::Approx(2.0 * expected));
  CHECK(f->attn.causal);
  CHECK(f->attn.batch == 2);
}

TEST_CASE("EP dispatch bytes scale with nodes per token; FP8 about halves them") {
  const Architecture a = architecture_preset("deepseek-v3");
  OpContext c = v3_context();
  const double fp8_token = 7168.0 * (1.0 + 4.0 / 128.0);
  struct Case {
    int ep;
    int nodes;
  };
  // EP64 = 8 nodes, node-limited to 4; EP16 = 2 nodes; EP8 = 1 node.
  for (Case k : {Case{64, 4}, Case{32, 4}, Case{16, 2}, Case{8, 1}}) {
    CAPTURE(k.ep);
    c.ep = k.ep;
    CHECK(dispatch_nodes_per_token(a, c) == k.nodes);
    const auto ops = layer_ops(a, LayerKind::Moe, c);
    const auto d = comm_ops(ops, CommKind::EpDispatch, Pass::Forward);
    const auto m = comm_ops(ops, CommKind::EpCombine, Pass::Forward);
    REQUIRE(d.size() == 1);
    REQUIRE(m.size() == 1);
    CHECK(d[0]->comm.bytes.value() == doctest::Approx(4096.0 * k.nodes * fp8_token));
    CHECK(d[0]->comm.group_size == k.ep);
    CHECK(d[0]->precision == Precision::FP8);
    CHECK(m[0]->comm.bytes.value() == doctest::Approx(4096.0 * k.nodes * 7168 * 2));
    CHECK(m[0]->precision == Precision::BF16);
  }
  // Without node-limited routing a token may reach min(top-8, nodes) nodes.
  Architecture unlimited = a;
  unlimited.moe->max_groups_per_token = 0;
  c.ep = 64;
  CHECK(dispatch_nodes_per_token(unlimited, c) == 8);
  c.ep = 128;
  CHECK(dispatch_nodes_per_token(unlimited, c) == 8);

  // FP8 vs BF16 dispatch: (1 + 1/32) / 2 = 0.516.
  c.ep = 64;
  const double fp8 = comm_ops(layer_ops(a, LayerKind::Moe, c), CommKind::EpDispatch, Pass::Forward)[0]->comm.bytes.value();
  c.gemm_precision = Precision::BF16;
  const double bf16 =
      comm_ops(layer_ops(a, LayerKind::Moe, c), CommKind::EpDispatch, Pass::Forward)[0]->comm.bytes.value();
  CHECK(fp8 / bf16 == doctest::Approx(0.515625));
  CHECK(dispatch_bytes_per_token(a, Precision::BF16) == 7168.0 * 2);
}

TEST_CASE("EP backward: combine backward is an FP8 dispatch, dispatch backward a BF16 combine") {
  const Architecture a = architecture_preset("deepseek-v3");
  const auto ops = layer_ops(a, LayerKind::Moe, v3_context());
  const auto d = comm_ops(ops, CommKind::EpDispatch, Pass::BackwardInput);
  const auto m = comm_ops(ops, CommKind::EpCombine, Pass::BackwardInput);
  REQUIRE(d.size() == 1);
  REQUIRE(m.size() == 1);
  CHECK(d[0]->precision == Precision::FP8);
  CHECK(m[0]->precision == Precision::BF16);
  CHECK(d[0] < m[0]);  // gradients flow back through the combine first
  // Between them, the experts' dgrads.
  const Op* down = find_op(ops, "moe.experts.down.dgrad");
  const Op* up = find_op(ops, "moe.experts.up.dgrad");
  REQUIRE((down && up));
  CHECK((d[0] < down && down < up && up < m[0]));
  // EP = 1: no communication at all.
  OpContext c = v3_context();
  c.ep = 1;
  for (const Op& op : layer_ops(a, LayerKind::Moe, c)) CHECK(op.kind != OpKind::Comm);
}

TEST_CASE("FP8 precision assignment and quantization ops") {
  const Architecture a = architecture_preset("deepseek-v3");
  const auto ops = layer_ops(a, LayerKind::Moe, v3_context());
  auto prec = [&](const std::string& n) {
    const Op* op = find_op(ops, n);
    REQUIRE(op != nullptr);
    return op->precision;
  };
  CHECK(prec("mla.wq_a") == Precision::FP8);
  CHECK(prec("mla.wo.dgrad") == Precision::FP8);
  CHECK(prec("moe.experts.up.wgrad") == Precision::FP8);
  CHECK(prec("moe.shared.down") == Precision::FP8);
  CHECK(prec("moe.gate") == Precision::BF16);
  CHECK(prec("attn.core") == Precision::BF16);
  const auto head = layer_ops(a, LayerKind::Head, v3_context());
  CHECK(find_op(head, "head.proj")->precision == Precision::BF16);
  // Quantization before FP8 GEMMs: bf16 read + fp8 write with scales.
  const Op* q = find_op(ops, "mla.wo.quant");
  REQUIRE(q != nullptr);
  CHECK(q->kind == OpKind::Memory);
  CHECK(q->hbm_bytes.value() == doctest::Approx(4096.0 * 16384 * (2 + 1 + 4.0 / 128)));
  CHECK(find_op(ops, "mla.wo.wgrad_quant") != nullptr);
  CHECK(find_op(ops, "mla.wo.wgrad_quant")->pass == Pass::BackwardWeight);
  // BF16 GEMMs: no quantization work.
  OpContext c = v3_context();
  c.gemm_precision = Precision::BF16;
  for (const Op& op : layer_ops(a, LayerKind::Moe, c)) {
    CAPTURE(op.name);
    CHECK(op.name.find("quant") == std::string::npos);
    CHECK(op.precision != Precision::FP8);
  }
}

TEST_CASE("tensor parallel communication (Megatron)") {
  const Architecture a = architecture_preset("llama3-70b");
  OpContext c;
  c.seq_len = 4096;
  c.tp = 8;
  auto ops = layer_ops(a, LayerKind::Dense, c);
  const double bytes = 4096.0 * 8192 * 2;
  auto fwd_ar = comm_ops(ops, CommKind::TpAllReduce, Pass::Forward);
  auto bwd_ar = comm_ops(ops, CommKind::TpAllReduce, Pass::BackwardInput);
  CHECK(fwd_ar.size() == 2);
  CHECK(bwd_ar.size() == 2);
  for (const Op* op : fwd_ar) {
    CHECK(op->comm.bytes.value() == doctest::Approx(bytes));
    CHECK(op->comm.group_size == 8);
  }
  CHECK(find_op(ops, "attn.wqkv")->gemm.n == (64 / 8 + 2 * 1) * 128);
  CHECK(find_op(ops, "mlp.down")->gemm.k == 28672 / 8);
  c.sequence_parallel = true;
  ops = layer_ops(a, LayerKind::Dense, c);
  CHECK(comm_ops(ops, CommKind::TpAllReduce, Pass::Forward).empty());
  CHECK(comm_ops(ops, CommKind::TpAllGather, Pass::Forward).size() == 2);
  CHECK(comm_ops(ops, CommKind::TpReduceScatter, Pass::Forward).size() == 2);
  CHECK(comm_ops(ops, CommKind::TpAllGather, Pass::BackwardInput).size() == 2);
  CHECK(comm_ops(ops, CommKind::TpReduceScatter, Pass::BackwardInput).size() == 2);
  CHECK(find_op(ops, "attn.norm")->hbm_bytes.value() == doctest::Approx(4096.0 / 8 * 8192 * 2 * 2));
  c.tp = 1;
  for (const Op& op : layer_ops(a, LayerKind::Dense, c)) CHECK(op.kind != OpKind::Comm);
}

TEST_CASE("activation bytes shrink with recompute; full keeps the layer input") {
  const Architecture a = architecture_preset("deepseek-v3");
  for (LayerKind kind : {LayerKind::Dense, LayerKind::Moe, LayerKind::Head, LayerKind::Mtp}) {
    CAPTURE(to_string(kind));
    OpContext c = v3_context();
    c.recompute = Recompute::None;
    const double none = activation_bytes(a, kind, c).value();
    c.recompute = Recompute::Selective;
    const double sel = activation_bytes(a, kind, c).value();
    c.recompute = Recompute::Full;
    const double full = activation_bytes(a, kind, c).value();
    CHECK(none > sel);
    CHECK(sel > full);
    if (kind == LayerKind::Dense || kind == LayerKind::Moe) CHECK(full == 4096.0 * 7168 * 2);
  }
  // FP8 caching shrinks activations; a bigger micro-batch grows them linearly.
  OpContext c = v3_context();
  const double fp8 = activation_bytes(a, LayerKind::Moe, c).value();
  c.gemm_precision = Precision::BF16;
  const double bf16 = activation_bytes(a, LayerKind::Moe, c).value();
  CHECK(fp8 < bf16);
  c.micro_batch_size = 2;
  CHECK(activation_bytes(a, LayerKind::Moe, c).value() == doctest::Approx(2 * bf16));
  // Sequence parallelism divides the token-sharded part.
  const Architecture l = architecture_preset("llama3-70b");
  OpContext t;
  t.tp = 8;
  t.recompute = Recompute::Full;
  const double no_sp = activation_bytes(l, LayerKind::Dense, t).value();
  t.sequence_parallel = true;
  CHECK(activation_bytes(l, LayerKind::Dense, t).value() == doctest::Approx(no_sp / 8));
}

TEST_CASE("invalid contexts are rejected") {
  const Architecture a = architecture_preset("deepseek-v3");
  OpContext c;
  c.ep = 48;  // does not divide 256 experts
  CHECK_THROWS_AS(layer_ops(a, LayerKind::Moe, c), std::invalid_argument);
  c.ep = 1;
  c.tp = 3;  // does not divide 128 heads
  CHECK_THROWS_AS(layer_ops(a, LayerKind::Dense, c), std::invalid_argument);
  const Architecture l = architecture_preset("llama3-70b");
  CHECK_THROWS_AS(layer_ops(l, LayerKind::Moe, OpContext{}), std::invalid_argument);
  CHECK_THROWS_AS(layer_params(l, LayerKind::Moe), std::invalid_argument);
}

TEST_CASE("parameter bookkeeping") {
  const Architecture g = architecture_preset("gpt3-175b");
  // Tied embeddings: the head adds only its norm.
  CHECK(layer_params(g, LayerKind::Head).total == g.hidden);
  const Architecture l = architecture_preset("llama3-70b");
  CHECK(layer_params(l, LayerKind::Head).total == double(l.hidden) + double(l.vocab) * l.hidden);
  // Dense models: active == total.
  CHECK(model_params(l, false).active == model_params(l, false).total);
  // MTP is counted only when asked.
  const Architecture v3 = architecture_preset("deepseek-v3");
  CHECK(model_params(v3, true).total - model_params(v3, false).total == layer_params(v3, LayerKind::Mtp).total);
  CHECK(training_flops_per_token(v3, 4096, true) - training_flops_per_token(v3, 4096, false) ==
        doctest::Approx(3 * forward_flops_per_token(v3, LayerKind::Mtp, 4096)));
}
}
