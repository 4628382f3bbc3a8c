#pragma once
// Skipping a test case that cannot make its check on this machine (no CUDA
// device, too few devices, an architecture the kernel needs, ...).
//
// TRAINSIM_SKIP(reason << ...) prints "skipped: <reason>", records the skip and
// returns from the test case. The test executable's main (tests/doctest_main.cpp)
// then exits with kSkipReturnCode when nothing failed, and CTest (which sets
// SKIP_RETURN_CODE on every entry, tests/CMakeLists.txt) reports the entry as
// "Skipped" instead of "Passed": a green run never claims a check it did not
// make. A failure anywhere in the entry still fails it.
#include <doctest/doctest.h>

#include <sstream>
#include <string>

namespace trainsim::test {

inline constexpr int kSkipReturnCode = 77;  // the automake/CTest convention for "skipped"

// Records that the current test case skipped its check (defined in doctest_main.cpp).
void record_skip(const std::string& test_case, const std::string& reason);

}  // namespace trainsim::test

#define TRAINSIM_SKIP(reason)                                                                      \
  do {                                                                                             \
    std::ostringstream trainsim_skip_reason_;                                                      \
    trainsim_skip_reason_ << reason;                                                               \
    MESSAGE("skipped: " << trainsim_skip_reason_.str());                                           \
    ::trainsim::test::record_skip(doctest::getContextOptions()->currentTest->m_name,               \
                                  trainsim_skip_reason_.str());                                    \
    return;                                                                                        \
  } while (false)
