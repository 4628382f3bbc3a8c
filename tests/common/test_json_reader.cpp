#include <doctest/doctest.h>

#include "trainsim/common/json_reader.hpp"
#include "trainsim/common/units.hpp"

using namespace trainsim;

TEST_SUITE("unit") {
TEST_CASE("JsonObject reads typed fields and rejects unknown keys with a suggestion") {
  Json j = parse_json_text(R"({"tp": 2, "schedule": "dualpipe", "nested": {"a": 1.5}, "shedule": 1})", "s.json");
  JsonObject o(j, "s.json", "/parallelism");
  CHECK(o.integer("tp", 1, 64) == 2);
  CHECK(o.choice("schedule", {"1f1b", "dualpipe"}) == "dualpipe");
  auto n = o.object("nested");
  CHECK(n.number("a", 0, 2) == doctest::Approx(1.5));
  n.finish();
  try {
    o.finish();
    FAIL("expected an error");
  } catch (const InputError& e) {
    CHECK(e.file() == "s.json");
    CHECK(e.json_path() == "/parallelism/shedule");
    CHECK(std::string(e.what()).find("did you mean 'schedule'") != std::string::npos);
  }
}

TEST_CASE("JsonObject range and type errors name path, value and expectation") {
  Json j = parse_json_text(R"({"tp": 0, "pp": "four", "mb": 1.5})", "x.json");
  JsonObject o(j, "x.json", "");
  CHECK_THROWS_WITH_AS(o.integer("tp", 1, 8), "x.json: at /tp: got 0 (number); expected an integer in [1, 8]",
                       InputError);
  CHECK_THROWS_AS(o.integer("pp", 1, 8), InputError);
  CHECK_THROWS_AS(o.integer("mb", 1, 8), InputError);
  CHECK_THROWS_AS(o.integer("missing", 1, 8), InputError);
}

TEST_CASE("malformed JSON reports the origin and position") {
  try {
    parse_json_text("{\"a\": }", "bad.json");
    FAIL("expected an error");
  } catch (const InputError& e) {
    CHECK(e.file() == "bad.json");
    CHECK(std::string(e.what()).find("line 1") != std::string::npos);
  }
}

TEST_CASE("Time is exact integer picoseconds") {
  CHECK(Time::us(1.5).count_ps() == 1'500'000);
  CHECK(Time::seconds(2.0).to_seconds() == doctest::Approx(2.0));
  CHECK((Time::ms(1) + Time::us(1)).count_ps() == 1'001'000'000);
  CHECK(tera_flops(2.0) / tflops_per_s(1.0) == Time::seconds(2.0));
}
}
