#include "trainsim/sim/engine.hpp"

#include <algorithm>
#include <stdexcept>

namespace trainsim::sim {

void EventHandle::cancel() {
  if (engine_ && engine_->is_live(slot_, generation_)) engine_->release(slot_);
}

bool EventHandle::pending() const { return engine_ && engine_->is_live(slot_, generation_); }

void Engine::check_delay(Time delay) const {
  if (delay < Time::zero()) throw std::logic_error("Engine::schedule: negative delay");
}

void Engine::check_time(Time when) const {
  if (when < now_) throw std::logic_error("Engine::schedule_at: time in the past");
}

EventHandle Engine::add(Time when, InlineAction&& fn, int priority) {
  std::uint32_t slot;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    slot = static_cast<std::uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Slot& s = slots_[slot];
  s.fn = std::move(fn);
  s.live = true;
  ++live_;
  heap_.push_back(Key{when, next_seq_++, priority, slot, s.generation});
  std::push_heap(heap_.begin(), heap_.end(), Later{});
  return EventHandle(this, slot, s.generation);
}

// Frees a live slot: its handles go stale, its callable is destroyed, and the
// slot may be reused (its heap key, if any, is then skipped by generation).
void Engine::release(std::uint32_t slot) {
  Slot& s = slots_[slot];
  s.live = false;
  ++s.generation;
  s.fn.reset();
  free_.push_back(slot);
  --live_;
}

bool Engine::pop_and_run() {
  std::pop_heap(heap_.begin(), heap_.end(), Later{});
  const Key key = heap_.back();
  heap_.pop_back();
  if (!is_live(key.slot, key.generation)) return false;  // cancelled
  // Move the callable out before running it: it may schedule events, which
  // may grow slots_ or reuse this slot. The handle is stale from here on.
  InlineAction fn = std::move(slots_[key.slot].fn);
  release(key.slot);
  now_ = key.when;
  // FNV-1a style mixing of the event key.
  auto mix = [this](std::uint64_t v) {
    fingerprint_ ^= v;
    fingerprint_ *= 1099511628211ull;
  };
  mix(static_cast<std::uint64_t>(key.when.count_ps()));
  mix(static_cast<std::uint64_t>(key.priority));
  mix(key.seq);
  ++executed_;
  fn();
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
