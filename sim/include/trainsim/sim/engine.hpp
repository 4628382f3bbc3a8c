#pragma once
// The discrete-event engine.
//
// Events are ordered by (time, priority, sequence): earlier time first; at
// equal time, lower priority value first; at equal priority, the order in
// which they were scheduled (a monotonically increasing sequence number). This
// total order makes every run deterministic: the same input produces the same
// event sequence and the same bytes out. (ns-3's EventKey and OMNeT++'s
// shouldPrecede use the same key.)
//
// The caller owns the engine; there is no global simulator. Many engines may
// run on many threads at once.
//
// Complexity: schedule O(log n), cancel O(1) (lazy: the event is marked and
// skipped when popped), run O(n log n) for n events. The queue is a binary heap
// in a std::vector.
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "trainsim/common/units.hpp"

namespace trainsim::sim {

class Engine;

// A handle to a scheduled event; cancel() prevents it from firing.
class EventHandle {
 public:
  EventHandle() = default;
  void cancel();
  bool pending() const;

 private:
  friend class Engine;
  explicit EventHandle(std::shared_ptr<bool> alive) : alive_(std::move(alive)) {}
  std::shared_ptr<bool> alive_;
};

class Engine {
 public:
  using Action = std::function<void()>;

  Time now() const { return now_; }
  // Schedules `fn` at now()+delay. delay must be >= 0.
  EventHandle schedule(Time delay, Action fn, int priority = 0);
  EventHandle schedule_at(Time when, Action fn, int priority = 0);
  // Runs until no event is left. Returns the number of events executed.
  std::uint64_t run();
  // Runs events with time <= t, then sets now() to t.
  std::uint64_t run_until(Time t);
  bool empty() const;
  std::uint64_t executed() const { return executed_; }
  // Order-sensitive hash of (time, priority, sequence) of every executed
  // event: two runs with the same fingerprint executed the same sequence.
  std::uint64_t fingerprint() const { return fingerprint_; }

 private:
  struct Event {
    Time when;
    int priority;
    std::uint64_t seq;
    Action fn;
    std::shared_ptr<bool> alive;
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const;
  };
  bool pop_and_run();

  std::vector<Event> heap_;
  Time now_ = Time::zero();
  std::uint64_t next_seq_ = 0;
  std::uint64_t executed_ = 0;
  std::uint64_t fingerprint_ = 1469598103934665603ull;
};

}  // namespace trainsim::sim
