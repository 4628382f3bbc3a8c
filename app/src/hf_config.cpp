#include "trainsim/app/hf_config.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string_view>
#include <utility>

#include "trainsim/common/error.hpp"
#include "trainsim/common/json_reader.hpp"

namespace trainsim::app {

namespace {

enum class Family { Llama, Qwen2, Qwen3, Qwen2Moe, Qwen3Moe, Mixtral, DeepSeekV2, DeepSeekV3 };

struct FamilyName {
  std::string_view model_type;
  Family family;
};
constexpr FamilyName kFamilies[] = {
    {"llama", Family::Llama},           {"qwen2", Family::Qwen2},           {"qwen3", Family::Qwen3},
    {"qwen2_moe", Family::Qwen2Moe},    {"qwen3_moe", Family::Qwen3Moe},    {"mixtral", Family::Mixtral},
    {"deepseek_v2", Family::DeepSeekV2}, {"deepseek_v3", Family::DeepSeekV3},
};

// Range checks catch typos, as in the architecture reader.
constexpr std::int64_t kMaxLayers = 10'000;
constexpr std::int64_t kMaxWidth = 1 << 20;
constexpr std::int64_t kMaxHeads = 65'536;
constexpr std::int64_t kMaxVocab = 1 << 24;
constexpr std::int64_t kMaxExperts = 1 << 16;

// The config being read, the inline-schema architecture being built and the
// notes on what the mapping approximates.
struct Reader {
  JsonObject o;
  Json a;
  std::vector<std::string> notes;
  std::int64_t layers = 0, heads = 0, kv_heads = 0, head_dim = 0;

