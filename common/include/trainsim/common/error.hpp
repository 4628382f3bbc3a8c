#pragma once
// Input errors. Every bad input is reported as an InputError that names the
// file, the JSON path (RFC 6901 pointer), the offending value and what was
// expected. The CLI turns it into a one-line message and exit code 2; library
// code never exits.
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

}  // namespace trainsim
