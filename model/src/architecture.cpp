#include "trainsim/model/architecture.hpp"

#include <fmt/format.h>

#include <string_view>

#include "trainsim/common/embedded_data.hpp"

namespace trainsim::model {

const char* to_string(AttentionKind a) {
  switch (a) {
    case AttentionKind::MHA: return "mha";
    case AttentionKind::MLA: return "mla";
  }
  return "?";
}

const char* to_string(FfnActivation a) {
  switch (a) {
    case FfnActivation::SwiGLU: return "swiglu";
    case FfnActivation::GeLU: return "gelu";
  }
  return "?";
}

int Architecture::dense_layer_count() const { return moe ? moe->dense_leading_layers : layers; }
int Architecture::moe_layer_count() const { return layers - dense_layer_count(); }

namespace {

// Generous upper bounds: they catch typos (an extra zero digit is still
// accepted, a pasted parameter count is not) without limiting real models.
constexpr std::int64_t kMaxLayers = 10'000;
constexpr std::int64_t kMaxWidth = 1 << 20;    // hidden, ffn, ranks, head dims
constexpr std::int64_t kMaxHeads = 65'536;
constexpr std::int64_t kMaxVocab = 1 << 24;
constexpr std::int64_t kMaxExperts = 1 << 16;

int to_int(std::int64_t v) { return static_cast<int>(v); }

MlaConfig parse_mla(JsonObject& o) {
  MlaConfig m;
  m.q_lora_rank = to_int(o.integer("q_lora_rank", 0, kMaxWidth));
  m.kv_lora_rank = to_int(o.integer("kv_lora_rank", 1, kMaxWidth));
  m.qk_nope_head_dim = to_int(o.integer("qk_nope_head_dim", 0, kMaxWidth));
  m.qk_rope_head_dim = to_int(o.integer("qk_rope_head_dim", 0, kMaxWidth));
  m.v_head_dim = to_int(o.integer("v_head_dim", 1, kMaxWidth));
  if (m.qk_nope_head_dim + m.qk_rope_head_dim == 0)
    o.fail("qk_rope_head_dim", "qk_nope_head_dim + qk_rope_head_dim > 0");
  o.finish();
  return m;
}

MoeConfig parse_moe(JsonObject& o, int layers) {
  MoeConfig m;
  m.routed_experts = to_int(o.integer("routed_experts", 1, kMaxExperts));
  m.shared_experts = to_int(o.integer_or("shared_experts", 0, 0, kMaxExperts));
  m.experts_per_token = to_int(o.integer("experts_per_token", 1, kMaxExperts));
  m.expert_ffn_hidden = to_int(o.integer("expert_ffn_hidden", 1, kMaxWidth));
  m.dense_leading_layers = to_int(o.integer_or("dense_leading_layers", 0, 0, kMaxLayers));
  m.expert_groups = to_int(o.integer_or("expert_groups", 1, 1, kMaxExperts));
  m.max_groups_per_token = to_int(o.integer_or("max_groups_per_token", 0, 0, kMaxExperts));
  o.finish();

  if (m.experts_per_token > m.routed_experts)
    o.fail("experts_per_token", fmt::format("at most routed_experts ({})", m.routed_experts));
  if (m.dense_leading_layers > layers)
    o.fail("dense_leading_layers", fmt::format("at most layers ({})", layers));
  if (m.routed_experts % m.expert_groups != 0)
    o.fail("expert_groups", fmt::format("a divisor of routed_experts ({})", m.routed_experts));
  if (m.max_groups_per_token > m.expert_groups)
    o.fail("max_groups_per_token", fmt::format("at most expert_groups ({})", m.expert_groups));
  if (m.max_groups_per_token > 0) {
    // The reachable groups must hold enough experts for top-k routing.
    const int reachable = m.max_groups_per_token * (m.routed_experts / m.expert_groups);
    if (m.experts_per_token > reachable)
      o.fail("max_groups_per_token",
             fmt::format("enough groups to hold experts_per_token ({}) experts; {} groups of {} hold {}",
                         m.experts_per_token, m.max_groups_per_token,
                         m.routed_experts / m.expert_groups, reachable));
  }
  return m;
}

}  // namespace

Architecture parse_architecture(JsonObject& obj) {
  Architecture a;
  a.name = obj.string("name");
  if (a.name.empty()) obj.fail("name", "a non-empty string");
  a.layers = to_int(obj.integer("layers", 1, kMaxLayers));
  a.hidden = to_int(obj.integer("hidden", 1, kMaxWidth));
  a.heads = to_int(obj.integer("heads", 1, kMaxHeads));
  a.kv_heads = to_int(obj.integer_or("kv_heads", a.heads, 1, kMaxHeads));
  const std::string attention = obj.choice("attention", {"mha", "gqa", "mla"});
  a.attention = attention == "mla" ? AttentionKind::MLA : AttentionKind::MHA;
  // head_dim defaults to hidden/heads when that is exact; MLA describes its
  // own head widths and does not use head_dim.
  const std::int64_t default_head_dim = a.hidden % a.heads == 0 ? a.hidden / a.heads : 0;
  if (obj.has("head_dim") || default_head_dim == 0) {
    a.head_dim = to_int(obj.integer("head_dim", 1, kMaxWidth));
  } else {
    a.head_dim = to_int(obj.integer_or("head_dim", default_head_dim, 1, kMaxWidth));
  }
  const bool has_moe = obj.has("moe");
  a.ffn_hidden = to_int(obj.integer("ffn_hidden", 0, kMaxWidth));
  a.vocab = to_int(obj.integer("vocab", 1, kMaxVocab));
  a.activation = obj.choice("activation", {"swiglu", "gelu"}) == "swiglu" ? FfnActivation::SwiGLU
                                                                           : FfnActivation::GeLU;
  if (auto m = obj.object_optional("mla")) {
    if (a.attention != AttentionKind::MLA) obj.fail("mla", "no \"mla\" object unless attention is \"mla\"");
    a.mla = parse_mla(*m);
  } else if (a.attention == AttentionKind::MLA) {
    obj.fail("mla", "an \"mla\" object (attention is \"mla\")");
  }
  if (auto m = obj.object_optional("moe")) a.moe = parse_moe(*m, a.layers);
  a.mtp_depth = to_int(obj.integer_or("mtp_depth", 0, 0, 64));
  a.tied_embeddings = obj.boolean_or("tied_embeddings", false);
  a.source = obj.string_or("source", "");
  obj.finish();

  // Cross-field consistency.
  if (a.heads % a.kv_heads != 0) obj.fail("kv_heads", fmt::format("a divisor of heads ({})", a.heads));
  if (attention == "mha" && a.kv_heads != a.heads)
    obj.fail("kv_heads", fmt::format("equal to heads ({}) for \"mha\"; use \"gqa\" for fewer kv heads", a.heads));
  if (a.attention == AttentionKind::MLA && a.kv_heads != a.heads)
    obj.fail("kv_heads", fmt::format("equal to heads ({}) for \"mla\" (or absent)", a.heads));
  const int dense_layers = a.dense_layer_count();
  if (a.ffn_hidden == 0 && (dense_layers > 0 || !has_moe))
    obj.fail("ffn_hidden", "a positive integer (the model has dense FFN layers)");
  return a;
}

namespace {
constexpr std::string_view kPresetDir = "models/";
constexpr std::string_view kPresetExt = ".json";

std::string preset_path(const std::string& name) {
  return std::string(kPresetDir) + name + std::string(kPresetExt);
}
}  // namespace

std::vector<std::string> architecture_preset_names() {
  std::vector<std::string> names;
  for (std::string_view p : embedded_files(kPresetDir)) {
    if (p.size() <= kPresetDir.size() + kPresetExt.size()) continue;
    if (p.substr(p.size() - kPresetExt.size()) != kPresetExt) continue;
    std::string_view stem = p.substr(kPresetDir.size(), p.size() - kPresetDir.size() - kPresetExt.size());
    if (stem.find('/') != std::string_view::npos) continue;
    names.emplace_back(stem);
  }
  return names;  // embedded_files is sorted
}

Architecture architecture_preset(const std::string& name, const std::string& file,
                                 const std::string& json_path) {
  const std::string path = preset_path(name);
  auto text = name.find('/') == std::string::npos ? embedded_file(path) : std::nullopt;
  if (!text) {
    std::string list;
    for (const auto& n : architecture_preset_names()) list += (list.empty() ? "" : ", ") + n;
    throw InputError(file, json_path, fmt::format("unknown model preset \"{}\"", name),
                     fmt::format("one of the model presets: {}", list));
  }
  const std::string origin = "<embedded>/data/" + path;
  Json j = parse_json_text(std::string(*text), origin);
  JsonObject obj(j, origin, "");
  return parse_architecture(obj);
}

nlohmann::json to_json(const Architecture& a) {
  nlohmann::json j;
  j["name"] = a.name;
  j["layers"] = a.layers;
  j["hidden"] = a.hidden;
  j["heads"] = a.heads;
  j["kv_heads"] = a.kv_heads;
  j["head_dim"] = a.head_dim;
  j["ffn_hidden"] = a.ffn_hidden;
  j["vocab"] = a.vocab;
  j["activation"] = to_string(a.activation);
  j["attention"] = a.attention == AttentionKind::MLA ? "mla" : (a.kv_heads == a.heads ? "mha" : "gqa");
  if (a.mla) {
    j["mla"] = {{"q_lora_rank", a.mla->q_lora_rank},
                {"kv_lora_rank", a.mla->kv_lora_rank},
                {"qk_nope_head_dim", a.mla->qk_nope_head_dim},
                {"qk_rope_head_dim", a.mla->qk_rope_head_dim},
                {"v_head_dim", a.mla->v_head_dim}};
  }
  if (a.moe) {
    j["moe"] = {{"routed_experts", a.moe->routed_experts},
                {"shared_experts", a.moe->shared_experts},
                {"experts_per_token", a.moe->experts_per_token},
                {"expert_ffn_hidden", a.moe->expert_ffn_hidden},
                {"dense_leading_layers", a.moe->dense_leading_layers},
                {"expert_groups", a.moe->expert_groups},
                {"max_groups_per_token", a.moe->max_groups_per_token}};
  }
  j["mtp_depth"] = a.mtp_depth;
  j["tied_embeddings"] = a.tied_embeddings;
  j["source"] = a.source;
  return j;
}

}  // namespace trainsim::model
