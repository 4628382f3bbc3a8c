#pragma once
// The project's data files (data/**/*.json: GPU specs, model presets,
// calibration profiles, published reference tables) are compiled into the
// binary, so a run never depends on the working directory or an install path.
#include <optional>
#include <string_view>
#include <vector>

namespace trainsim {
// Contents of data/<path>, e.g. embedded_file("gpus/H800.json").
std::optional<std::string_view> embedded_file(std::string_view path);
// Paths (relative to data/) that start with `prefix`, sorted.
std::vector<std::string_view> embedded_files(std::string_view prefix);
}  // namespace trainsim
