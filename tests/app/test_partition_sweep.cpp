// The stage partition against the simulated step: a layer-count sweep of
// DeepSeek-V3 moves smoothly, and a jump is the indivisibility of layers
// (issue 8 acceptance).
#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "trainsim/app/report.hpp"
#include "trainsim/app/scenario.hpp"
#include "trainsim/common/error.hpp"
#include "trainsim/common/json_reader.hpp"

using namespace trainsim;

namespace {

Json v3() { return parse_json_file(std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/deepseek-v3-pretrain.json"); }

Json report(const Json& scenario) {
  return app::make_report(app::simulate(app::parse_scenario(scenario, "test.json"), app::SimulateOptions{}));
}

// The V3 scenario with an inline copy of the preset and `layers` decoder layers.
Json v3_with_layers(int layers) {
  Json s = v3();
  Json m = app::to_json(app::parse_scenario(s, "v3.json"))["model"];
  m.erase("source");
  m["name"] = "deepseek-v3-" + std::to_string(layers) + "-layers";
  m["layers"] = layers;
  s["model"] = m;
  return s;
}

double max_load(const Json& r) {
  const auto& d = r["pipeline"]["partition"]["device_load_ms_per_microbatch"];
  double mx = 0;
  for (const auto& v : d) mx = std::max(mx, v.get<double>());
  return mx;
}

}  // namespace

TEST_SUITE("validation") {
TEST_CASE("DeepSeek-V3 layer sweep 53..64: monotone, and steps only where the busiest device gains a layer") {
  // One more layer adds 1/61 = 1.6% of the work, spread over the devices
  // by the partition; the step follows the busiest device. Expected: GPU-hours
  // never fall, and each step's rise is at most the rise of the busiest
  // device's load per micro-batch (layers are indivisible: DualPipe's 16
  // devices each hold 8 MoE layers at 61, so at 62 one holds 9) plus 1.5
  // points for the parts of the step that follow the mean load (bubbles,
  // gradient sync). Measured (docs/VALIDATION.md): +0.1..+0.7% per layer,
  // except +3.1% (61) and +5.2% (62) where the busiest device gains 7.0%
  // and 5.2%. Not fitted: no parameter was tuned on this sweep.
  double prev_hours = 0, prev_load = 0;
  for (int layers = 53; layers <= 64; ++layers) {
    const Json r = report(v3_with_layers(layers));
    const double hours = r["gpu_hours_per_trillion_tokens"].get<double>(), load = max_load(r);
    MESSAGE(layers << " layers: " << hours << " GPU-h/1T tokens, busiest device " << load << " ms/micro-batch");
    if (prev_hours > 0) {
      const double rise = hours / prev_hours - 1, load_rise = std::max(0.0, load / prev_load - 1);
      CHECK(rise >= -1e-9);
      CHECK(rise <= load_rise + 0.015);
    }
    prev_hours = hours;
    prev_load = load;
  }
}
}

TEST_SUITE("unit") {
TEST_CASE("layers_per_stage fixes the partition, and must cover every layer once") {
  // V3: embedding + 61 decoder layers + head + 1 MTP = 64 items on 16 stages.
  Json s = v3();
  s["parallelism"]["layers_per_stage"] = {6, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 2};
  const app::Scenario sc = app::parse_scenario(s, "v3.json");
  CHECK(sc.plan.layers_per_stage.size() == 16);
  s["parallelism"]["layers_per_stage"][15] = 3;  // 65 items
  try {
    app::parse_scenario(s, "v3.json");
    FAIL("accepted layers_per_stage summing to 65");
  } catch (const InputError& e) {
    CHECK(e.json_path() == "/parallelism/layers_per_stage");
  }
  s["parallelism"]["layers_per_stage"] = {64};  // one stage for 16
  CHECK_THROWS_AS(app::parse_scenario(s, "v3.json"), InputError);
}
}
