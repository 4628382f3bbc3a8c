#pragma once
// Strict JSON reading. A JsonObject wraps one JSON object together with the
// file it came from and its JSON pointer, hands out typed, range-checked
// fields, remembers which keys were read, and `finish()` rejects every key
// that was not (a misspelled key is an error, never a silent default). All
// failures are InputError naming file, path, value and expectation.
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "trainsim/common/error.hpp"

namespace trainsim {

using Json = nlohmann::json;

// Parses a file; InputError (with line/column) on I/O or syntax errors.
Json parse_json_file(const std::string& file);
// Parses text that came from `origin` (a file name or "<inline>").
Json parse_json_text(const std::string& text, const std::string& origin);

// Short rendering of a JSON value for messages (strings quoted, long values cut).
std::string describe_json(const Json& j);

class JsonObject {
 public:
  // Throws InputError if `j` is not an object.
  JsonObject(const Json& j, std::string file, std::string path);

  const std::string& file() const { return file_; }
  const std::string& path() const { return path_; }
  std::string child_path(const std::string& key) const;

  bool has(const std::string& key) const;
  // Marks the key as read without interpreting it (for keys handled elsewhere).
  const Json& raw(const std::string& key);
  const Json* raw_optional(const std::string& key);

  double number(const std::string& key, double min, double max);
  std::optional<double> number_optional(const std::string& key, double min, double max);
  double number_or(const std::string& key, double fallback, double min, double max);

  std::int64_t integer(const std::string& key, std::int64_t min, std::int64_t max);
  std::optional<std::int64_t> integer_optional(const std::string& key, std::int64_t min,
                                               std::int64_t max);
  std::int64_t integer_or(const std::string& key, std::int64_t fallback, std::int64_t min,
                          std::int64_t max);

  bool boolean(const std::string& key);
  bool boolean_or(const std::string& key, bool fallback);

  std::string string(const std::string& key);
  std::string string_or(const std::string& key, const std::string& fallback);
  // A string that must be one of `allowed`.
  std::string choice(const std::string& key, std::initializer_list<const char*> allowed);
  std::string choice_or(const std::string& key, const std::string& fallback,
                        std::initializer_list<const char*> allowed);

  JsonObject object(const std::string& key);
  std::optional<JsonObject> object_optional(const std::string& key);

  // Rejects any key that was not read. Call once all fields are consumed.
  void finish() const;

  // Builds an InputError about `key` of this object.
  [[noreturn]] void fail(const std::string& key, const std::string& expected) const;

 private:
  const Json& at(const std::string& key, const char* expected);
  [[noreturn]] void fail_value(const std::string& key, const Json& v,
                               const std::string& expected) const;

  const Json* j_;
  std::string file_;
  std::string path_;
  std::set<std::string> seen_;
};

// Levenshtein distance, for "did you mean" suggestions.
std::size_t edit_distance(const std::string& a, const std::string& b);

}  // namespace trainsim
