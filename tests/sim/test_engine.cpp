#include <doctest/doctest.h>

#include "../support/test_support.hpp"

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <tuple>
#include <utility>
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


// A reference event queue for the differential test: a plain list of pending
// events, the next one found by a linear scan for the least (time, priority,
// sequence). Same interface as Engine for what the workload uses.
class RefEngine {
 public:
  struct Handle {
    RefEngine* engine = nullptr;
    std::size_t index = 0;
    void cancel() {
      if (engine && !engine->events_[index].done) {
        engine->events_[index].done = true;
        engine->events_[index].fn = nullptr;
      }
    }
    bool pending() const { return engine && !engine->events_[index].done; }
  };
  Time now() const { return now_; }
  Handle schedule(Time delay, std::function<void()> fn, int priority = 0) {
    events_.push_back(Ev{now_ + delay, priority, seq_++, std::move(fn), false});
    return Handle{this, events_.size() - 1};
  }
  std::uint64_t run_until(Time t) {
    std::uint64_t n = 0;
    for (;;) {
      std::size_t best = events_.size();
      for (std::size_t i = first_; i < events_.size(); ++i) {
        const Ev& e = events_[i];
        if (e.done) continue;
        if (best == events_.size() || std::tie(e.when, e.priority, e.seq) <
                                          std::tie(events_[best].when, events_[best].priority,
                                                   events_[best].seq))
          best = i;
      }
      if (best == events_.size() || events_[best].when > t) break;
      Ev& e = events_[best];
      e.done = true;
      now_ = e.when;
      for (std::uint64_t v : {static_cast<std::uint64_t>(e.when.count_ps()),
                              static_cast<std::uint64_t>(e.priority), e.seq}) {
        fingerprint_ ^= v;
        fingerprint_ *= 1099511628211ull;
      }
      std::function<void()> fn = std::move(e.fn);
      ++n;
      fn();
      while (first_ < events_.size() && events_[first_].done) ++first_;
    }
    if (now_ < t) now_ = t;
    return n;
  }
  std::uint64_t run() { return run_until(Time::max()); }
  std::size_t pending_events() const {
    std::size_t n = 0;
    for (std::size_t i = first_; i < events_.size(); ++i) n += events_[i].done ? 0 : 1;
    return n;
  }
  bool empty() const { return pending_events() == 0; }
  std::uint64_t fingerprint() const { return fingerprint_; }

 private:
  struct Ev {
    Time when;
    int priority;
    std::uint64_t seq;
    std::function<void()> fn;
    bool done;
  };
  std::vector<Ev> events_;
  std::size_t first_ = 0;
  Time now_ = Time::zero();
  std::uint64_t seq_ = 0;
  std::uint64_t fingerprint_ = 1469598103934665603ull;
};

