// The main of every test executable: doctest's, plus skip accounting
// (support/skip.hpp). When at least one test case skipped its check and
// nothing failed, the executable exits with kSkipReturnCode so that CTest
// reports the entry "Skipped"; it lists what was skipped and why.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "support/skip.hpp"

namespace {

// The skips of this process, in order. A test harness's record, written only
// by record_skip from the (single-threaded) test runner and read once by main.
std::vector<std::pair<std::string, std::string>>& skips() {
  static std::vector<std::pair<std::string, std::string>> s;
  return s;
}

}  // namespace

namespace trainsim::test {

void record_skip(const std::string& test_case, const std::string& reason) {
  skips().emplace_back(test_case, reason);
}

}  // namespace trainsim::test

int main(int argc, char** argv) {
  doctest::Context context(argc, argv);
  const int rc = context.run();
  if (context.shouldExit() || rc != 0 || skips().empty()) return rc;
  std::cout << skips().size() << " test case(s) skipped their check on this machine:\n";
  for (const auto& [name, reason] : skips()) std::cout << "  " << name << ": " << reason << "\n";
  return trainsim::test::kSkipReturnCode;
}
