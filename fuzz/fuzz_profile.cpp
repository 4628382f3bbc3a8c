// Fuzzes the calibration profile loader (hw::parse_profile).
#include "fuzz_input.hpp"
#include "trainsim/hardware/calibration.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return trainsim::fuzz::run(data, size, [](const trainsim::Json& j) { trainsim::hw::parse_profile(j, "fuzz.json"); });
}
