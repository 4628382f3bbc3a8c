#pragma once
// CPU reference of a DeepSeek-V3 MoE layer's expert path, forward and
// backward, in FP32.
//
// What it captures
//  * Router (V3 model.py `Gate`): logits = x G^T (G: experts x hidden),
//    scores s = sigmoid(logits). Selection uses the biased scores s + b (b:
//    the per-expert load-balancing bias). Group-limited routing: the experts
//    form `groups` equal groups of consecutive ids; a group's score is the sum
//    of its top-2 biased scores (its top-1 if a group has one expert); the
//    top `topk_groups` groups are kept and the top `topk` experts among them
//    are selected. Combine weights are the UNBIASED scores of the selected
//    experts, normalised to sum 1, times route_scale. Ties go to the lower
//    index (torch.topk leaves them unspecified).
//  * Dispatch: token copies are permuted into contiguous per-expert blocks
//    (counting sort by expert, token order kept inside a block): counts,
//    offsets, and index maps both ways (permuted row -> (token, slot) and back).
//  * Experts: SwiGLU, y = W2 (w * (silu(W1 x) * W3 x)) with W1, W3: ffn x
//    hidden and W2: hidden x ffn, computed as grouped GEMMs over the expert
//    blocks. The routing weight w multiplies the SwiGLU output before the down
//    projection (so the weighted sum needs no pass over the hidden-size
//    outputs; V3's inference model.py weights the expert output instead,
//    which is mathematically the same). Outputs are un-permuted and summed per
//    token. An optional shared expert (a SwiGLU MLP of width shared_ffn, V3:
//    1 x 2048) is added for every token.
//  * Backward: dL/dx (through the experts, the shared expert and the router),
//    dL/dG, dL/dW1, dL/dW3, dL/dW2 (and the shared expert's), dL/d(combine
//    weight) per token slot and dL/dlogits. The routing weights get their
//    gradient through the normalisation w_k = r s_k / sum_j s_j and the
//    sigmoid; the selection itself is piecewise constant (no gradient), and
//    the bias, used only for selection, receives none (V3 updates it by the
//    auxiliary-loss-free rule, not by backprop).
//
// What it ignores
//  * FP8 / BF16 numerics (all FP32 here; quantize with block_quant.hpp to
//    study them), expert parallelism and all-to-all communication, capacity
//    limits / token dropping (V3 drops none), the bias update rule and the
//    sequence-wise auxiliary loss, recomputation (the forward saves what the
//    backward needs: permuted inputs, both up projections, SwiGLU output).
//
// How it is tested (tests/kernels/test_moe.cpp): a hand-made routing example
// with the expected selection written out, group limitation and weight sums
// on random inputs, permutation round trips, forward against a naive
// per-token double-precision loop, and every gradient against central finite
// differences on a small configuration.
#include <vector>

namespace trainsim::kernels {

struct MoeConfig {
  int hidden = 0;        // model dimension (V3: 7168)
  int expert_ffn = 0;    // routed expert intermediate size (V3: 2048)
  int experts = 0;       // routed experts (V3: 256)
  int topk = 0;          // experts per token (V3: 8)
  int groups = 1;        // expert groups (V3: 8)
  int topk_groups = 1;   // groups kept per token (V3: 4)
  double route_scale = 1.0;  // V3: 2.5
  int shared_ffn = 0;    // shared expert width, 0 = none (V3: 1 x 2048)
};

// Throws std::invalid_argument when the configuration is inconsistent
// (experts not divisible by groups, topk larger than the kept experts, ...).
void validate(const MoeConfig& cfg);

// All matrices row-major.
struct MoeWeights {
  std::vector<float> gate;       // experts x hidden (router)
  std::vector<float> gate_bias;  // experts (selection only); empty = zeros
  std::vector<float> w1;         // experts x expert_ffn x hidden (gate proj)
  std::vector<float> w3;         // experts x expert_ffn x hidden (up proj)
  std::vector<float> w2;         // experts x hidden x expert_ffn (down proj)
  std::vector<float> shared_w1;  // shared_ffn x hidden
  std::vector<float> shared_w3;  // shared_ffn x hidden
  std::vector<float> shared_w2;  // hidden x shared_ffn
};

// Weights with entries ~ N(0, 1/fan_in) from a fixed seed (bias ~ N(0, 0.1^2)).
MoeWeights random_moe_weights(const MoeConfig& cfg, unsigned long long seed);

struct MoeRouting {
  int tokens = 0;
  int experts = 0;
  int topk = 0;
  std::vector<float> scores;   // tokens x experts: sigmoid(logits), unbiased
  std::vector<int> selected;   // tokens x topk: expert ids, by descending biased score
  std::vector<float> weights;  // tokens x topk: combine weights (sum = route_scale)
};

// Routing from scores that are already sigmoid(logits). bias may be null.
MoeRouting route_from_scores(const MoeConfig& cfg, const float* scores, const float* bias, int tokens);

// Router: logits = x gate^T, scores = sigmoid(logits), then route_from_scores.
MoeRouting route_tokens(const MoeConfig& cfg, const MoeWeights& w, const float* x, int tokens);

struct MoePermutation {
  int tokens = 0;
  int topk = 0;
  std::vector<int> counts;   // experts: rows per expert
  std::vector<int> offsets;  // experts + 1: first row of each expert block; back() = tokens * topk
  std::vector<int> token;    // permuted row -> token
  std::vector<int> slot;     // permuted row -> k-slot of that token (0..topk-1)
  std::vector<int> row_of;   // tokens x topk: (token, slot) -> permuted row

  int rows() const { return offsets.empty() ? 0 : offsets.back(); }
};

MoePermutation permute_by_expert(const MoeRouting& routing);

// out (rows x width) : out[r] = in[token[r]]  (dispatch)
void permute_rows(const MoePermutation& p, const float* in, int width, float* out);
// out (tokens x width) += sum over rows r of token t: in[r]  (combine)
void unpermute_add_rows(const MoePermutation& p, const float* in, int width, float* out);

struct MoeForward {
  MoeRouting routing;
  MoePermutation permutation;
  std::vector<float> y;  // tokens x hidden
  // Saved for the backward pass (permuted order, rows = tokens * topk).
  std::vector<float> x_perm;  // rows x hidden
  std::vector<float> up1;     // rows x ffn: x W1^T
  std::vector<float> up3;     // rows x ffn: x W3^T
  std::vector<float> act;     // rows x ffn: silu(up1) * up3 (before the routing weight)
  std::vector<float> shared_up1, shared_up3, shared_act;  // tokens x shared_ffn
};

MoeForward moe_forward(const MoeConfig& cfg, const MoeWeights& w, const float* x, int tokens);

struct MoeGrads {
  std::vector<float> dx;         // tokens x hidden
  std::vector<float> d_gate;     // experts x hidden
  std::vector<float> d_w1, d_w3, d_w2;  // shapes as in MoeWeights
  std::vector<float> d_shared_w1, d_shared_w3, d_shared_w2;
  std::vector<float> d_weights;  // tokens x topk: dL/d(combine weight)
  std::vector<float> d_logits;   // tokens x experts (zero for unselected experts)
};

// dy: tokens x hidden, the gradient of the loss w.r.t. MoeForward::y.
MoeGrads moe_backward(const MoeConfig& cfg, const MoeWeights& w, const float* x, const MoeForward& fwd,
                      const float* dy);

}  // namespace trainsim::kernels
