#include "trainsim/common/error.hpp"

#include <fmt/format.h>

namespace trainsim {

std::string printable(const std::string& s, std::size_t max_chars) {
  std::string out;
  std::size_t shown = 0;  // characters, not bytes: a UTF-8 sequence is never split
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    const bool continuation = (c & 0xC0) == 0x80;
    if (!continuation && shown++ == max_chars) return out + "...";
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
    else out += ch;
  }
  return out;
}

namespace {
// Each part is cut on its own, so a huge value cannot hide what was expected.
// The expectation may list the accepted keys, hence its longer bound.
std::string compose(const std::string& file, const std::string& path, const std::string& value,
                    const std::string& expected) {
  // A whole-document problem (unreadable file, malformed JSON, a command-line
  // option) has no JSON path to name.
  const std::string f = file.empty() ? "<input>" : printable(file);
  if (path.empty()) return fmt::format("{}: got {}; expected {}", f, printable(value), printable(expected, 600));
  return fmt::format("{}: at {}: got {}; expected {}", f, printable(path), printable(value), printable(expected, 600));
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