  // Absent and null both mean "not given" in transformers configs.
  std::optional<std::int64_t> int_or_null(const std::string& key, std::int64_t min, std::int64_t max) {
    const Json* v = o.raw_optional(key);
    if (!v || v->is_null()) return std::nullopt;
    return o.integer(key, min, max);
  }
  std::int64_t integer(const std::string& key, std::int64_t min, std::int64_t max) { return o.integer(key, min, max); }
  void note(std::string s) { notes.push_back(std::move(s)); }
};

bool is_moe(Family f) {
  return f == Family::Qwen2Moe || f == Family::Qwen3Moe || f == Family::Mixtral || f == Family::DeepSeekV2 ||
         f == Family::DeepSeekV3;
}
bool is_deepseek(Family f) { return f == Family::DeepSeekV2 || f == Family::DeepSeekV3; }

// Keys every family shares: widths, heads, vocabulary, embeddings, activation.
void read_common(Reader& r) {
  const std::int64_t hidden = r.integer("hidden_size", 1, kMaxWidth);
  r.layers = r.integer("num_hidden_layers", 1, kMaxLayers);
  r.heads = r.integer("num_attention_heads", 1, kMaxHeads);
  r.kv_heads = r.int_or_null("num_key_value_heads", 1, kMaxHeads).value_or(r.heads);
  r.head_dim = r.int_or_null("head_dim", 1, kMaxWidth).value_or(hidden % r.heads == 0 ? hidden / r.heads : 0);
  if (r.head_dim == 0) r.o.fail("head_dim", "a head width (hidden_size is not a multiple of num_attention_heads)");
  const std::string act = r.o.string_or("hidden_act", "silu");
  if (act != "silu") r.o.fail("hidden_act", "\"silu\" (the gated MLP of this family, modelled as SwiGLU)");
  r.a["layers"] = r.layers;
  r.a["hidden"] = hidden;
  r.a["heads"] = r.heads;
  r.a["vocab"] = r.integer("vocab_size", 1, kMaxVocab);
  r.a["activation"] = "swiglu";
  r.a["tied_embeddings"] = r.o.boolean_or("tie_word_embeddings", false);
  r.a["mtp_depth"] = 0;
}

// Grouped-query (or multi-head) attention with per-head width head_dim.
void read_gqa(Reader& r, Family f) {
  r.a["attention"] = r.kv_heads == r.heads ? "mha" : "gqa";
  r.a["kv_heads"] = r.kv_heads;
  r.a["head_dim"] = r.head_dim;
  const std::int64_t qkv_bias = (r.heads + 2 * r.kv_heads) * r.head_dim;
  const bool qwen2 = f == Family::Qwen2 || f == Family::Qwen2Moe;
  if (qwen2 || r.o.boolean_or("attention_bias", false))
    r.note(fmt::format("q/k/v projection biases ({} parameters per layer) are not counted", qkv_bias));
  if (f == Family::Qwen3 || f == Family::Qwen3Moe)
    r.note(fmt::format("per-head q/k RMSNorm weights ({} parameters per layer) are not counted", 2 * r.head_dim));
  if (f == Family::Llama && r.o.boolean_or("mlp_bias", false)) r.note("MLP biases are not counted");
  // Sliding-window attention: Mixtral gives sliding_window (null: none);
  // Qwen uses it only with use_sliding_window.
  const Json* sw = r.o.raw_optional("sliding_window");
  const bool qwen = f != Family::Llama && f != Family::Mixtral;
  const bool used = qwen ? r.o.boolean_or("use_sliding_window", false) : true;
  if (sw && !sw->is_null() && used)
    r.note(fmt::format("sliding-window attention (window {}) is timed as full causal attention", sw->dump()));
}

// Multi-head latent attention (DeepSeek-V2/V3).
void read_mla(Reader& r) {
  r.a["attention"] = "mla";
  r.a["mla"] = {{"q_lora_rank", r.int_or_null("q_lora_rank", 0, kMaxWidth).value_or(0)},
                {"kv_lora_rank", r.integer("kv_lora_rank", 1, kMaxWidth)},
                {"qk_nope_head_dim", r.integer("qk_nope_head_dim", 0, kMaxWidth)},
                {"qk_rope_head_dim", r.integer("qk_rope_head_dim", 0, kMaxWidth)},
                {"v_head_dim", r.integer("v_head_dim", 1, kMaxWidth)}};
}

// The number of dense-FFN layers; trainsim holds them as a leading run only.
int dense_layers(Reader& r, const std::function<bool(std::int64_t)>& moe_layer) {
  int dense = 0;
  bool leading = true;
  for (std::int64_t i = 0; i < r.layers; ++i)
    if (!moe_layer(i)) {
      if (dense != i) leading = false;
      ++dense;
    }
  if (!leading)
    r.note(fmt::format("the {} dense-FFN layers are placed first (trainsim holds dense layers as a leading run): "
                       "parameters and FLOPs are equal, the pipeline stage partition may differ",
                       dense));
  return dense;
}

// Qwen's mlp_only_layers: indices of layers that keep the dense MLP.
std::vector<std::int64_t> mlp_only_layers(Reader& r) {
  std::vector<std::int64_t> out;
  const Json* v = r.o.raw_optional("mlp_only_layers");
  if (!v || v->is_null()) return out;
  const std::string expected = fmt::format("an array of layer indices in [0, {})", r.layers);
  if (!v->is_array()) r.o.fail("mlp_only_layers", expected);
  for (const Json& e : *v) {
    if (!e.is_number_integer() || e.get<std::int64_t>() < 0 || e.get<std::int64_t>() >= r.layers)
      r.o.fail("mlp_only_layers", expected);
    out.push_back(e.get<std::int64_t>());
  }
  return out;
}

void read_qwen_moe(Reader& r, Family f) {
  const std::int64_t fe = r.integer("moe_intermediate_size", 1, kMaxWidth);
  const std::int64_t step = r.o.integer_or("decoder_sparse_step", 1, 1, kMaxLayers);
  const auto dense_only = mlp_only_layers(r);
  const int dense = dense_layers(r, [&](std::int64_t i) {
    return std::find(dense_only.begin(), dense_only.end(), i) == dense_only.end() && (i + 1) % step == 0;
  });
  Json moe{{"routed_experts", r.integer("num_experts", 1, kMaxExperts)},
           {"experts_per_token", r.integer("num_experts_per_tok", 1, kMaxExperts)},
           {"expert_ffn_hidden", fe},
           {"dense_leading_layers", dense},
           {"shared_experts", 0}};
  if (f == Family::Qwen2Moe) {
    const std::int64_t s = r.int_or_null("shared_expert_intermediate_size", 0, kMaxWidth).value_or(0);
    if (s > 0) {
      const std::int64_t n = std::max<std::int64_t>(1, (s + fe / 2) / fe);
      moe["shared_experts"] = n;
      r.note(s % fe == 0
                 ? fmt::format("the shared expert of width {} is held as {} shared experts of width {} (same "
                               "parameters and FLOPs)",
                               s, n, fe)
                 : fmt::format("the shared expert of width {} is approximated by {} shared experts of width {} "
                               "({:+} FFN width)",
                               s, n, fe, n * fe - s));
      r.note(fmt::format("the shared expert's sigmoid gate ({} parameters per MoE layer) is not counted",
                         r.a["hidden"].get<std::int64_t>()));
    }
  }
  r.a["moe"] = moe;
  r.a["ffn_hidden"] = dense > 0 ? r.integer("intermediate_size", 1, kMaxWidth) : 0;
}

void read_mixtral(Reader& r) {
  r.a["moe"] = {{"routed_experts", r.integer("num_local_experts", 1, kMaxExperts)},
                {"experts_per_token", r.integer("num_experts_per_tok", 1, kMaxExperts)},
                {"expert_ffn_hidden", r.integer("intermediate_size", 1, kMaxWidth)},
                {"dense_leading_layers", 0},
                {"shared_experts", 0}};
  r.a["ffn_hidden"] = 0;  // every layer is MoE
}

// DeepSeek-V2/V3 routing: n_group groups of experts, each token limited to
// topk_group of them unless topk_method is plain "greedy".
void read_deepseek_moe(Reader& r) {
  r.a["ffn_hidden"] = r.integer("intermediate_size", 1, kMaxWidth);
  r.a["mtp_depth"] = r.o.integer_or("num_nextn_predict_layers", 0, 0, 64);
  const auto routed = r.int_or_null("n_routed_experts", 1, kMaxExperts);
  if (!routed) return;  // a dense DeepSeek model
  const std::int64_t first_dense = r.o.integer_or("first_k_dense_replace", 0, 0, kMaxLayers);
  const std::int64_t freq = r.o.integer_or("moe_layer_freq", 1, 1, kMaxLayers);
  const int dense = dense_layers(r, [&](std::int64_t i) { return i >= first_dense && i % freq == 0; });
  const std::int64_t groups = r.int_or_null("n_group", 1, kMaxExperts).value_or(1);
  const std::int64_t topk_group = r.int_or_null("topk_group", 1, kMaxExperts).value_or(groups);
  const bool limited = r.o.string_or("topk_method", "greedy") != "greedy" && topk_group < groups;
  r.a["moe"] = {{"routed_experts", *routed},
                {"shared_experts", r.int_or_null("n_shared_experts", 0, kMaxExperts).value_or(0)},
                {"experts_per_token", r.integer("num_experts_per_tok", 1, kMaxExperts)},
                {"expert_ffn_hidden", r.integer("moe_intermediate_size", 1, kMaxWidth)},
                {"dense_leading_layers", dense},
                {"expert_groups", groups},
                {"max_groups_per_token", limited ? topk_group : 0}};
}

Family family_of(Reader& r) {
  const std::string type = r.o.string("model_type");
  for (const auto& f : kFamilies)
    if (f.model_type == type) return f.family;
  r.o.fail("model_type", "one of " + hf_model_types());
}

// Runs the resolved architecture through the inline-model checks; a failure
// names the config file and the HF key behind the resolved field.
model::Architecture checked(const Json& a, const std::string& file) {
  static constexpr std::pair<std::string_view, std::string_view> kKeyOf[] = {
      {"/kv_heads", "num_key_value_heads"},          {"/heads", "num_attention_heads"},
      {"/head_dim", "head_dim"},                     {"/ffn_hidden", "intermediate_size"},
      {"/moe/experts_per_token", "num_experts_per_tok"}, {"/moe/expert_groups", "n_group"},
      {"/moe/max_groups_per_token", "topk_group"},  {"/mla/qk_rope_head_dim", "qk_rope_head_dim"}};
  JsonObject obj(a, file, "");
  try {
    return model::parse_architecture(obj);
  } catch (const InputError& e) {
    std::string key = "(resolved model)" + e.json_path();
    for (const auto& [field, hf] : kKeyOf)
      if (e.json_path() == field) key = hf;
    throw InputError(file, "/" + key, e.value(), e.expected());
  }
}

}  // namespace

std::string hf_model_types() {
  std::string s;
  for (const auto& f : kFamilies) s += (s.empty() ? "" : ", ") + std::string(f.model_type);
  return s;
}

HfModel parse_hf_config(const Json& config, const std::string& file, const std::string& name,
                        const std::string& shown_path) {
  Reader r{JsonObject(config, file, ""), Json::object(), {}};
  HfModel m;
  const Family f = family_of(r);
  m.model_type = r.o.string("model_type");
  r.a["name"] = name;
  read_common(r);
  if (is_deepseek(f)) {
    read_mla(r);
    read_deepseek_moe(r);
  } else {
    read_gqa(r, f);
    if (f == Family::Mixtral) read_mixtral(r);
    else if (is_moe(f)) read_qwen_moe(r, f);
    else r.a["ffn_hidden"] = r.integer("intermediate_size", 1, kMaxWidth);
  }
  std::string source = fmt::format("Hugging Face config {} (model_type {})", shown_path, m.model_type);
  if (!r.notes.empty()) source += "; approximations: " + fmt::format("{}", fmt::join(r.notes, "; "));
  r.a["source"] = source;
  m.arch = checked(r.a, file);
  m.notes = std::move(r.notes);
  return m;
}

HfModel load_hf_config(const std::string& file, const std::string& shown_path) {
  const std::filesystem::path p(file);
  std::string name = p.stem().string();
  if (name == "config" && p.has_parent_path()) name = p.parent_path().filename().string();
  return parse_hf_config(parse_json_file(file), file, name, shown_path);
}

}  // namespace trainsim::app
