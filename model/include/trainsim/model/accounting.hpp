#pragma once
// Per-layer cost accounting: the one place where an Architecture becomes
// work. Everything downstream (the analytic totals, MFU, the memory model,
// the event-level workload the simulator runs) reads these numbers.
//
// WHAT IT CAPTURES
//   layer_ops() lists, for ONE micro-batch on ONE GPU, every kernel-sized
//   piece of work of one layer in three passes (Forward, BackwardInput,
//   BackwardWeight), each pass in execution order:
//   * every linear layer as three GEMMs: forward (m = tokens, n = out, k = in),
//     dgrad (m = tokens, n = in, k = out) and wgrad (m = out, n = in,
//     k = tokens); MoE experts as grouped GEMMs over the rows routed to this
//     GPU, assuming perfectly balanced routing (tokens x top-k rows per GPU);
//   * fused causal attention (FlashAttention): backward executes 2.5x the
//     forward FLOPs (QK^T recomputed) of which 2x are model FLOPs;
//   * bandwidth-bound work as Memory ops with the HBM bytes they move: RMSNorm,
//     RoPE, SwiGLU/GeLU, residual adds, router, token permute/unpermute, the
//     weighted combine, softmax-cross-entropy, and - with FP8 GEMMs - the
//     DeepSeek-V3 fine-grained quantization (1x128 activation tiles before each
//     FP8 GEMM, fp32 scale per 128 elements; 128x1 transposed tiles for wgrad);
//   * communication the compute stream waits for: MoE dispatch/combine
//     (bytes = tokens x distinct target nodes x bytes per token, DeepEP's
//     "RDMA bytes"; FP8 dispatch and BF16 combine as in V3, and their backward
//     counterparts), Megatron TP all-reduce or sequence-parallel all-gather /
//     reduce-scatter (bytes = the full tensor, nccl-tests "size");
//   * recomputation (None, Selective as DeepSeek-V3: RMSNorm outputs, MLA
//     up-projections and SwiGLU outputs; Full: the whole layer forward) as
//     forward work re-emitted into BackwardInput with recompute = true and
//     zero model FLOPs;
//   * activation_bytes(): what a micro-batch keeps from forward to backward
//     under each recompute policy (FP8-cached Linear inputs with FP8 GEMMs).
//   Parameter counts and model FLOPs per token are closed-form functions of the
//   architecture (layer_params, forward_flops_per_token) computed independently
//   of the op lists; tests check the two agree.
//
// WHAT IT IGNORES
//   Load imbalance between experts (rows are the balanced average); the extra
//   bytes DeepEP sends with each token (top-k indices and weights); weight
//   casts to FP8 (once per step, not per micro-batch); biases, dropout and
//   learned position embeddings (GPT-3: ~0.03% of parameters); the sum of the
//   two dgrads that meet at a shared input (folded into the GEMM epilogue);
//   Megatron's re-all-gather of sequence-parallel inputs for wgrad (overlapped
//   with dgrad); the optimizer step and gradient reduction (other modules).
//   MLA's down-projections (wq_a, wkv_a) are replicated under TP: each TP rank
//   does the full work, counted with model FLOPs / tp. In a MoE layer under TP
//   the MoE block runs on the rank's 1/tp share of the tokens (sequence shard),
//   its experts are split by EP, not TP.
//   Node count per token is the upper bound min(top-k, reachable nodes), which
//   node-limited routing makes tight for V3 (4 of 8 nodes).
//   wq_a and wkv_a are separate GEMMs here (V3's kernels fuse them into one
//   N = 2112 GEMM). Each MoE layer counts one router bias per routed expert
//   (V3's balancing bias; negligible for models without it).
//
// HOW IT IS VALIDATED (tests/model/test_accounting.cpp)
//   DeepSeek-V3 671B: total parameters 671,026,419,200 (exact, config_671B),
//   activated 37.55B (README: 37B), MTP module 11.61B (README: 11.5B), forward
//   FLOPs of a MoE layer 1.338 GFLOP/token and training FLOPs 250.45
//   GFLOP/token at seq 4096 (ISCA'25 Table 2: 250). Llama-3-70B 70.6B, GPT-3
//   174.6B parameters. Unit tests: the model FLOPs of a layer's ops equal 3 x
//   forward FLOPs x tokens; recompute adds FLOPs but no model FLOPs; dispatch
//   bytes scale with nodes per token and FP8 about halves them.
#include <cstdint>
#include <vector>

