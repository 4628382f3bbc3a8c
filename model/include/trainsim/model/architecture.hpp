#pragma once
// A model architecture as data: the shape of a decoder-only transformer,
// with optional Multi-head Latent Attention (MLA) and Mixture-of-Experts
// (MoE), as read from a JSON preset (data/models/*.json) or a scenario file.
//
// The struct carries shapes only. Parallel layout lives in ParallelPlan and
// the machine in hardware/; costs (FLOPs, bytes, parameters) are derived from
// these fields in accounting.hpp.
//
// JSON schema (all integers; unknown keys are errors):
//   "name"            string, required
//   "layers"          transformer blocks of the main model (MTP excluded)
//   "hidden"          model width h
//   "heads"           query heads
//   "kv_heads"        key/value heads (GQA); default = heads; must divide heads
//   "head_dim"        per-head width for MHA/GQA; default = hidden / heads
//   "ffn_hidden"      intermediate width of the dense FFN (0 allowed only
//                     for an MoE model with no dense layers)
//   "vocab"           vocabulary size
//   "activation"      "swiglu" | "gelu"
//   "attention"       "mha" | "gqa" | "mla"  ("gqa" is MHA with kv_heads < heads)
//   "mla"             required iff attention is "mla":
//       {"q_lora_rank" (0 = no query compression), "kv_lora_rank",
//        "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"}
//   "moe"             optional:
//       {"routed_experts", "shared_experts" (default 0), "experts_per_token",
//        "expert_ffn_hidden", "dense_leading_layers" (default 0),
//        "expert_groups" (default 1, divides routed_experts),
//        "max_groups_per_token" (default 0 = unlimited; node-limited routing)}
//   "mtp_depth"       multi-token-prediction modules (default 0)
//   "tied_embeddings" output head shares the embedding matrix (default false)
//   "source"          where the numbers come from (default "")
#include <optional>
#include <string>
#include <vector>

#include "trainsim/common/json_reader.hpp"

namespace trainsim::model {

enum class AttentionKind { MHA /* includes GQA via kv_heads */, MLA };
enum class FfnActivation { SwiGLU, GeLU };

const char* to_string(AttentionKind a);
const char* to_string(FfnActivation a);

struct MlaConfig {
  int q_lora_rank = 0;  // 0 = queries are projected directly from the hidden state
  int kv_lora_rank = 0;
  int qk_nope_head_dim = 0;
  int qk_rope_head_dim = 0;
  int v_head_dim = 0;
  bool operator==(const MlaConfig&) const = default;
};

struct MoeConfig {
  int routed_experts = 0;
  int shared_experts = 0;
  int experts_per_token = 0;
  int expert_ffn_hidden = 0;
  int dense_leading_layers = 0;  // first layers use the dense FFN (V3: 3)
  int expert_groups = 1;         // V3: 8 groups of 32 experts, one group per node
  // Node-limited routing: groups (= nodes in V3) a token may reach; 0 = unlimited.
  int max_groups_per_token = 0;
  bool operator==(const MoeConfig&) const = default;
};

struct Architecture {
  std::string name;
  int layers = 0;
  int hidden = 0;
  int heads = 0;
  int kv_heads = 0;
  int head_dim = 0;
  int ffn_hidden = 0;  // dense FFN width
  int vocab = 0;
  FfnActivation activation = FfnActivation::SwiGLU;
  AttentionKind attention = AttentionKind::MHA;
  std::optional<MlaConfig> mla;
  std::optional<MoeConfig> moe;
  int mtp_depth = 0;
  bool tied_embeddings = false;
  std::string source;

  // Layers with the dense FFN: all of them without MoE, else the leading ones.
  int dense_layer_count() const;
  int moe_layer_count() const;
  bool operator==(const Architecture&) const = default;
};

// Reads and checks an architecture object. Throws InputError (file, JSON
// path, value, expectation) for unknown keys, wrong types, out-of-range values
// and inconsistent fields. Calls obj.finish().
Architecture parse_architecture(JsonObject& obj);

// A preset from data/models/<name>.json (embedded in the binary). `file` and
// `json_path` locate the reference to the preset for the error message when
// the name is unknown (the message lists the available presets).
Architecture architecture_preset(const std::string& name, const std::string& file = "",
                                 const std::string& json_path = "");
// Names of the embedded presets, sorted.
std::vector<std::string> architecture_preset_names();

// Every field, in the schema above; parse_architecture(to_json(a)) == a.
nlohmann::json to_json(const Architecture& a);

}  // namespace trainsim::model
