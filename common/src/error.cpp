#include "trainsim/common/error.hpp"

#include <fmt/format.h>

namespace trainsim {

namespace {
std::string compose(const std::string& file, const std::string& path, const std::string& value,
                    const std::string& expected) {
  return fmt::format("{}: at {}: got {}; expected {}", file.empty() ? "<input>" : file,
                     path.empty() ? "/" : path, value, expected);
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
