#include <doctest/doctest.h>

#include "../support/test_support.hpp"

#include <stdexcept>
#include <string>
#include <vector>

#include "trainsim/sim/engine.hpp"

// Print Time values in failure messages (identical in every sim test file).

using namespace trainsim;
using trainsim::sim::Engine;
using trainsim::sim::EventHandle;

namespace {

// A small self-scheduling workload; `variant` changes one delay.
std::uint64_t fingerprint_of(int variant) {
  Engine e;
  int count = 0;
  std::function<void()> tick = [&] {
    if (++count < 20) e.schedule(Time::ns(count % 3 == 0 ? 5 : 7 + variant), tick, count % 2);
  };
  e.schedule(Time::zero(), tick);
  e.schedule(Time::ns(30), [] {}, -1);
  e.schedule(Time::ns(30), [] {}, 1);
  e.run();
  return e.fingerprint();
}

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("engine orders events by time, then priority, then scheduling order") {
  Engine e;
  std::string order;
  e.schedule(Time::ns(2), [&] { order += 'd'; });
  e.schedule(Time::ns(1), [&] { order += 'c'; }, 5);   // same time, later priority
  e.schedule(Time::ns(1), [&] { order += 'a'; }, -1);  // same time, earliest priority
  e.schedule(Time::ns(1), [&] { order += 'b'; }, 5);   // ties 'c': after it (sequence)
  e.schedule_at(Time::ns(1), [&] { order += 'B'; }, 0);
  CHECK(e.run() == 5);
  CHECK(order == "aBcbd");
  CHECK(e.now() == Time::ns(2));
  CHECK(e.executed() == 5);
  CHECK(e.empty());
}

TEST_CASE("events scheduled from an event at the same time run after it, in order") {
  Engine e;
  std::vector<int> seen;
  e.schedule(Time::us(1), [&] {
    e.schedule(Time::zero(), [&] { seen.push_back(2); });
    e.schedule(Time::zero(), [&] { seen.push_back(3); });
    seen.push_back(1);
  });
  e.run();
  CHECK(seen == std::vector<int>{1, 2, 3});
  CHECK(e.now() == Time::us(1));
}

TEST_CASE("cancelled events do not run and do not count") {
  Engine e;
  int ran = 0;
  EventHandle h = e.schedule(Time::ns(5), [&] { ran += 10; });
  e.schedule(Time::ns(1), [&] { ran += 1; });
  CHECK(h.pending());
  h.cancel();
  CHECK_FALSE(h.pending());
  CHECK(e.run() == 1);
  CHECK(ran == 1);
  CHECK(e.now() == Time::ns(1));  // the cancelled event did not move time

  // Cancelling from inside an earlier event at the same time.
  Engine f;
  EventHandle later;
  f.schedule(Time::ns(3), [&] { later.cancel(); });
  later = f.schedule(Time::ns(3), [&] { ran = -1; });
  f.run();
  CHECK(ran == 1);
  CHECK(f.empty());
  CHECK_FALSE(EventHandle{}.pending());  // a default handle is inert
  EventHandle{}.cancel();
}

TEST_CASE("run_until runs events up to and including t and then sets now to t") {
  Engine e;
  std::vector<int> seen;
  e.schedule(Time::us(1), [&] { seen.push_back(1); });
  e.schedule(Time::us(2), [&] { seen.push_back(2); });
  e.schedule(Time::us(3), [&] { seen.push_back(3); });
  CHECK(e.run_until(Time::us(2)) == 2);
  CHECK(seen == std::vector<int>{1, 2});
  CHECK(e.now() == Time::us(2));
  CHECK(e.run_until(Time::ns(2500)) == 0);
  CHECK(e.now() == Time::ns(2500));  // advances even without events
  CHECK_FALSE(e.empty());
  CHECK(e.run_until(Time::us(10)) == 1);
  CHECK(e.now() == Time::us(10));
  CHECK(e.empty());
}

TEST_CASE("scheduling in the past is rejected") {
  Engine e;
  e.run_until(Time::us(1));
  CHECK_THROWS_AS(e.schedule(Time::ps(-1), [] {}), std::logic_error);
  CHECK_THROWS_AS(e.schedule_at(Time::ns(999), [] {}), std::logic_error);
  CHECK_NOTHROW(e.schedule_at(Time::us(1), [] {}));
}

TEST_CASE("fingerprint: same schedule twice gives the same value, a different one does not") {
  CHECK(fingerprint_of(0) == fingerprint_of(0));
  CHECK(fingerprint_of(0) != fingerprint_of(1));

  // Same times but different priorities also change the fingerprint.
  Engine a, b;
  a.schedule(Time::ns(1), [] {}, 0);
  b.schedule(Time::ns(1), [] {}, 1);
  a.run();
  b.run();
  CHECK(a.fingerprint() != b.fingerprint());
}
}
