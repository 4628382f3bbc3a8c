#pragma once
// Helpers shared by the test executables (header-only; include after doctest).
#include <doctest/doctest.h>

#include <string>
#include <utility>

#include "trainsim/common/error.hpp"
#include "trainsim/common/units.hpp"

namespace doctest {
// Prints Time values as picoseconds in failed CHECKs.
template <>
struct StringMaker<trainsim::Time> {
  static String convert(const trainsim::Time& t) { return (std::to_string(t.count_ps()) + " ps").c_str(); }
};
}  // namespace doctest

namespace trainsim::test {

// Runs `f`, which must throw an InputError, and returns it (a failed check
// and an empty error when it does not throw).
template <class F>
InputError input_error_of(F&& f) {
  try {
    std::forward<F>(f)();
  } catch (const InputError& e) {
    return e;
  }
  FAIL("expected an InputError");
  return InputError("", "", "", "");
}

}  // namespace trainsim::test