// A random workload: events schedule more events (many at the current instant
// and at a few shared future times, with mixed priorities, some with a lower
// priority value than the running one), cancel random pending events, and
// the driver alternates run_until steps with a final run(). Returns a log of
// (time, priority, id) of executed events and of the driver's observations.
template <class E>
std::vector<std::tuple<std::int64_t, int, std::uint64_t>> random_workload(std::uint64_t seed,
                                                                          int max_events) {
  using Handle = decltype(std::declval<E&>().schedule(Time::zero(), [] {}, 0));
  E e;
  std::mt19937_64 rng(seed);
  std::vector<std::tuple<std::int64_t, int, std::uint64_t>> log;
  std::vector<Handle> handles;
  std::uint64_t next_id = 0;
  auto pick = [&rng](int n) { return static_cast<int>(rng() % static_cast<std::uint64_t>(n)); };
  auto cancel_one = [&] {
    if (handles.empty()) return;
    handles[static_cast<std::size_t>(pick(static_cast<int>(handles.size())))].cancel();
  };
  std::function<void(int)> spawn = [&](int depth) {
    if (static_cast<int>(next_id) >= max_events) return;
    static constexpr std::int64_t kDelays[] = {0, 0, 0, 1000, 1000, 2000, 5000, 7};
    const Time delay = Time::ps(kDelays[pick(8)]);
    const int priority = pick(4) - 1;
    const std::uint64_t id = next_id++;
    handles.push_back(e.schedule(
        delay,
        [&, id, priority] {
          log.emplace_back(e.now().count_ps(), priority, id);
          const int children = pick(4);
          for (int c = 0; c < children; ++c) spawn(depth + 1);
          if (pick(5) == 0) cancel_one();
        },
        priority));
  };
  for (int i = 0; i < 40; ++i) spawn(0);
  for (int i = 0; i < 10; ++i) cancel_one();
  for (int step = 0; step < 30 && !e.empty(); ++step) {
    const std::uint64_t n = e.run_until(e.now() + Time::ps(pick(3) * 1000));
    log.emplace_back(-1, static_cast<int>(e.pending_events()), n);
    log.emplace_back(-2, e.empty() ? 1 : 0, static_cast<std::uint64_t>(e.now().count_ps()));
    if (pick(3) == 0) spawn(0);
  }
  const std::uint64_t n = e.run();
  log.emplace_back(-3, static_cast<int>(e.pending_events()), n);
  log.emplace_back(-4, 0, e.fingerprint());
  return log;
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
  EventHandle h = e.schedule(Time::ns(4), [&seen, big] { seen.push_back(-1 - static_cast<int>(big[0])); });
  h.cancel();  // destroys the heap-stored callable at once
  e.run();
  CHECK(seen == std::vector<int>{7, 8, 9});
}
TEST_CASE("differential: random schedules run in the reference (time, priority, seq) order") {
  for (std::uint64_t seed = 1; seed <= 200; ++seed) {
    CAPTURE(seed);
    const auto got = random_workload<Engine>(seed, 3000);
    const auto want = random_workload<RefEngine>(seed, 3000);
    REQUIRE(got.size() == want.size());
    CHECK(got == want);
  }
}

TEST_CASE("a lower priority value scheduled for the current instant runs before pending ones") {
  Engine e;
  std::string order;
  e.schedule(Time::ns(1), [&] {
    order += 'a';
    e.schedule(Time::zero(), [&] { order += 'e'; }, 1);   // after the pending 'c', 'd'
    e.schedule(Time::zero(), [&] { order += 'b'; }, -1);  // before them
    e.schedule(Time::zero(), [&] { order += 'B'; }, 0);   // after the pending 'x'
  }, 0);
  e.schedule(Time::ns(1), [&] { order += 'c'; }, 1);
  e.schedule(Time::ns(1), [&] { order += 'd'; }, 1);
  e.schedule(Time::ns(1), [&] { order += 'x'; }, 0);
  e.run();
  // Priority 0 at 1 ns: a, x (queued first), then B; priority -1 'b' runs as
  // soon as it is scheduled (before x); priority 1: c, d, then e.
  CHECK(order == "abxBcde");
}

TEST_CASE("a long chain at one instant and many distinct times keep the order") {
  Engine e;
  std::vector<int> seen;
  int left = 10000;
  std::function<void()> chain = [&] {
    seen.push_back(0);
    if (--left > 0) e.schedule(Time::zero(), chain, 2);
  };
  e.schedule(Time::ns(1), chain, 2);
  for (int i = 0; i < 1000; ++i)
    e.schedule(Time::ps(1000 + (i % 7)), [&seen, i] { seen.push_back(i + 1); }, i % 3);
  e.run();
  REQUIRE(seen.size() == 11000u);
  // At 1000 ps: priorities 0 and 1, then priority 2: the chain's first event
  // (scheduled first), the other priority-2 events, then the rest of the
  // chain (each link scheduled later); then 1001..1006 ps.
  std::vector<int> want;
  auto add_events = [&want](int t, int p) {
    for (int i = 0; i < 1000; ++i)
      if (i % 7 == t && i % 3 == p) want.push_back(i + 1);
  };
  add_events(0, 0);
  add_events(0, 1);
  want.push_back(0);
  add_events(0, 2);
  want.resize(want.size() + 9999, 0);
  for (int t = 1; t < 7; ++t)
    for (int p = 0; p < 3; ++p) add_events(t, p);
  CHECK(seen == want);
  CHECK(e.empty());
}
}
