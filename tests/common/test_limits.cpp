// Input limits of the common layer (issue 10): bounded JSON nesting, numbers
// in double range, printable error messages, checked simulated time.
#include <doctest/doctest.h>

#include <string>

#include "trainsim/common/error.hpp"
#include "trainsim/common/json_reader.hpp"
#include "trainsim/common/units.hpp"

using namespace trainsim;

namespace {
InputError error_of(const std::string& text) {
  try {
    parse_json_text(text, "t.json");
  } catch (const InputError& e) {
    return e;
  }
  FAIL("expected an InputError");
  return InputError("", "", "", "");
}
}  // namespace

TEST_SUITE("unit") {
TEST_CASE("JSON nesting deeper than 64 levels is an input error at the path where it happens") {
  // 64 levels parse; the 65th is refused (without recursion: 1,000,000 deep).
  CHECK(parse_json_text(std::string(64, '[') + std::string(64, ']'), "t.json").is_array());
  const InputError e = error_of(R"({"a": [1, {"b": )" + std::string(1000000, '[') + "]");
  CHECK(e.file() == "t.json");
  CHECK(e.json_path().rfind("/a/1/b/0/0", 0) == 0);
  CHECK(std::string(e.what()).find("64 levels") != std::string::npos);
  // Brackets inside strings do not count.
  CHECK(parse_json_text(R"({"k": ")" + std::string(1000, '[') + R"("})", "t.json").is_object());
}

TEST_CASE("numbers outside double range are input errors naming the key") {
  CHECK(error_of(R"({"training": {"tokens": 1e400}})").json_path() == "/training/tokens");
  CHECK(error_of(R"({"a": [0, -1E+999]})").json_path() == "/a/1");
  CHECK(error_of("[" + std::string(400, '9') + "]").json_path() == "/0");
  CHECK(error_of("1e309").json_path() == "/");
  // Underflow is harmless (it reads as 0), and 1.7e308 is in range.
  CHECK(parse_json_text(R"({"x": 1e-400, "y": 1.7e308})", "t.json")["y"].get<double>() > 1e308);
}

TEST_CASE("error messages are one printable line with long parts cut") {
  CHECK(printable("a\nb\tc\x1b\x7f") == "a\\nb\\tc\\x1b\\x7f");
  CHECK(printable(std::string(300, 'x')) == std::string(200, 'x') + "...");
  // A UTF-8 character is never split: 3 characters of 2 bytes, cut at 2.
  CHECK(printable("\xc3\xa9\xc3\xa9\xc3\xa9", 2) == "\xc3\xa9\xc3\xa9...");
  const InputError e("f\nile.json", "/na\nme", std::string(100000, 'v'), "a known key");
  const std::string what = e.what();
  CHECK(what.find('\n') == std::string::npos);
  CHECK(what.size() < 500);
  CHECK(what.find("f\\nile.json: at /na\\nme: got vvv") == 0);
  // The fields keep the raw values for callers.
  CHECK(e.value().size() == 100000);
}

TEST_CASE("simulated time arithmetic throws TimeOverflow instead of wrapping") {
  const Time big = Time::ps(std::numeric_limits<std::int64_t>::max() - 1);
  CHECK_THROWS_AS(big + Time::ps(2), TimeOverflow);
  CHECK_THROWS_AS(Time::ps(std::numeric_limits<std::int64_t>::min()) - Time::ps(1), TimeOverflow);
  CHECK_THROWS_AS(Time::seconds(1e6) * 10000, TimeOverflow);  // 1e18 ps x 1e4
  CHECK_THROWS_AS(Time::seconds(1e8), TimeOverflow);  // 1e20 ps > 9.2e18
  CHECK_THROWS_AS(Time::seconds(std::nan("")), TimeOverflow);
  Time t = Time::seconds(1);
  CHECK_THROWS_AS(t += big, TimeOverflow);
  CHECK(t == Time::seconds(1));  // unchanged by the failed addition
  CHECK((Time::seconds(1) + Time::ms(500)).count_ps() == 1'500'000'000'000);
}
}
