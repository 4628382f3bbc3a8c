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
// run on many threads at once. An engine is neither copyable nor movable:
// handles point at it.
//
// Storage. An event's callable lives in a *slot* of a slot vector; freed slots
// go to a free list and are reused. Each slot has a generation counter that
// is bumped whenever the slot is freed (event run or cancelled); an
// EventHandle is (engine, slot, generation) and is live only while the
// generation matches, so a stale handle to a recycled slot can neither
// cancel nor see the new event; the callables never move while the queue is
// reordered.
//
// Queue. Events are grouped in *buckets*, one per distinct pending
// (time, priority) key. A bucket is a FIFO of 16-byte entries (sequence,
// slot, generation); sequence numbers only grow, so appending keeps it in
// sequence order. A binary heap of 16-byte bucket keys (time, priority,
// bucket) orders the buckets; an open-addressing hash table maps a
// (time, priority) to its bucket. In a cluster run most pending events share
// a handful of instants (the replicas of a rank do the same thing at the same
// time), so the heap holds few keys and most pushes and pops are O(1) FIFO
// operations. An event scheduled for a (time, priority) whose bucket is
// being drained is appended to it and runs after the ones already queued; an
// event with a lower priority value at the current time gets its own bucket,
// which goes to the top of the heap and runs next. A bucket drained empty
// stays in the heap until a pop finds it empty at the top (so a chain
// of events at one instant reuses it), then it is retired and its storage
// (with its capacity) goes to a free list.
//
// Allocation. The callable is stored in an inline buffer of kInlineBytes
// (56) bytes: any lambda or function object up to that size (seven pointers;
// a std::function is 32) that is nothrow-movable is stored without touching
// the heap. Larger callables fall back to one heap allocation. Once the slot
// vector, the free lists, the buckets, the hash table and the heap have
// grown to their peak sizes, scheduling and running an event allocate
// nothing.
//
// Complexity: schedule O(1) into an existing bucket (one hash probe), O(log
// k) for a new (time, priority) key, k the number of distinct pending keys;
// run O(1) per event plus O(log k) per retired bucket; cancel O(1) (the slot
// is freed at once, its bucket entry is skipped when popped: lazy deletion);
// empty() O(1) (a count of live events; cancelled ones do not count).
// Memory: O(peak pending events) slots plus bucket entries, where cancelled
// entries stay in their bucket until their time comes.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <new>
#include <type_traits>
#include <utility>
#include <vector>

#include "trainsim/common/units.hpp"

namespace trainsim::sim {

class Engine;

// A handle to a scheduled event; cancel() prevents it from firing. A default
// handle is inert. A handle must not be used after its engine is destroyed.
class EventHandle {
 public:
  EventHandle() = default;
  void cancel();
  bool pending() const;

 private:
  friend class Engine;
  EventHandle(Engine* engine, std::uint32_t slot, std::uint32_t generation)
      : engine_(engine), slot_(slot), generation_(generation) {}
  Engine* engine_ = nullptr;
  std::uint32_t slot_ = 0;
  std::uint32_t generation_ = 0;
};

// A move-only `void()` callable with a small inline buffer (no allocation for
// nothrow-movable callables up to kInlineBytes).
class InlineAction {
 public:
  static constexpr std::size_t kInlineBytes = 56;

  InlineAction() = default;
  template <class F, class D = std::decay_t<F>,
            class = std::enable_if_t<!std::is_same_v<D, InlineAction> && std::is_invocable_v<D&>>>
  InlineAction(F&& f) {  // NOLINT: implicit by design, like std::function
    if constexpr (fits<D>()) {
      ::new (static_cast<void*>(buf_)) D(std::forward<F>(f));
      ops_ = &kInlineOps<D>;
    } else {
      ::new (static_cast<void*>(buf_)) D*(new D(std::forward<F>(f)));
      ops_ = &kHeapOps<D>;
    }
  }
  InlineAction(InlineAction&& o) noexcept { take(o); }
  InlineAction& operator=(InlineAction&& o) noexcept {
    if (this != &o) {
      reset();
      take(o);
    }
    return *this;
  }
  InlineAction(const InlineAction&) = delete;
  InlineAction& operator=(const InlineAction&) = delete;
  ~InlineAction() { reset(); }

  void operator()() { ops_->invoke(buf_); }
  explicit operator bool() const { return ops_ != nullptr; }
  void reset() {
    if (ops_) ops_->destroy(buf_);
    ops_ = nullptr;
  }