#include "trainsim/common/precision.hpp"
#include "trainsim/common/units.hpp"
#include "trainsim/model/architecture.hpp"
#include "trainsim/model/ops.hpp"
#include "trainsim/model/parallel.hpp"

namespace trainsim::model {

enum class LayerKind {
  Embedding,  // token embedding lookup
  Dense,      // attention + dense FFN
  Moe,        // attention + MoE FFN (router, routed and shared experts)
  Head,       // final norm + output projection + cross-entropy
  Mtp         // one MTP module: norms, concat projection 2h->h, one transformer
              // block (MoE if the model is MoE), its own head pass + loss
              // through the shared output projection
};

const char* to_string(LayerKind k);

struct OpContext {
  std::int64_t micro_batch_size = 1;  // sequences per micro-batch on this GPU
  std::int64_t seq_len = 4096;
  int tp = 1;
  bool sequence_parallel = false;
  int ep = 1;
  int gpus_per_node = 8;
  Precision gemm_precision = Precision::BF16;  // FP8: V3-style FP8 Linear layers
  Recompute recompute = Recompute::None;
};

// Nodes a token's dispatch reaches (distinct target nodes, local node
// included): min(top-k, EP nodes, node limit of group-limited routing).
// 1 when EP stays within a node.
int dispatch_nodes_per_token(const Architecture& a, const OpContext& c);
// Bytes per token sent by a dispatch: hidden x (1 + 4/128) for FP8 with one
// fp32 scale per 128 channels, hidden x 2 for BF16.
double dispatch_bytes_per_token(const Architecture& a, Precision p);

// Ops of one layer for one micro-batch on one GPU: all Forward ops, then all
// BackwardInput ops, then all BackwardWeight ops, each pass in execution
// order. Throws std::invalid_argument if the context does not fit the
// architecture (tp not dividing heads, ep not dividing routed experts, a MoE
// or MLA kind for a model without them); plans are validated before this.
std::vector<Op> layer_ops(const Architecture& a, LayerKind kind, const OpContext& c);

// Bytes one micro-batch of this layer keeps from forward to backward on one
// GPU under c.recompute (None: everything backward needs; Selective: V3's
// policy, RMSNorm outputs, MLA up-projection outputs and SwiGLU outputs are
// recomputed; Full: only the layer input).
ByteCount activation_bytes(const Architecture& a, LayerKind kind, const OpContext& c);

struct ParamCount {
  double total = 0;
  double active = 0;  // used per token (MoE: top-k routed + shared experts)
};

// Whole layer, unsharded. Embedding = vocab x hidden; Head = final norm +
// vocab x hidden unless tied (then the norm only); Mtp = its unique
// parameters (projection, its norms, one block), without the shared
// embedding and head.
ParamCount layer_params(const Architecture& a, LayerKind kind);
// Embedding + all layers + head (+ mtp_depth MTP modules).
ParamCount model_params(const Architecture& a, bool include_mtp);

// Model FLOPs of one forward pass per token (matmuls only; causal attention
// counted as 2 x heads x (qk_dim + v_dim) x seq/2). Embedding lookups are 0.
double forward_flops_per_token(const Architecture& a, LayerKind kind, std::int64_t seq_len);
// 3 x forward over all layers and the head (+ MTP modules when asked).
double training_flops_per_token(const Architecture& a, std::int64_t seq_len, bool include_mtp);

}  // namespace trainsim::model
