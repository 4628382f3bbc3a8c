#include "trainsim/common/json_reader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

namespace trainsim {

Json parse_json_file(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(file, "", "a file that cannot be opened", "a readable JSON file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_json_text(ss.str(), file);
}

Json parse_json_text(const std::string& text, const std::string& origin) {
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    // nlohmann reports "[json.exception.parse_error.101] parse error at line L, column C: ..."
    std::string what = e.what();
    auto pos = what.find("parse error");
    throw InputError(origin, "", "malformed JSON (" + (pos == std::string::npos ? what : what.substr(pos)) + ")",
                     "valid JSON");
  }
}

std::string describe_json(const Json& j) {
  std::string s = j.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  const char* type = j.type_name();
  if (j.is_object() || j.is_array()) return fmt::format("{} {}", type, s);
  return fmt::format("{} ({})", s, type);
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

JsonObject::JsonObject(const Json& j, std::string file, std::string path)
    : j_(&j), file_(std::move(file)), path_(std::move(path)) {
  if (!j.is_object()) throw InputError(file_, path_.empty() ? "/" : path_, describe_json(j), "a JSON object");
}

std::string JsonObject::child_path(const std::string& key) const {
  // RFC 6901 escaping of '~' and '/'.
  std::string k;
  for (char c : key) {
    if (c == '~') k += "~0";
    else if (c == '/') k += "~1";
    else k += c;
  }
  return path_ + "/" + k;
}

bool JsonObject::has(const std::string& key) const { return j_->contains(key); }

void JsonObject::fail(const std::string& key, const std::string& expected) const {
  const Json* v = j_->contains(key) ? &j_->at(key) : nullptr;
  throw InputError(file_, child_path(key), v ? describe_json(*v) : std::string("nothing"), expected);
}

void JsonObject::fail_value(const std::string& key, const Json& v, const std::string& expected) const {
  throw InputError(file_, child_path(key), describe_json(v), expected);
}

const Json& JsonObject::at(const std::string& key, const char* expected) {
  seen_.insert(key);
  auto it = j_->find(key);
  if (it == j_->end())
    throw InputError(file_, child_path(key), "a missing key", fmt::format("required key '{}' ({})", key, expected));
  return *it;
}

const Json& JsonObject::raw(const std::string& key) { return at(key, "a value"); }

const Json* JsonObject::raw_optional(const std::string& key) {
  seen_.insert(key);
  auto it = j_->find(key);
  return it == j_->end() ? nullptr : &*it;
}

double JsonObject::number(const std::string& key, double min, double max) {
  const Json& v = at(key, "a number");
  if (!v.is_number()) fail_value(key, v, fmt::format("a number in [{}, {}]", min, max));
  double d = v.get<double>();
  if (!std::isfinite(d) || d < min || d > max) fail_value(key, v, fmt::format("a number in [{}, {}]", min, max));
  return d;
}

std::optional<double> JsonObject::number_optional(const std::string& key, double min, double max) {
  if (!has(key)) { seen_.insert(key); return std::nullopt; }
  return number(key, min, max);
}

double JsonObject::number_or(const std::string& key, double fallback, double min, double max) {
  return number_optional(key, min, max).value_or(fallback);
}

std::int64_t JsonObject::integer(const std::string& key, std::int64_t min, std::int64_t max) {
  const Json& v = at(key, "an integer");
  std::string exp = fmt::format("an integer in [{}, {}]", min, max);
  if (v.is_number_integer()) {
    std::int64_t i = v.is_number_unsigned() ? static_cast<std::int64_t>(v.get<std::uint64_t>()) : v.get<std::int64_t>();
    if (i < min || i > max) fail_value(key, v, exp);
    return i;
  }
  if (v.is_number_float()) {
    // Accept 15360.0 or 1.536e4 for integers, as users write them, but never a fraction.
    double d = v.get<double>();
    if (std::isfinite(d) && std::floor(d) == d && d >= static_cast<double>(min) && d <= static_cast<double>(max))
      return static_cast<std::int64_t>(d);
  }
  fail_value(key, v, exp);
}

std::optional<std::int64_t> JsonObject::integer_optional(const std::string& key, std::int64_t min,
                                                         std::int64_t max) {
  if (!has(key)) { seen_.insert(key); return std::nullopt; }
  return integer(key, min, max);
}

std::int64_t JsonObject::integer_or(const std::string& key, std::int64_t fallback, std::int64_t min,
                                    std::int64_t max) {
  return integer_optional(key, min, max).value_or(fallback);
}

bool JsonObject::boolean(const std::string& key) {
  const Json& v = at(key, "true or false");
  if (!v.is_boolean()) fail_value(key, v, "true or false");
  return v.get<bool>();
}

bool JsonObject::boolean_or(const std::string& key, bool fallback) {
  if (!has(key)) { seen_.insert(key); return fallback; }
  return boolean(key);
}

std::string JsonObject::string(const std::string& key) {
  const Json& v = at(key, "a string");
  if (!v.is_string()) fail_value(key, v, "a string");
  return v.get<std::string>();
}

std::string JsonObject::string_or(const std::string& key, const std::string& fallback) {
  if (!has(key)) { seen_.insert(key); return fallback; }
  return string(key);
}

std::string JsonObject::choice(const std::string& key, std::initializer_list<const char*> allowed) {
  std::string list;
  for (const char* a : allowed) list += (list.empty() ? "" : ", ") + fmt::format("\"{}\"", a);
  const Json& v = at(key, "a string");
  if (!v.is_string()) fail_value(key, v, "one of " + list);
  std::string s = v.get<std::string>();
  for (const char* a : allowed)
    if (s == a) return s;
  fail_value(key, v, "one of " + list);
}

std::string JsonObject::choice_or(const std::string& key, const std::string& fallback,
                                  std::initializer_list<const char*> allowed) {
  if (!has(key)) { seen_.insert(key); return fallback; }
  return choice(key, allowed);
}

JsonObject JsonObject::object(const std::string& key) {
  const Json& v = at(key, "an object");
  return JsonObject(v, file_, child_path(key));
}

std::optional<JsonObject> JsonObject::object_optional(const std::string& key) {
  if (!has(key)) { seen_.insert(key); return std::nullopt; }
  return object(key);
}

void JsonObject::finish() const {
  for (auto it = j_->begin(); it != j_->end(); ++it) {
    if (seen_.count(it.key())) continue;
    std::string best;
    std::size_t best_d = 4;
    for (const auto& s : seen_) {
      std::size_t d = edit_distance(it.key(), s);
      if (d < best_d) { best_d = d; best = s; }
    }
    std::string known;
    for (const auto& s : seen_) known += (known.empty() ? "" : ", ") + s;
    std::string expected = best.empty() ? fmt::format("one of the known keys: {}", known)
                                        : fmt::format("a known key (did you mean '{}'?)", best);
    throw InputError(file_, child_path(it.key()), fmt::format("unknown key '{}'", it.key()), expected);
  }
}

}  // namespace trainsim
