#include <doctest/doctest.h>

#include "../support/test_support.hpp"

#include <algorithm>
#include <string>

#include "trainsim/model/architecture.hpp"

using namespace trainsim;
using namespace trainsim::model;

namespace {

Architecture parse_text(const std::string& text) {
  Json j = parse_json_text(text, "m.json");
  JsonObject o(j, "m.json", "/model");
  return parse_architecture(o);
}

// A small valid MoE + MLA model; tests patch one field at a time.
Json small_moe() {
  return parse_json_text(R"({
    "name": "tiny", "layers": 4, "hidden": 256, "heads": 4, "ffn_hidden": 512, "vocab": 1000,
    "activation": "swiglu", "attention": "mla",
    "mla": {"q_lora_rank": 64, "kv_lora_rank": 32, "qk_nope_head_dim": 32, "qk_rope_head_dim": 16,
            "v_head_dim": 32},
    "moe": {"routed_experts": 8, "shared_experts": 1, "experts_per_token": 2, "expert_ffn_hidden": 128,
            "dense_leading_layers": 1, "expert_groups": 4, "max_groups_per_token": 2},
    "mtp_depth": 1, "source": "test"})",
                         "m.json");
}

InputError parse_error(const Json& j) {
  return test::input_error_of([&] {
    JsonObject o(j, "m.json", "/model");
    parse_architecture(o);
  });
}

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("parse_architecture reads a complete MLA + MoE object") {
  Json j = small_moe();
  JsonObject o(j, "m.json", "/model");
  Architecture a = parse_architecture(o);
  CHECK(a.name == "tiny");
  CHECK(a.attention == AttentionKind::MLA);
  CHECK(a.kv_heads == 4);   // defaults to heads
  CHECK(a.head_dim == 64);  // defaults to hidden / heads
  REQUIRE(a.mla);
  CHECK(a.mla->kv_lora_rank == 32);
  REQUIRE(a.moe);
  CHECK(a.moe->max_groups_per_token == 2);
  CHECK(a.dense_layer_count() == 1);
  CHECK(a.moe_layer_count() == 3);
  CHECK_FALSE(a.tied_embeddings);
}

TEST_CASE("parse_architecture defaults and GQA") {
  Architecture a = parse_text(R"({"name": "g", "layers": 2, "hidden": 128, "heads": 8, "kv_heads": 2,
      "ffn_hidden": 256, "vocab": 100, "activation": "gelu", "attention": "gqa"})");
  CHECK(a.attention == AttentionKind::MHA);
  CHECK(a.kv_heads == 2);
  CHECK(a.activation == FfnActivation::GeLU);
  CHECK(a.dense_layer_count() == 2);
  CHECK(a.moe_layer_count() == 0);
  CHECK(a.mtp_depth == 0);
  CHECK(a.source.empty());
}

TEST_CASE("unknown keys are rejected with their JSON path") {
  Json j = small_moe();
  j["moe"]["experts_per_tok"] = 8;
  InputError e = parse_error(j);
  CHECK(e.file() == "m.json");
  CHECK(e.json_path() == "/model/moe/experts_per_tok");
  CHECK(std::string(e.what()).find("did you mean 'experts_per_token'") != std::string::npos);

  Json k = small_moe();
  k["layer"] = 3;
  CHECK(parse_error(k).json_path() == "/model/layer");
}

TEST_CASE("wrong types and out-of-range values are rejected") {
  Json j = small_moe();
  j["hidden"] = "7168";
  CHECK(parse_error(j).json_path() == "/model/hidden");
  j = small_moe();
  j["layers"] = 0;
  CHECK(parse_error(j).json_path() == "/model/layers");
  j = small_moe();
  j["activation"] = "relu";
  CHECK(parse_error(j).json_path() == "/model/activation");
  j = small_moe();
  j["tied_embeddings"] = 1;
  CHECK(parse_error(j).json_path() == "/model/tied_embeddings");
  j = small_moe();
  j["vocab"] = 12.5;
  CHECK(parse_error(j).json_path() == "/model/vocab");
}

