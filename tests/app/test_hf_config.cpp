// Models from Hugging Face config.json files (app/hf_config.hpp): the shipped
// configs under scenarios/models/ resolve to the built-in presets where one
// exists, to the published parameter counts otherwise, and simulate.
#include <doctest/doctest.h>

#include <string>

#include "../support/test_support.hpp"
#include "trainsim/app/hf_config.hpp"
#include "trainsim/app/report.hpp"
#include "trainsim/app/scenario.hpp"
#include "trainsim/common/json_reader.hpp"
#include "trainsim/model/accounting.hpp"

using namespace trainsim;

namespace {

std::string models_dir() { return std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/models/"; }

app::HfModel shipped(const std::string& name) {
  return app::load_hf_config(models_dir() + name + ".json", "models/" + name + ".json");
}

// The config's architecture equals the preset in every field but the name and
// where the numbers come from.
void check_equals_preset(const std::string& config, const std::string& preset) {
  model::Architecture a = shipped(config).arch;
  const model::Architecture p = model::architecture_preset(preset);
  a.name = p.name;
  a.source = p.source;
  CHECK(a == p);
}

Json llama_config() { return parse_json_file(models_dir() + "llama3-8b.json"); }

app::HfModel parse(const Json& j) { return app::parse_hf_config(j, "cfg.json", "m", "cfg.json"); }

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("HF configs of DeepSeek-V3, DeepSeek-V2-Lite and Llama 3 resolve to the presets") {
  check_equals_preset("deepseek-v3", "deepseek-v3");
  check_equals_preset("deepseek-v2-lite", "deepseek-v2-lite");
  check_equals_preset("llama3-8b", "llama3-8b");
  check_equals_preset("llama3-70b", "llama3-70b");
  // Nothing approximated for these families.
  CHECK(shipped("deepseek-v3").notes.empty());
  CHECK(shipped("llama3-8b").notes.empty());
}

TEST_CASE("DeepSeek-V3's HF config gives 671B total and 37B activated parameters") {
  const model::ParamCount c = model::model_params(shipped("deepseek-v3").arch, false);
  const model::ParamCount p = model::model_params(model::architecture_preset("deepseek-v3"), false);
  CHECK(c.total == p.total);
  CHECK(c.active == p.active);
  // tests/model/test_accounting.cpp derives these exactly from config_671B.
  CHECK(c.total == 671026419200.0);
  CHECK(c.active == 37552297472.0);
}

TEST_CASE("MoE configs give the published parameter counts") {
  // Qwen2-57B-A14B (model card: 57.4B total; "A14B": 14B activated).
  // Per layer: attention 2 x 3584^2 + 2 x 3584 x 512 = 29.36M; 64 routed
  // experts of 3 x 3584 x 2560 = 27.53M each; shared expert 3 x 3584 x 20480
  // = 220.2M (held as 8 shared experts of width 2560). 28 layers + untied
  // embedding and head 2 x 151936 x 3584 = 1.089B:
  //   total  28 x (29.36M + 64 x 27.53M + 220.2M) + 1.089B = 57.41B
  //   active 28 x (29.36M + 8 x 27.53M + 220.2M) + 1.089B = 14.24B
  // Tolerance 0.5%: norms and routers, and the q/k/v biases and the shared
  // expert's gate the mapping does not count (notes), are below 0.1%.
  const app::HfModel q2 = shipped("qwen2-57b-a14b");
  CHECK(q2.arch.moe->shared_experts == 8);
  CHECK(q2.notes.size() == 3);  // biases, shared expert as 8, its gate
  const model::ParamCount c2 = model::model_params(q2.arch, false);
  CHECK(c2.total == doctest::Approx(57.41e9).epsilon(0.005));
  CHECK(c2.active == doctest::Approx(14.24e9).epsilon(0.005));

  // Qwen3-30B-A3B (model card: 30.5B total, 3.3B activated). Per layer:
  // attention 2048 x 4096 x 2 + 2 x 2048 x 512 = 18.87M; experts 3 x 2048 x
  // 768 = 4.719M each; 48 layers; embedding + head 2 x 151936 x 2048 = 622.3M:
  //   total  48 x (18.87M + 128 x 4.719M) + 622.3M = 30.53B
  //   active 48 x (18.87M + 8 x 4.719M) + 622.3M = 3.35B
  // Tolerance 0.5% as above.
  const model::ParamCount c3 = model::model_params(shipped("qwen3-30b-a3b").arch, false);
  CHECK(c3.total == doctest::Approx(30.53e9).epsilon(0.005));
  CHECK(c3.active == doctest::Approx(3.35e9).epsilon(0.005));

  // Mixtral 8x7B (Mistral AI: 46.7B total, 12.9B active). Per layer:
  // attention 2 x 4096^2 + 2 x 4096 x 1024 = 41.94M; experts 3 x 4096 x 14336
  // = 176.2M each; 32 layers; embedding + head 2 x 32000 x 4096 = 262.1M:
  //   total  32 x (41.94M + 8 x 176.2M) + 262.1M = 46.70B
  //   active 32 x (41.94M + 2 x 176.2M) + 262.1M = 12.88B
  const model::ParamCount cm = model::model_params(shipped("mixtral-8x7b").arch, false);
  CHECK(cm.total == doctest::Approx(46.70e9).epsilon(0.005));
  CHECK(cm.active == doctest::Approx(12.88e9).epsilon(0.005));
}

TEST_CASE("dense layers that are not the leading ones are moved first, with a note") {
  Json j = parse_json_file(models_dir() + "qwen3-30b-a3b.json");
  j["decoder_sparse_step"] = 2;  // layers 1, 3, 5, ... are MoE: 24 dense layers
  const app::HfModel m = parse(j);
  CHECK(m.arch.moe->dense_leading_layers == 24);
  CHECK(m.arch.ffn_hidden == 6144);
  REQUIRE(m.notes.size() == 2);
  CHECK(m.notes[1].find("24 dense-FFN layers are placed first") != std::string::npos);
  CHECK(m.arch.source.find("placed first") != std::string::npos);
  // mlp_only_layers as a leading run is exact.
  j["decoder_sparse_step"] = 1;
  j["mlp_only_layers"] = {0, 1};
  const app::HfModel lead = parse(j);
  CHECK(lead.arch.moe->dense_leading_layers == 2);
  CHECK(lead.notes.size() == 1);
}

TEST_CASE("bad HF configs are input errors naming the file and the key") {
  Json j = llama_config();
  j["model_type"] = "gpt2";
  auto e = test::input_error_of([&] { parse(j); });
  CHECK(e.file() == "cfg.json");
  CHECK(e.json_path() == "/model_type");
  CHECK(std::string(e.what()).find("deepseek_v3") != std::string::npos);

  j = llama_config();
  j.erase("hidden_size");
  e = test::input_error_of([&] { parse(j); });
  CHECK(e.json_path() == "/hidden_size");

  j = llama_config();
  j["num_key_value_heads"] = "8";
  CHECK(test::input_error_of([&] { parse(j); }).json_path() == "/num_key_value_heads");

  j = llama_config();
  j["num_key_value_heads"] = 5;  // does not divide 32 heads: found on the resolved model
  CHECK(test::input_error_of([&] { parse(j); }).json_path() == "/num_key_value_heads");

  j = llama_config();
  j["hidden_act"] = "gelu";
  CHECK(test::input_error_of([&] { parse(j); }).json_path() == "/hidden_act");

  j = parse_json_file(models_dir() + "mixtral-8x7b.json");
  j.erase("num_local_experts");
  CHECK(test::input_error_of([&] { parse(j); }).json_path() == "/num_local_experts");

  j = parse_json_file(models_dir() + "qwen3-30b-a3b.json");
  j["mlp_only_layers"] = {0, 48};
  CHECK(test::input_error_of([&] { parse(j); }).json_path() == "/mlp_only_layers");
}

TEST_CASE("a scenario's hf_config is relative to the scenario file; other keys beside it are errors") {
  const std::string file = std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/llama3-8b-hf.json";
  const app::Scenario s = app::load_scenario(file);
  CHECK(s.model_ref == "hf_config:models/llama3-8b.json");
  CHECK(s.arch.name == "llama3-8b");
  CHECK(s.arch.source == "Hugging Face config models/llama3-8b.json (model_type llama)");
  Json j = parse_json_file(file);
  j["model"]["layers"] = 4;
  CHECK(test::input_error_of([&] { app::parse_scenario(j, file); }).json_path() == "/model/layers");
  j["model"] = {{"hf_config", "models/missing.json"}};
  CHECK(test::input_error_of([&] { app::parse_scenario(j, file); }).file().find("missing.json") !=
        std::string::npos);
}
}

TEST_SUITE("validation") {
TEST_CASE("DeepSeek-V3 from its HF config predicts exactly what the preset predicts") {
  Json j = parse_json_file(std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/deepseek-v3-pretrain.json");
  const Json preset = app::make_report(app::simulate(app::parse_scenario(j, "v3.json")));
  j["model"] = {{"hf_config", models_dir() + "deepseek-v3.json"}};
  const Json hf = app::make_report(app::simulate(app::parse_scenario(j, "v3.json")));
  CHECK(hf["step_time_s"].get<double>() == preset["step_time_s"].get<double>());
  CHECK(hf["total_gpu_hours"].get<double>() == preset["total_gpu_hours"].get<double>());
  CHECK(hf["memory"]["peak_gib_per_gpu"].get<double>() == preset["memory"]["peak_gib_per_gpu"].get<double>());
  CHECK(hf["mfu"].get<double>() == preset["mfu"].get<double>());
}

TEST_CASE("the shipped HF-config scenarios load and simulate") {
  for (const std::string name : {"llama3-8b-hf", "qwen3-moe-hf", "mixtral-8x7b-hf"}) {
    CAPTURE(name);
    const app::Scenario s = app::load_scenario(std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/" + name + ".json");
    const Json r = app::make_report(app::simulate(s));
    const double step = r["step_time_s"].get<double>();
    MESSAGE(name << ": step " << step << " s, MFU " << r["mfu"].get<double>());
    CHECK(step > 0);
    // A plausible step: between 5% and 80% of peak.
    CHECK(r["mfu"].get<double>() > 0.05);
    CHECK(r["mfu"].get<double>() < 0.8);
    CHECK(r["memory"]["fits"].get<bool>());
  }
}
}
