#pragma once
// Progress of long work on a terminal: one line on stderr, redrawn in place
// ("label  [#####.....]  45%  450/1000  12.3 s, about 15 s left"). Quiet when
// stderr is not a terminal (pipes, CI) or when the caller asks for quiet, so
// piped and tested output never contains it. Thread-safe: workers may call
// advance() concurrently; redraws are rate-limited to ~10 per second.
//
// The caller owns the object; nothing global. finish() (or the destructor)
// clears the line so the next output starts clean.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace trainsim {

class Progress {
 public:
  // `total` units of work (0: unknown; the line shows a count without a bar).
  // `enabled`: draw at all (callers pass !quiet); drawing also needs stderr
  // to be a terminal unless `force` is set (tests).
  Progress(std::string label, std::uint64_t total, bool enabled, bool force = false);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(std::uint64_t units = 1);
  // Sets the units done (never backwards), for work measured as a fraction.
  void update(std::uint64_t done);
  void set_total(std::uint64_t total);
  void finish();
  bool active() const { return active_; }
  std::uint64_t done() const;

  // The line as it would be drawn (no carriage return), for tests.
  static std::string format_line(const std::string& label, std::uint64_t done, std::uint64_t total,
                                 double elapsed_s, int width = 30);

 private:
  void draw_locked(bool final_draw);
  void redraw_locked();  // rate-limited draw

  std::string label_;
  std::uint64_t total_ = 0, done_ = 0;
  bool active_ = false, finished_ = false;
  mutable std::mutex mu_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace trainsim
