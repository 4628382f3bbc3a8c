#pragma once
// CPU reference of causal multi-head attention in MLA's training form,
// forward and backward, in FP32.
//
// What it captures
//  * DeepSeek-V3's MLA, as trained, expands the compressed KV (wkv_b) into
//    per-head keys and values, so the attention core is ordinary multi-head
//    attention with a q/k head dim (192 = 128 "nope" + 64 RoPE) different from
//    the v head dim (128). This kernel is that core, with general dqk / dv:
//    O = softmax(scale * Q K^T + causal mask) V per head, plus the row
//    log-sum-exp LSE = log sum_j exp(scale * q_i . k_j) (natural log, over the
//    unmasked keys), which the backward uses to rebuild P without storing it.
//  * Layouts (one sequence; loop over the batch outside): Q, K: seq x heads x
//    dqk; V, O, dO: seq x heads x dv (token-major, as projections produce
//    them); LSE: heads x seq. Causal means query i sees keys 0..i.
//  * Forward and backward work on blocks of 64 query rows: S = scale * Q_b
//    K^T over the keys the block can see, an exact row softmax (the row max
//    is subtracted), O_b = P V. The backward is FlashAttention's math with P
//    recomputed from the LSE: D = rowsum(dO * O), dP = dO V^T, dS = P * (dP -
//    D), dQ = scale * dS K, dK = scale * dS^T Q, dV = P^T dO. Everything runs
//    through tensor.hpp's blocked GEMMs.
//  * apply_rope(): rotary embedding of the rope part of each head, pairs of
//    adjacent channels rotated by angle pos * theta^(-2i/rope_dim) (V3's
//    model.py views the channels as complex pairs); `inverse` rotates back,
//    which is also the backward of the rotation.
//
// What it ignores
//  * The MLA projections (wq_a/wq_b, wkv_a/wkv_b, norms, wo) and the
//    inference-time absorbed form with the shared latent cache (FlashMLA);
//    dropout; sliding windows; GQA; the online (streaming over key blocks)
//    softmax of FlashAttention (results are identical up to rounding; the
//    row block of S is held whole: 64 x seq floats); YaRN frequency scaling
//    of RoPE (V3 uses it beyond 4K tokens); BF16/FP8 numerics.
//
// How it is tested (tests/kernels/test_attention.cpp): forward against a naive
// double-precision softmax, LSE against its definition, causality (changing
// a future token leaves earlier outputs bit-identical), backward against
// central finite differences, RoPE round trip and norm preservation.
#include <vector>

namespace trainsim::kernels {

struct AttentionShape {
  int seq = 0;
  int heads = 0;
  int dqk = 192;  // q/k head dim (V3: 128 nope + 64 rope)
  int dv = 128;   // v head dim
  float scale = 0.0f;  // softmax scale; V3: 192^-0.5 (times mscale^2 with YaRN)
  bool causal = true;
};

// Throws std::invalid_argument for non-positive sizes or a non-finite scale.
void validate(const AttentionShape& s);

struct AttentionForward {
  std::vector<float> o;    // seq x heads x dv
  std::vector<float> lse;  // heads x seq
};

AttentionForward attention_forward(const AttentionShape& s, const float* q, const float* k, const float* v);

struct AttentionGrads {
  std::vector<float> dq;  // seq x heads x dqk
  std::vector<float> dk;  // seq x heads x dqk
  std::vector<float> dv;  // seq x heads x dv
};

// o and lse from attention_forward; d_o: seq x heads x dv.
AttentionGrads attention_backward(const AttentionShape& s, const float* q, const float* k, const float* v,
                                  const float* o, const float* lse, const float* d_o);

// Rotary embedding, in place, of channels [rope_offset, rope_offset + rope_dim)
// of every head of x (seq x heads x head_dim). Token i has position
// position_offset + i. rope_dim must be even.
void apply_rope(float* x, int seq, int heads, int head_dim, int rope_offset, int rope_dim, double theta = 10000.0,
                int position_offset = 0, bool inverse = false);

}  // namespace trainsim::kernels
