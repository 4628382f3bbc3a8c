#include "trainsim/common/progress.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace trainsim {

Progress::Progress(std::string label, std::uint64_t total, bool enabled, bool force)
    : label_(std::move(label)), total_(total), start_(std::chrono::steady_clock::now()), last_draw_(start_) {
  active_ = enabled && (force || ::isatty(STDERR_FILENO) == 1);
}

Progress::~Progress() { finish(); }

std::uint64_t Progress::done() const {
  std::lock_guard<std::mutex> lock(mu_);
  return done_;
}

void Progress::set_total(std::uint64_t total) {
  std::lock_guard<std::mutex> lock(mu_);
  total_ = total;
}

void Progress::advance(std::uint64_t units) {
  std::lock_guard<std::mutex> lock(mu_);
  done_ += units;
  redraw_locked();
}

void Progress::update(std::uint64_t done) {
  std::lock_guard<std::mutex> lock(mu_);
  done_ = std::max(done_, done);
  redraw_locked();
}

void Progress::redraw_locked() {
  if (!active_ || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(100) && done_ != total_) return;
  last_draw_ = now;
  draw_locked(false);
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!active_ || finished_) return;
  finished_ = true;
  // Clear the line: the caller's own output follows.
  std::fputs("\r\033[2K", stderr);
  std::fflush(stderr);
}

void Progress::draw_locked(bool /*final_draw*/) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const std::string line = format_line(label_, done_, total_, elapsed);
  std::fputs(("\r\033[2K" + line).c_str(), stderr);
  std::fflush(stderr);
}

std::string Progress::format_line(const std::string& label, std::uint64_t done, std::uint64_t total,
                                  double elapsed_s, int width) {
  if (total == 0) return fmt::format("{}  {}  {:.1f} s", label, done, elapsed_s);
  const double frac = std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
  const int filled = static_cast<int>(frac * width);
  std::string bar(static_cast<std::size_t>(filled), '#');
  bar.append(static_cast<std::size_t>(width - filled), '.');
  std::string eta;
  if (done > 0 && done < total) {
    const double left = elapsed_s * static_cast<double>(total - done) / static_cast<double>(done);
    eta = fmt::format(", about {:.0f} s left", left);
  }
  return fmt::format("{}  [{}] {:3.0f}%  {}/{}  {:.1f} s{}", label, bar, 100 * frac, done, total, elapsed_s, eta);
}

}  // namespace trainsim
