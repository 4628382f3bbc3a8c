#pragma once
// Counter-based random draws: the value for (seed, counter) is a pure
// function of the two, so any caller gets the same draw in any order and on
// any platform (no std:: distribution, whose algorithms differ between
// standard libraries). SplitMix64 finaliser (Steele, Lea and Flood, "Fast
// splittable pseudorandom number generators", OOPSLA 2014).
#include <cmath>
#include <cstdint>

namespace trainsim {

// Uniform in (0, 1), never 0 or 1.
inline double counter_uniform(std::uint64_t seed, std::uint64_t counter) {
  std::uint64_t z = seed + 0x9e3779b97f4a7c15ull * (counter + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return (static_cast<double>(z >> 11) + 0.5) / 9007199254740992.0;
}

// |z| for a standard normal z (Box-Muller from draws 2i and 2i+1).
inline double counter_half_normal(std::uint64_t seed, std::uint64_t index) {
  const double u1 = counter_uniform(seed, 2 * index), u2 = counter_uniform(seed, 2 * index + 1);
  return std::abs(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

}  // namespace trainsim
