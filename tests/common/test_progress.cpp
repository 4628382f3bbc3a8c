#include <doctest/doctest.h>

#include "trainsim/common/progress.hpp"

TEST_SUITE("unit") {
  TEST_CASE("progress line: bar, percentage, count and time left") {
    // 25 of 100 after 10 s: a quarter of a 20-wide bar (5 '#'), 25%, and
    // 10 s x 75/25 = 30 s left.
    CHECK(trainsim::Progress::format_line("plan", 25, 100, 10.0, 20) ==
          "plan  [#####...............]  25%  25/100  10.0 s, about 30 s left");
    // Unknown total: a count only.
    CHECK(trainsim::Progress::format_line("events", 7, 0, 1.5) == "events  7  1.5 s");
  }
  TEST_CASE("progress is quiet when not asked for or not on a terminal") {
    trainsim::Progress off("x", 10, false, true);
    CHECK_FALSE(off.active());
    off.advance(3);
    CHECK(off.done() == 3);
    // Under CTest stderr is a pipe or file, never a terminal.
    trainsim::Progress piped("x", 10, true, false);
    CHECK_FALSE(piped.active());
  }
}
