// Fuzzes the measurement import (calibrate --import tables): the tables are
// checked, fitted and turned into a profile, which must then load.
#include "fuzz_input.hpp"
#include "trainsim/calibrate/import.hpp"
#include "trainsim/hardware/calibration.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return trainsim::fuzz::run(data, size, [](const trainsim::Json& j) {
    const auto profile = trainsim::calibrate::import_published_tables(j, "fuzz.json");
    trainsim::hw::parse_profile(profile, "fuzz.json");
  });
}
