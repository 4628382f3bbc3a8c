#pragma once
// Shared body of the fuzz targets: bytes -> JSON text -> a loader. Bad input
// must come back as an InputError; any other exception escapes, and libFuzzer
// reports it as a crash (an "internal error" of the CLI).
#include <cstddef>
#include <cstdint>
#include <string>

#include "trainsim/common/error.hpp"
#include "trainsim/common/json_reader.hpp"

namespace trainsim::fuzz {

template <class Loader>
int run(const std::uint8_t* data, std::size_t size, Loader&& load) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const Json j = parse_json_text(text, "fuzz.json");
    load(j);
  } catch (const InputError& e) {
    // The message must be one printable line, however odd the input.
    for (const char c : std::string(e.what()))
      if (c == '\n' || c == '\r') __builtin_trap();
  }
  return 0;
}

}  // namespace trainsim::fuzz
