#pragma once
// Strong unit types used everywhere inside trainsim.
//
// JSON files carry units in their key names (`hbm_TBps`, `latency_us`,
// `peak_fp8_TFLOPS`); loaders convert once into these types, and nothing
// downstream ever sees a bare "seconds or microseconds?" double.
//
// * Time is an integer count of picoseconds (as in ns-3 and OMNeT++), so event
//   ordering is exact and a run never drifts with floating-point summation.
//   int64 picoseconds cover +-106 days, far more than one simulated step.
//   Whole-run figures (GPU-hours of a 2-month run) are computed in double
//   seconds from step times, never accumulated as Time. Arithmetic is
//   checked: a result outside that range (a step of a huge model at a huge
//   sequence length) throws TimeOverflow instead of wrapping around, and the
//   application turns it into an input error naming the scenario.
// * Bytes is an integer byte count.
// * Flops, BytesPerSecond and FlopsPerSecond are doubles with a tag; they only
//   combine in physically meaningful ways (Flops / FlopsPerSecond -> Time).
#include <cmath>
#include <compare>
#include <cstdint>
#include <limits>
#include <stdexcept>

namespace trainsim {

// Simulated time left the +-106-day range of int64 picoseconds.
class TimeOverflow : public std::overflow_error {
 public:
  TimeOverflow() : std::overflow_error("simulated time beyond the +-106 days that int64 picoseconds hold") {}
};

class Time {
 public:
  constexpr Time() = default;
  static constexpr Time ps(std::int64_t v) { return Time(v); }
  static constexpr Time ns(double v) { return from_double(v * 1e3); }
  static constexpr Time us(double v) { return from_double(v * 1e6); }
  static constexpr Time ms(double v) { return from_double(v * 1e9); }
  static constexpr Time seconds(double v) { return from_double(v * 1e12); }
  static constexpr Time zero() { return Time(0); }
  static constexpr Time max() { return Time(std::numeric_limits<std::int64_t>::max()); }

  constexpr std::int64_t count_ps() const { return ps_; }
  constexpr double to_seconds() const { return static_cast<double>(ps_) * 1e-12; }
  constexpr double to_ms() const { return static_cast<double>(ps_) * 1e-9; }
  constexpr double to_us() const { return static_cast<double>(ps_) * 1e-6; }

  constexpr Time operator+(Time o) const {
    std::int64_t r = 0;
    if (__builtin_add_overflow(ps_, o.ps_, &r)) throw TimeOverflow();
    return Time(r);
  }
  constexpr Time operator-(Time o) const {
    std::int64_t r = 0;
    if (__builtin_sub_overflow(ps_, o.ps_, &r)) throw TimeOverflow();
    return Time(r);
  }
  constexpr Time& operator+=(Time o) { return *this = *this + o; }
  constexpr Time& operator-=(Time o) { return *this = *this - o; }
  constexpr Time operator*(std::int64_t k) const {
    std::int64_t r = 0;
    if (__builtin_mul_overflow(ps_, k, &r)) throw TimeOverflow();
    return Time(r);
  }
  constexpr double operator/(Time o) const {
    return static_cast<double>(ps_) / static_cast<double>(o.ps_);
  }
  constexpr auto operator<=>(const Time&) const = default;

 private:
  constexpr explicit Time(std::int64_t v) : ps_(v) {}
  static constexpr Time from_double(double v) {
    // 9.2e18 ps is int64's limit; beyond it (or NaN) the cast is undefined.
    if (!(v > -9.2e18 && v < 9.2e18)) throw TimeOverflow();
    return Time(static_cast<std::int64_t>(v < 0 ? v - 0.5 : v + 0.5));
  }
  std::int64_t ps_ = 0;
};

inline constexpr Time max(Time a, Time b) { return a < b ? b : a; }
inline constexpr Time min(Time a, Time b) { return a < b ? a : b; }

// A double quantity with a unit tag. Only the operations that keep the unit
// meaningful are provided.
template <class Tag>
class Quantity {
 public:
  constexpr Quantity() = default;
  constexpr explicit Quantity(double v) : v_(v) {}
  constexpr double value() const { return v_; }
  constexpr Quantity operator+(Quantity o) const { return Quantity(v_ + o.v_); }
  constexpr Quantity operator-(Quantity o) const { return Quantity(v_ - o.v_); }
  constexpr Quantity& operator+=(Quantity o) { v_ += o.v_; return *this; }
  constexpr Quantity operator*(double k) const { return Quantity(v_ * k); }
  constexpr Quantity operator/(double k) const { return Quantity(v_ / k); }
  constexpr double operator/(Quantity o) const { return v_ / o.v_; }
  constexpr auto operator<=>(const Quantity&) const = default;

 private:
  double v_ = 0.0;
};

struct FlopsTag {};
struct FlopsPerSecondTag {};
struct BytesPerSecondTag {};
struct ByteCountTag {};

using Flops = Quantity<FlopsTag>;                  // floating-point operations
using FlopsPerSecond = Quantity<FlopsPerSecondTag>;
using BytesPerSecond = Quantity<BytesPerSecondTag>;
// Byte counts as double: per-layer traffic and memory footprints are sums of
// products of large dimensions and fractional averages (e.g. 3.5 nodes per
// token); they are rounded only where an integer is physically required.
using ByteCount = Quantity<ByteCountTag>;

inline constexpr Flops tera_flops(double v) { return Flops(v * 1e12); }
inline constexpr FlopsPerSecond tflops_per_s(double v) { return FlopsPerSecond(v * 1e12); }
inline constexpr BytesPerSecond gbytes_per_s(double v) { return BytesPerSecond(v * 1e9); }
inline constexpr BytesPerSecond gbits_per_s(double v) { return BytesPerSecond(v * 1e9 / 8.0); }
inline constexpr ByteCount bytes(double v) { return ByteCount(v); }
inline constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

inline constexpr Time operator/(Flops f, FlopsPerSecond r) { return Time::seconds(f.value() / r.value()); }
inline constexpr Time operator/(ByteCount b, BytesPerSecond r) { return Time::seconds(b.value() / r.value()); }

}  // namespace trainsim
