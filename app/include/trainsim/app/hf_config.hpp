#pragma once
// Models from Hugging Face `config.json` files.
//
// What it does. A Hugging Face transformers config describes a model by its
// `model_type` and that family's hyperparameter keys. This reads the keys of
// the families trainsim's Architecture can express (llama, qwen2, qwen3,
// qwen2_moe, qwen3_moe, mixtral, deepseek_v2, deepseek_v3) and returns the
// same Architecture an inline model or a preset would give, so a scenario can
// say `"model": {"hf_config": "models/x/config.json"}` and `trainsim presets
// --from-hf FILE` prints what was resolved.
//
// Key mapping (HF key -> Architecture field), per family:
//   all       hidden_size -> hidden, num_hidden_layers -> layers,
//             num_attention_heads -> heads, num_key_value_heads -> kv_heads
//             (absent or null: = heads, as in transformers), head_dim
//             (absent or null: hidden / heads), vocab_size -> vocab,
//             tie_word_embeddings -> tied_embeddings (default false),
//             hidden_act must be "silu" (gated MLP -> swiglu)
//   dense     intermediate_size -> ffn_hidden
//   mixtral   num_local_experts, num_experts_per_tok, intermediate_size ->
//             expert_ffn_hidden; every layer MoE
//   qwen*_moe num_experts, num_experts_per_tok, moe_intermediate_size;
//             shared_expert_intermediate_size (qwen2_moe) -> shared experts of
//             the routed width; decoder_sparse_step and mlp_only_layers ->
//             dense layers; intermediate_size -> their ffn_hidden
//   deepseek  n_routed_experts, n_shared_experts, num_experts_per_tok,
//             moe_intermediate_size, first_k_dense_replace and moe_layer_freq
//             -> dense layers, n_group -> expert_groups, topk_group ->
//             max_groups_per_token (unlimited for topk_method "greedy" or
//             topk_group >= n_group), q_lora_rank (null: 0), kv_lora_rank,
//             qk_nope_head_dim, qk_rope_head_dim, v_head_dim,
//             num_nextn_predict_layers -> mtp_depth (default 0)
//
// What it approximates. Whatever the Architecture cannot hold is mapped to
// the nearest thing with the same parameters and FLOPs where one exists, and
// every such choice is a line in `notes` (also appended to the resolved
// model's `source`, so reports and `presets --from-hf` carry it): Qwen2's q/k/v biases and Qwen3's
// q/k norms (not counted), Qwen2-MoE's shared expert and its gate, dense
// layers that are not the leading ones (moved to the front: totals equal,
// stage partition differs), sliding-window attention (full causal
// attention is timed). Keys that do not change cost (rope, eps, dropout,
// token ids, quantization) are ignored.
//
// Errors. An unknown model_type, a missing required key or a key of the wrong
// type or range is an InputError naming the config file and the key; an
// inconsistent result (e.g. kv heads not dividing heads) names the config file
// and the resolved field.
//
// Validated by tests/app/test_hf_config.cpp: DeepSeek-V3's and V2-Lite's
// configs give exactly the built-in presets (parameter counts and predicted
// step time of V3 equal), Llama 3 and Qwen MoE configs load and simulate.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "trainsim/model/architecture.hpp"

namespace trainsim::app {

struct HfModel {
  model::Architecture arch;
  std::string model_type;
  std::vector<std::string> notes;  // what the mapping approximates or ignores
};

// `name` becomes the architecture's name; `shown_path` is how the config is
// named in the source line (the path as the user wrote it, so reports do not
// depend on where the checkout lives).
HfModel parse_hf_config(const nlohmann::json& config, const std::string& file, const std::string& name,
                        const std::string& shown_path);
// Reads `file`; the name is the file's stem, or its directory's name when
// the file is called config.json.
HfModel load_hf_config(const std::string& file, const std::string& shown_path);
// "llama, qwen2, ..." for messages.
std::string hf_model_types();

}  // namespace trainsim::app
