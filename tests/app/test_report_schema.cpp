// The report's documented layout (docs/report-schema.json) against the
// reports trainsim writes. The validator below implements exactly the JSON
// Schema keywords the schema file uses (type, required, properties,
// additionalProperties, items, enum, minimum, plus the annotations $schema,
// title and description) and rejects any other keyword, so the file cannot
// silently rely on a rule nobody checks.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "trainsim/app/report.hpp"
#include "trainsim/app/run_cost.hpp"
#include "trainsim/app/scenario.hpp"
#include "trainsim/common/json_reader.hpp"

using namespace trainsim;

namespace {

bool has_type(const Json& v, const std::string& t) {
  if (t == "object") return v.is_object();
  if (t == "array") return v.is_array();
  if (t == "string") return v.is_string();
  if (t == "boolean") return v.is_boolean();
  if (t == "null") return v.is_null();
  if (t == "integer") return v.is_number_integer();
  if (t == "number") return v.is_number();
  return false;
}

// Appends one line per violation of `schema` by `v` at JSON pointer `at`.
void validate(const Json& schema, const Json& v, const std::string& at, std::vector<std::string>& errors) {
  static const std::set<std::string> known = {"$schema", "title", "description", "type", "required", "properties",
                                              "additionalProperties", "items", "enum", "minimum"};
  for (const auto& [k, _] : schema.items())
    if (!known.count(k)) errors.push_back(at + ": schema keyword \"" + k + "\" is not supported by this validator");
  if (schema.contains("type")) {
    const Json& t = schema["type"];
    bool ok = false;
    for (const auto& one : t.is_array() ? t : Json::array({t})) ok = ok || has_type(v, one.get<std::string>());
    if (!ok) {
      errors.push_back(at + ": " + v.type_name() + " where the schema says " + t.dump());
      return;
    }
  }
  if (schema.contains("enum")) {
    bool found = false;
    for (const auto& e : schema["enum"]) found = found || e == v;
    if (!found) errors.push_back(at + ": " + v.dump() + " not one of " + schema["enum"].dump());
  }
  if (schema.contains("minimum") && v.is_number() && v.get<double>() < schema["minimum"].get<double>())
    errors.push_back(at + ": " + v.dump() + " below the minimum " + schema["minimum"].dump());
  if (v.is_object()) {
    for (const auto& r : schema.value("required", Json::array()))
      if (!v.contains(r.get<std::string>())) errors.push_back(at + ": missing key \"" + r.get<std::string>() + "\"");
    const Json props = schema.value("properties", Json::object());
    const Json extra = schema.value("additionalProperties", Json(true));
    for (const auto& [k, sub] : v.items()) {
      if (props.contains(k)) validate(props[k], sub, at + "/" + k, errors);
      else if (extra.is_object()) validate(extra, sub, at + "/" + k, errors);
      else if (extra == false) errors.push_back(at + ": key \"" + k + "\" is not in the schema");
    }
  }
  if (v.is_array() && schema.contains("items"))
    for (std::size_t i = 0; i < v.size(); ++i) validate(schema["items"], v[i], at + "/" + std::to_string(i), errors);
}

std::vector<std::string> violations(const Json& schema, const Json& v) {
  std::vector<std::string> errors;
  validate(schema, v, "", errors);
  return errors;
}

Json schema() { return parse_json_file(std::string(TRAINSIM_SOURCE_DIR) + "/docs/report-schema.json"); }

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("report-schema validator: finds each kind of violation it claims to check") {
  const Json s = Json::parse(R"({"type":"object","required":["a"],"additionalProperties":false,
    "properties":{"a":{"type":"integer","minimum":0},"b":{"type":"array","items":{"enum":["x","y"]}},
                  "c":{"type":["string","null"]},
                  "m":{"type":"object","additionalProperties":{"type":"number"}}}})");
  CHECK(violations(s, Json::parse(R"({"a":1,"b":["x"],"c":null,"m":{"k":1.5}})")).empty());
  CHECK(violations(s, Json::parse(R"({"b":[]})")).size() == 1);        // missing a
  CHECK(violations(s, Json::parse(R"({"a":1,"z":0})")).size() == 1);   // extra key
  CHECK(violations(s, Json::parse(R"({"a":1.5})")).size() == 1);       // not an integer
  CHECK(violations(s, Json::parse(R"({"a":-1})")).size() == 1);        // below minimum
  CHECK(violations(s, Json::parse(R"({"a":1,"b":["q"]})")).size() == 1);  // not in enum
  CHECK(violations(s, Json::parse(R"({"a":1,"c":3})")).size() == 1);   // neither string nor null
  CHECK(violations(s, Json::parse(R"({"a":1,"m":{"k":"s"}})")).size() == 1);  // map value type
  CHECK(violations(Json::parse(R"({"pattern":"x"})"), Json(1)).size() == 1);  // unsupported keyword
}
}

TEST_SUITE("golden") {
// Every shipped scenario (scenarios/*.json) simulated and its report checked
// against docs/report-schema.json: a renamed, added or removed key fails here
// until the schema (and schema_version) says so.
TEST_CASE("every shipped scenario's report validates against docs/report-schema.json") {
  namespace fs = std::filesystem;
  const Json s = schema();
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(fs::path(TRAINSIM_SOURCE_DIR) / "scenarios"))
    if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() >= 5);
  for (const auto& f : files) {
    CAPTURE(f.string());
    // The report as `trainsim simulate --report` writes it (with the run block).
    const app::Simulation sim = app::simulate(app::load_scenario(f.string()));
    const Json r = app::make_report(sim, app::evaluate_run(sim));
    CHECK(r.at("schema_version") == app::kReportSchemaVersion);
    const auto errors = violations(s, r);
    for (const auto& e : errors) MESSAGE(e);
    CHECK(errors.empty());
  }
}

TEST_CASE("report-schema: a renamed key fails validation") {
  const app::Simulation sim =
      app::simulate(app::load_scenario(std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/cpu-mini-moe.json"));
  Json r = app::make_report(sim, app::evaluate_run(sim));
  CHECK(violations(schema(), r).empty());
  r["memory"]["peak_GiB_per_gpu"] = r["memory"]["peak_gib_per_gpu"];
  r["memory"].erase("peak_gib_per_gpu");
  CHECK(violations(schema(), r).size() == 2);  // one key missing, one unknown
}
}
