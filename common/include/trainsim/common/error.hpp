#pragma once
// Input errors. Every bad input is reported as an InputError that names the
// file, the JSON path (RFC 6901 pointer), the offending value and what was
// expected. The CLI turns it into a one-line message and exit code 2; library
// code never exits. The message is always one printable line: control
// characters are escaped and each part is cut to a bounded length
// (printable()), whatever the input held.
#include <cstddef>
#include <stdexcept>
#include <string>

namespace trainsim {

class InputError : public std::runtime_error {
 public:
  InputError(std::string file, std::string json_path, std::string value, std::string expected);
  const std::string& file() const { return file_; }
  const std::string& json_path() const { return path_; }
  const std::string& value() const { return value_; }
  const std::string& expected() const { return expected_; }

 private:
  std::string file_, path_, value_, expected_;
};

// `s` as one printable line for a message: control characters (newline, tab,
// escape, DEL, ...) written as \n, \t, \xNN, and cut after `max_chars`
// characters with "..." appended.
std::string printable(const std::string& s, std::size_t max_chars = 200);

}  // namespace trainsim
