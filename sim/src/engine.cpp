#include "trainsim/sim/engine.hpp"

#include <algorithm>
#include <stdexcept>

namespace trainsim::sim {

namespace {

// An index from the free list, or a new element at the end of `storage`.
template <class T>
std::uint32_t take_index(std::vector<std::uint32_t>& free_list, std::vector<T>& storage) {
  if (!free_list.empty()) {
    const std::uint32_t i = free_list.back();
    free_list.pop_back();
    return i;
  }
  storage.emplace_back();
  return static_cast<std::uint32_t>(storage.size() - 1);
}

}  // namespace

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

std::size_t Engine::hash(std::int64_t when, int priority) {
  std::uint64_t h = static_cast<std::uint64_t>(when) * 0x9E3779B97F4A7C15ull;
  h ^= static_cast<std::uint64_t>(static_cast<std::uint32_t>(priority)) * 0xC2B2AE3D27D4EB4Full;
  h ^= h >> 31;
  h *= 0xBF58476D1CE4E5B9ull;
  h ^= h >> 29;
  return static_cast<std::size_t>(h);
}

std::size_t Engine::find_cell(std::int64_t when, int priority) const {
  if (table_.empty()) return static_cast<std::size_t>(-1);
  const std::size_t mask = table_.size() - 1;
  for (std::size_t i = hash(when, priority) & mask;; i = (i + 1) & mask) {
    const Cell& c = table_[i];
    if (c.bucket == kNone) return static_cast<std::size_t>(-1);
    if (c.when == when && c.priority == priority) return i;
  }
}

void Engine::table_grow() {
  std::vector<Cell> old = std::move(table_);
  table_.assign(old.empty() ? 64 : old.size() * 2, Cell{0, 0, kNone});
  const std::size_t mask = table_.size() - 1;
  for (const Cell& c : old) {
    if (c.bucket == kNone) continue;
    std::size_t i = hash(c.when, c.priority) & mask;
    while (table_[i].bucket != kNone) i = (i + 1) & mask;
    table_[i] = c;
  }
}

void Engine::table_insert(std::int64_t when, int priority, std::uint32_t bucket) {
  if ((table_used_ + 1) * 2 > table_.size()) table_grow();
  const std::size_t mask = table_.size() - 1;
  std::size_t i = hash(when, priority) & mask;
  while (table_[i].bucket != kNone) i = (i + 1) & mask;
  table_[i] = Cell{when, priority, bucket};
  ++table_used_;
}

// Linear probing with backward-shift deletion (no tombstones).
void Engine::table_erase(std::int64_t when, int priority) {
  std::size_t i = find_cell(when, priority);
  if (i == static_cast<std::size_t>(-1)) return;
  const std::size_t mask = table_.size() - 1;
  for (std::size_t j = (i + 1) & mask; table_[j].bucket != kNone; j = (j + 1) & mask) {
    const std::size_t home = hash(table_[j].when, table_[j].priority) & mask;
    // Move the cell at j into the hole at i if i lies on its probe path
    // (cyclically in [home, j]).
    if (((j - home) & mask) >= ((j - i) & mask)) {
      table_[i] = table_[j];
      i = j;
    }
  }
  table_[i].bucket = kNone;
  --table_used_;
}

// The bucket of (when, priority), created (and pushed on the heap) if none is
// queued.
std::uint32_t Engine::bucket_for(Time when, int priority) {
  if (last_bucket_ != kNone) {
    const Bucket& b = buckets_[last_bucket_];
    if (b.when == when && b.priority == priority) return last_bucket_;
  }
  const std::int64_t w = when.count_ps();
  const std::size_t cell = find_cell(w, priority);
  if (cell != static_cast<std::size_t>(-1)) {
    last_bucket_ = table_[cell].bucket;
    return last_bucket_;
  }
  const std::uint32_t idx = take_index(free_buckets_, buckets_);
  Bucket& b = buckets_[idx];
  b.when = when;
  b.priority = priority;
  b.head = 0;  // items is empty: cleared when the bucket was retired
  table_insert(w, priority, idx);
  heap_.push_back(BucketKey{when, priority, idx});
  std::push_heap(heap_.begin(), heap_.end(), Later{});
  last_bucket_ = idx;
  return idx;
}

// Removes the (empty) bucket at the top of the heap and recycles it.
void Engine::retire_top() {
  const std::uint32_t idx = heap_.front().bucket;
  std::pop_heap(heap_.begin(), heap_.end(), Later{});
  heap_.pop_back();
  Bucket& b = buckets_[idx];
  table_erase(b.when.count_ps(), b.priority);
  b.items.clear();
  b.head = 0;
  free_buckets_.push_back(idx);
  if (last_bucket_ == idx) last_bucket_ = kNone;
}

EventHandle Engine::add(Time when, InlineAction&& fn, int priority) {
  const std::uint32_t slot = take_index(free_, slots_);
  Slot& s = slots_[slot];
  s.fn = std::move(fn);
  s.live = true;
  ++live_;
  const std::uint32_t bucket = bucket_for(when, priority);
  buckets_[bucket].items.push_back(Entry{next_seq_++, slot, s.generation});
  return EventHandle(this, slot, s.generation);
}

// Frees a live slot: its handles go stale, its callable is destroyed, and the
// slot may be reused (its bucket entry, if any, is then skipped by generation).
void Engine::release(std::uint32_t slot) {
  Slot& s = slots_[slot];
  s.live = false;
  ++s.generation;
  s.fn.reset();
  free_.push_back(slot);
  --live_;
}

// Retires drained buckets at the top of the heap; true if an event (live or
// cancelled) is left, the top bucket then holding the next one in (time,
// priority, sequence) order.
bool Engine::settle() {
  while (!heap_.empty()) {
    const Bucket& top = buckets_[heap_.front().bucket];
    if (top.head < top.items.size()) return true;
    retire_top();
  }
  return false;
}

// Pops the next entry (settle() must have returned true) and runs it unless
// it was cancelled.
bool Engine::pop_and_run() {
  Bucket& b = buckets_[heap_.front().bucket];
  const Entry entry = b.items[b.head++];
  const Time when = b.when;
  const int priority = b.priority;
  // Drained: empty it now (keeping its capacity), retire it at the next pop
  // unless more events arrive at its (time, priority) first.
  if (b.head == b.items.size()) {
    b.items.clear();
    b.head = 0;
  }
  if (!is_live(entry.slot, entry.generation)) return false;  // cancelled
  // Move the callable out before running it: it may schedule events, which
  // may grow slots_ or buckets_, or reuse this slot. The handle is stale from
  // here on.
  InlineAction fn = std::move(slots_[entry.slot].fn);
  release(entry.slot);
  now_ = when;
  // FNV-1a style mixing of the event key.
  auto mix = [this](std::uint64_t v) {
    fingerprint_ ^= v;
    fingerprint_ *= 1099511628211ull;
  };
  mix(static_cast<std::uint64_t>(when.count_ps()));
  mix(static_cast<std::uint64_t>(priority));
  mix(entry.seq);
  ++executed_;
  fn();
  return true;
}

std::uint64_t Engine::run() {
  std::uint64_t n = 0;
  while (settle()) n += pop_and_run() ? 1 : 0;
  return n;
}

std::uint64_t Engine::run_until(Time t) {
  std::uint64_t n = 0;
  while (settle() && heap_.front().when <= t) n += pop_and_run() ? 1 : 0;
  if (now_ < t) now_ = t;
  return n;
}

}  // namespace trainsim::sim