 private:
  struct Ops {
    void (*invoke)(void*);
    void (*move_to)(void* from, void* to);  // move-constructs at `to`, destroys `from`
    void (*destroy)(void*);
  };
  template <class D>
  static constexpr bool fits() {
    return sizeof(D) <= kInlineBytes && alignof(D) <= alignof(std::max_align_t) &&
           std::is_nothrow_move_constructible_v<D>;
  }
  template <class D>
  static constexpr Ops kInlineOps{
      [](void* p) { (*static_cast<D*>(p))(); },
      [](void* from, void* to) {
        ::new (to) D(std::move(*static_cast<D*>(from)));
        static_cast<D*>(from)->~D();
      },
      [](void* p) { static_cast<D*>(p)->~D(); }};
  template <class D>
  static constexpr Ops kHeapOps{
      [](void* p) { (**static_cast<D**>(p))(); },
      [](void* from, void* to) { ::new (to) D*(*static_cast<D**>(from)); },
      [](void* p) { delete *static_cast<D**>(p); }};

  void take(InlineAction& o) noexcept {
    ops_ = o.ops_;
    if (ops_) ops_->move_to(o.buf_, buf_);
    o.ops_ = nullptr;
  }

  alignas(std::max_align_t) unsigned char buf_[kInlineBytes];
  const Ops* ops_ = nullptr;
};

class Engine {
 public:
  // Kept for callers that name the type; schedule() takes any callable.
  using Action = std::function<void()>;

  Engine() = default;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  Time now() const { return now_; }
  // Schedules `fn` at now()+delay. delay must be >= 0.
  template <class F>
  EventHandle schedule(Time delay, F&& fn, int priority = 0) {
    check_delay(delay);
    return add(now_ + delay, InlineAction(std::forward<F>(fn)), priority);
  }
  template <class F>
  EventHandle schedule_at(Time when, F&& fn, int priority = 0) {
    check_time(when);
    return add(when, InlineAction(std::forward<F>(fn)), priority);
  }
  // Runs until no event is left. Returns the number of events executed.
  std::uint64_t run();
  // Runs events with time <= t, then sets now() to t.
  std::uint64_t run_until(Time t);
  // True when no live (scheduled, not cancelled, not yet run) event is left.
  bool empty() const { return live_ == 0; }
  // Live events.
  std::size_t pending_events() const { return live_; }
  std::uint64_t executed() const { return executed_; }
  // Order-sensitive hash of (time, priority, sequence) of every executed
  // event: two runs with the same fingerprint executed the same sequence.
  std::uint64_t fingerprint() const { return fingerprint_; }

 private:
  friend class EventHandle;
  // One queued event of a bucket.
  struct Entry {
    std::uint64_t seq;
    std::uint32_t slot;
    std::uint32_t generation;
  };
  // The events of one pending (time, priority), in sequence order; entries
  // before `head` have been popped.
  struct Bucket {
    Time when;
    int priority = 0;
    std::uint32_t head = 0;
    std::vector<Entry> items;
  };
  // A heap key: one per bucket in the heap (keys are distinct).
  struct BucketKey {
    Time when;
    int priority;
    std::uint32_t bucket;
  };
  struct Later {
    bool operator()(const BucketKey& a, const BucketKey& b) const {
      if (a.when != b.when) return a.when > b.when;
      return a.priority > b.priority;
    }
  };
  // A cell of the (time, priority) -> bucket table; bucket == kNone: empty.
  struct Cell {
    std::int64_t when;
    int priority;
    std::uint32_t bucket;
  };
  struct Slot {
    InlineAction fn;
    std::uint32_t generation = 0;
    bool live = false;
  };
  static constexpr std::uint32_t kNone = 0xffffffffu;

  void check_delay(Time delay) const;
  void check_time(Time when) const;
  EventHandle add(Time when, InlineAction&& fn, int priority);
  void release(std::uint32_t slot);
  bool is_live(std::uint32_t slot, std::uint32_t generation) const {
    return slot < slots_.size() && slots_[slot].live && slots_[slot].generation == generation;
  }
  bool settle();
  bool pop_and_run();
  std::uint32_t bucket_for(Time when, int priority);
  void retire_top();
  static std::size_t hash(std::int64_t when, int priority);
  std::size_t find_cell(std::int64_t when, int priority) const;
  void table_insert(std::int64_t when, int priority, std::uint32_t bucket);
  void table_erase(std::int64_t when, int priority);
  void table_grow();

  std::vector<BucketKey> heap_;
  std::vector<Bucket> buckets_;
  std::vector<std::uint32_t> free_buckets_;
  std::vector<Cell> table_;  // size a power of two (or 0), load <= 1/2
  std::size_t table_used_ = 0;
  std::uint32_t last_bucket_ = kNone;  // the bucket of the last add, if still queued
  std::vector<Slot> slots_;
  std::vector<std::uint32_t> free_;
  std::size_t live_ = 0;
  Time now_ = Time::zero();
  std::uint64_t next_seq_ = 0;
  std::uint64_t executed_ = 0;
  std::uint64_t fingerprint_ = 1469598103934665603ull;
};

}  // namespace trainsim::sim
