#include "trainsim/common/error.hpp"

#include <fmt/format.h>

namespace trainsim {

namespace {
std::string compose(const std::string& file, const std::string& path, const std::string& value,
                    const std::string& expected) {
  // A whole-document problem (unreadable file, malformed JSON, a command-line
  // option) has no JSON path to name.
  if (path.empty()) return fmt::format("{}: got {}; expected {}", file.empty() ? "<input>" : file, value, expected);
  return fmt::format("{}: at {}: got {}; expected {}", file.empty() ? "<input>" : file, path, value, expected);
}
}  // namespace

InputError::InputError(std::string file, std::string json_path, std::string value,
                       std::string expected)
    : std::runtime_error(compose(file, json_path, value, expected)),
      file_(std::move(file)),
      path_(std::move(json_path)),
      value_(std::move(value)),
      expected_(std::move(expected)) {}

}  // namespace trainsim