TEST_CASE("consistency checks name the offending field") {
  Json j = parse_json_text(R"({"name": "g", "layers": 2, "hidden": 128, "heads": 8, "kv_heads": 3,
      "ffn_hidden": 256, "vocab": 100, "activation": "swiglu", "attention": "gqa"})", "m.json");
  InputError e = parse_error(j);
  CHECK(e.json_path() == "/model/kv_heads");
  CHECK(std::string(e.what()).find("divisor of heads (8)") != std::string::npos);

  j = small_moe();
  j["moe"]["experts_per_token"] = 9;
  e = parse_error(j);
  CHECK(e.json_path() == "/model/moe/experts_per_token");
  CHECK(std::string(e.what()).find("at most routed_experts (8)") != std::string::npos);

  j = small_moe();
  j["moe"]["max_groups_per_token"] = 5;
  CHECK(parse_error(j).json_path() == "/model/moe/max_groups_per_token");

  j = small_moe();
  j["moe"]["experts_per_token"] = 5;  // 2 groups of 2 experts hold only 4
  CHECK(parse_error(j).json_path() == "/model/moe/max_groups_per_token");

  j = small_moe();
  j["moe"]["expert_groups"] = 3;  // does not divide 8 experts
  CHECK(parse_error(j).json_path() == "/model/moe/expert_groups");

  j = small_moe();
  j["moe"]["dense_leading_layers"] = 5;
  CHECK(parse_error(j).json_path() == "/model/moe/dense_leading_layers");

  j = small_moe();
  j.erase("mla");
  CHECK(parse_error(j).json_path() == "/model/mla");

  j = small_moe();
  j["attention"] = "mha";  // an "mla" object without MLA attention
  CHECK(parse_error(j).json_path() == "/model/mla");

  j = small_moe();
  j["mla"].erase("kv_lora_rank");
  CHECK(parse_error(j).json_path() == "/model/mla/kv_lora_rank");

  j = parse_json_text(R"({"name": "g", "layers": 2, "hidden": 128, "heads": 8, "kv_heads": 2,
      "ffn_hidden": 256, "vocab": 100, "activation": "swiglu", "attention": "mha"})", "m.json");
  CHECK(parse_error(j).json_path() == "/model/kv_heads");  // "mha" needs kv_heads == heads
}

TEST_CASE("to_json round-trips through parse_architecture") {
  Json j = small_moe();
  JsonObject o(j, "m.json", "");
  Architecture a = parse_architecture(o);
  Json out = to_json(a);
  JsonObject o2(out, "out", "");
  CHECK(parse_architecture(o2) == a);
  for (const auto& name : architecture_preset_names()) {
    CAPTURE(name);
    Architecture p = architecture_preset(name);
    Json pj = to_json(p);
    JsonObject po(pj, "out", "");
    CHECK(parse_architecture(po) == p);
  }
}

TEST_CASE("presets: names, sources, unknown name") {
  auto names = architecture_preset_names();
  for (const char* n : {"deepseek-v3", "llama3-70b", "gpt3-175b", "llama3-8b", "deepseek-v2-lite"})
    CHECK(std::find(names.begin(), names.end(), n) != names.end());
  CHECK(std::is_sorted(names.begin(), names.end()));
  for (const auto& n : names) {
    CAPTURE(n);
    Architecture a = architecture_preset(n);
    CHECK(a.name == n);
    CHECK_FALSE(a.source.empty());
  }
  try {
    architecture_preset("deepseek-v4", "scenario.json", "/model/preset");
    FAIL("expected an error");
  } catch (const InputError& e) {
    CHECK(e.file() == "scenario.json");
    CHECK(e.json_path() == "/model/preset");
    CHECK(std::string(e.what()).find("deepseek-v3") != std::string::npos);
    CHECK(std::string(e.what()).find("llama3-70b") != std::string::npos);
  }
  CHECK_THROWS_AS(architecture_preset("../gpus/H800"), InputError);
}

TEST_CASE("DeepSeek-V3 preset matches config_671B") {
  // Source: deepseek-ai/DeepSeek-V3 inference/configs/config_671B.json.
  Architecture a = architecture_preset("deepseek-v3");
  CHECK(a.layers == 61);
  CHECK(a.hidden == 7168);
  CHECK(a.heads == 128);
  CHECK(a.ffn_hidden == 18432);
  CHECK(a.vocab == 129280);
  CHECK(a.attention == AttentionKind::MLA);
  CHECK(*a.mla == MlaConfig{1536, 512, 128, 64, 128});
  CHECK(*a.moe == MoeConfig{256, 1, 8, 2048, 3, 8, 4});
  CHECK(a.dense_layer_count() == 3);
  CHECK(a.moe_layer_count() == 58);
  CHECK(a.mtp_depth == 1);
  CHECK_FALSE(a.tied_embeddings);
}
}
