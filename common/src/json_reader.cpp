#include "trainsim/common/json_reader.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace trainsim {

namespace {

// Bounds on any JSON input, checked before nlohmann parses it. Scenarios,
// profiles and measurement tables nest at most 6 levels and weigh under
// 100 KB; the bounds leave room for generated files while keeping the parse
// (and every recursive walk over the result) far from the stack and memory
// limits.
constexpr std::size_t kMaxJsonDepth = 64;
constexpr std::size_t kMaxJsonBytes = 64u << 20;

// One level of the pre-scan: an object (with the last key read) or an array
// (with the index of the current element).
struct ScanFrame {
  bool object = false;
  bool expect_key = false;
  std::string key;
  std::size_t index = 0;
};

std::string scan_path(const std::vector<ScanFrame>& stack) {
  std::string path;
  for (const auto& f : stack) {
    if (!f.object) {
      path += "/" + std::to_string(f.index);
      continue;
    }
    path += '/';
    for (char c : f.key) path += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
    if (path.size() > 400) break;  // the message cuts it anyway
  }
  return path;
}

// Skips a string starting at text[i] == '"'; returns the index after it and
// its raw (still escaped) contents, truncated to what a message shows.
std::size_t skip_string(const std::string& text, std::size_t i, std::string& raw) {
  raw.clear();
  for (++i; i < text.size() && text[i] != '"'; ++i) {
    if (text[i] == '\\') ++i;
    else if (raw.size() < 256) raw += text[i];
  }
  return i + 1;
}

// A token that starts like a number: true when it is a JSON number whose
// value is outside double's range (1e400; nlohmann would throw out_of_range,
// which is no input error). Malformed tokens are left to the parser.
std::size_t skip_number(const std::string& text, std::size_t i, bool& overflow) {
  const std::size_t start = i;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '-' ||
                             text[i] == '+' || text[i] == '.' || text[i] == 'e' || text[i] == 'E'))
    ++i;
  const std::string token = text.substr(start, std::min<std::size_t>(i - start, 4096));
  errno = 0;
  const double v = std::strtod(token.c_str(), nullptr);
  overflow = !std::isfinite(v) || (errno == ERANGE && std::fabs(v) > 1.0);
  return i;
}

// Rejects nesting deeper than kMaxJsonDepth and numbers out of double range,
// naming the JSON path where they occur. Linear, no recursion.
void prescan_json(const std::string& text, const std::string& origin) {
  std::vector<ScanFrame> stack;
  std::string raw;
  for (std::size_t i = 0; i < text.size();) {
    const char c = text[i];
    if (c == '"') {
      i = skip_string(text, i, raw);
      if (!stack.empty() && stack.back().object && stack.back().expect_key) {
        stack.back().key = raw;
        stack.back().expect_key = false;
      }
    } else if (c == '{' || c == '[') {
      if (stack.size() == kMaxJsonDepth)
        throw InputError(origin, scan_path(stack), fmt::format("a value nested more than {} levels deep", kMaxJsonDepth),
                         fmt::format("JSON nested at most {} levels deep", kMaxJsonDepth));
      stack.push_back({c == '{', c == '{', "", 0});
      ++i;
    } else if (c == '}' || c == ']') {
      if (!stack.empty()) stack.pop_back();
      ++i;
    } else if (c == ',') {
      if (!stack.empty()) {
        if (stack.back().object) stack.back().expect_key = true;
        else ++stack.back().index;
      }
      ++i;
    } else if (c == '-' || std::isdigit(static_cast<unsigned char>(c))) {
      bool overflow = false;
      const std::size_t end = skip_number(text, i, overflow);
      if (overflow)
        throw InputError(origin, stack.empty() ? "/" : scan_path(stack), text.substr(i, end - i),
                         "a number within the range of a double (magnitude below 1.8e308)");
      i = end;
    } else {
      ++i;
    }
  }
}

}  // namespace

Json parse_json_file(const std::string& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(file, "", "a file that cannot be opened", "a readable JSON file");
  std::string text;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<std::size_t>(in.gcount()));
    if (text.size() > kMaxJsonBytes)
      throw InputError(file, "", "a file larger than 64 MiB", "a JSON file of at most 64 MiB");
  }
  if (in.bad()) throw InputError(file, "", "a file that cannot be read", "a readable JSON file");
  return parse_json_text(text, file);
}

Json parse_json_text(const std::string& text, const std::string& origin) {
  if (text.size() > kMaxJsonBytes)
    throw InputError(origin, "", fmt::format("{} bytes of JSON", text.size()), "at most 64 MiB of JSON");
  prescan_json(text, origin);
  try {
    return Json::parse(text);
  } catch (const Json::parse_error& e) {
    // nlohmann reports "[json.exception.parse_error.101] parse error at line L, column C: ..."
    std::string what = e.what();
    auto pos = what.find("parse error");
    throw InputError(origin, "", "malformed JSON (" + (pos == std::string::npos ? what : what.substr(pos)) + ")",
                     "valid JSON");
  } catch (const Json::exception& e) {
    // Anything else the parser refuses (the pre-scan catches the known cases).
    throw InputError(origin, "", std::string("JSON the parser refuses (") + e.what() + ")", "valid JSON");
  }
}

std::string describe_json(const Json& j) {
  // Invalid UTF-8 is replaced rather than thrown: this runs on error paths.
  std::string s = j.dump(-1, ' ', false, Json::error_handler_t::replace);
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
    // No suggestion for keys far longer than any known one (the distance is
    // quadratic in their length).
    for (const auto& s : it.key().size() > 256 ? std::set<std::string>{} : seen_) {
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
