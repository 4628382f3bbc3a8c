// Fuzzes the scenario loader: JSON parsing, limits and every validation of
// app::parse_scenario (model, cluster, fabric faults, layout, routing).
#include "fuzz_input.hpp"
#include "trainsim/app/scenario.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return trainsim::fuzz::run(data, size, [](const trainsim::Json& j) { trainsim::app::parse_scenario(j, "fuzz.json"); });
}
