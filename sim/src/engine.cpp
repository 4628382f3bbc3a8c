#include "trainsim/sim/engine.hpp"

#include <algorithm>
#include <stdexcept>

namespace trainsim::sim {

void EventHandle::cancel() {
  if (alive_) *alive_ = false;
}

bool EventHandle::pending() const { return alive_ && *alive_; }

bool Engine::Later::operator()(const Event& a, const Event& b) const {
  if (a.when != b.when) return a.when > b.when;
  if (a.priority != b.priority) return a.priority > b.priority;
  return a.seq > b.seq;
}

EventHandle Engine::schedule(Time delay, Action fn, int priority) {
  if (delay < Time::zero()) throw std::logic_error("Engine::schedule: negative delay");
  return schedule_at(now_ + delay, std::move(fn), priority);
}

EventHandle Engine::schedule_at(Time when, Action fn, int priority) {
  if (when < now_) throw std::logic_error("Engine::schedule_at: time in the past");
  auto alive = std::make_shared<bool>(true);
  heap_.push_back(Event{when, priority, next_seq_++, std::move(fn), alive});
  std::push_heap(heap_.begin(), heap_.end(), Later{});
  return EventHandle(std::move(alive));
}

bool Engine::empty() const {
  return std::none_of(heap_.begin(), heap_.end(), [](const Event& e) { return *e.alive; });
}

bool Engine::pop_and_run() {
  std::pop_heap(heap_.begin(), heap_.end(), Later{});
  Event ev = std::move(heap_.back());
  heap_.pop_back();
  if (!*ev.alive) return false;
  *ev.alive = false;
  now_ = ev.when;
  // FNV-1a style mixing of the event key.
  auto mix = [this](std::uint64_t v) {
    fingerprint_ ^= v;
    fingerprint_ *= 1099511628211ull;
  };
  mix(static_cast<std::uint64_t>(ev.when.count_ps()));
  mix(static_cast<std::uint64_t>(ev.priority));
  mix(ev.seq);
  ++executed_;
  ev.fn();
  return true;
}

std::uint64_t Engine::run() {
  std::uint64_t n = 0;
  while (!heap_.empty()) n += pop_and_run() ? 1 : 0;
  return n;
}

std::uint64_t Engine::run_until(Time t) {
  std::uint64_t n = 0;
  while (!heap_.empty() && heap_.front().when <= t) n += pop_and_run() ? 1 : 0;
  if (now_ < t) now_ = t;
  return n;
}

}  // namespace trainsim::sim
