#include <doctest/doctest.h>

#include "../support/test_support.hpp"

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
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

TEST_CASE("empty() counts live events only; cancelled and executed ones do not") {
  Engine e;
  CHECK(e.empty());
  EventHandle a = e.schedule(Time::ns(1), [] {});
  EventHandle b = e.schedule(Time::ns(2), [] {});
  CHECK(e.pending_events() == 2);
  a.cancel();
  a.cancel();  // a second cancel is a no-op
  CHECK(e.pending_events() == 1);
  CHECK_FALSE(e.empty());
  b.cancel();
  CHECK(e.empty());  // two keys still in the queue, none live
  CHECK(e.run() == 0);
  EventHandle c = e.schedule(Time::ns(1), [] {});
  CHECK(e.run() == 1);
  CHECK(e.empty());
  CHECK_FALSE(c.pending());
  c.cancel();  // cancelling an executed event changes nothing
  CHECK(e.empty());
}

TEST_CASE("a stale handle to a recycled slot neither cancels nor sees the new event") {
  Engine e;
  int ran = 0;
  EventHandle old_handle = e.schedule(Time::ns(5), [&] { ran += 100; });
  old_handle.cancel();
  // The freed slot is reused by the next event (free list), with a new
  // generation: the old handle must not reach it.
  EventHandle fresh = e.schedule(Time::ns(5), [&] { ran += 1; });
  CHECK_FALSE(old_handle.pending());
  CHECK(fresh.pending());
  old_handle.cancel();
  CHECK(fresh.pending());
  CHECK(e.run() == 1);
  CHECK(ran == 1);

  // The same after the first event ran rather than being cancelled.
  EventHandle done = e.schedule(Time::ns(1), [&] { ran += 10; });
  e.run();
  EventHandle next = e.schedule(Time::ns(1), [&] { ran += 1000; });
  done.cancel();
  CHECK(next.pending());
  e.run();
  CHECK(ran == 1011);
}

TEST_CASE("large captures, move-only captures and std::function all run") {
  Engine e;
  std::vector<int> seen;
  // 80 bytes of capture: over the inline buffer, stored on the heap.
  std::array<std::int64_t, 10> big{};
  big[9] = 7;
  e.schedule(Time::ns(1), [&seen, big] { seen.push_back(static_cast<int>(big[9])); });
  auto owned = std::make_unique<int>(8);
  e.schedule(Time::ns(2), [&seen, p = std::move(owned)] { seen.push_back(*p); });
  std::function<void()> f = [&seen] { seen.push_back(9); };
  e.schedule(Time::ns(3), f);
  EventHandle h = e.schedule(Time::ns(4), [&seen, big] { seen.push_back(-1); });
  h.cancel();  // destroys the heap-stored callable at once
  e.run();
  CHECK(seen == std::vector<int>{7, 8, 9});
}
}
