// The layer-to-stage partition search (model/partition.hpp).
#include <doctest/doctest.h>

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "trainsim/model/partition.hpp"
#include "trainsim/model/schedule.hpp"

using namespace trainsim::model;

namespace {
double max_of(const std::vector<double>& v) { return *std::max_element(v.begin(), v.end()); }
}  // namespace

TEST_SUITE("unit") {
TEST_CASE("partition_layers minimises the largest stage cost") {
  // {2,2,2,2} in two stages: the only split with max 4 is [2, 2].
  CHECK(partition_layers({2, 2, 2, 2}, 2) == std::vector<int>{2, 2});
  // {1,1,1,1,4} in 2 stages: the 4 must be alone or with ones; [4, 1] gives
  // max(4, 4) = 4, any other split at least 5.
  CHECK(partition_layers({1, 1, 1, 1, 4}, 2) == std::vector<int>{4, 1});
  CHECK_THROWS_AS(partition_layers({1, 1}, 3), std::invalid_argument);
}

TEST_CASE("device loads add the stages a device holds (DualPipe: r and pp-1-r)") {
  const Schedule s = make_schedule(ScheduleKind::DualPipe, 4, 16, 1);
  REQUIRE(s.stages == 4);
  const std::vector<double> cost(10, 1.0);
  // counts [3, 3, 3, 1]: rank 0 holds stages 0 and 3 (3 + 1 = 4 layers),
  // rank 1 stages 1 and 2 (6), rank 2 the same as rank 1, rank 3 as rank 0.
  CHECK(device_loads(cost, {3, 3, 3, 1}, s) == std::vector<double>{4, 6, 6, 4});
}

TEST_CASE("balance_devices evens out DualPipe's device pairs") {
  // Ten equal layers over 4 stages: balancing stages alone allows [3,3,3,1]
  // (largest stage 3) whose devices carry 4 and 6 layers. Each device holds
  // two stages and every layer sits on two devices, so 2 x 10 / 4 = 5 is the
  // lower bound on the largest device load; the search must reach it.
  const Schedule s = make_schedule(ScheduleKind::DualPipe, 4, 16, 1);
  const std::vector<double> cost(10, 1.0);
  const std::vector<int> out = balance_devices(cost, {3, 3, 3, 1}, s);
  CHECK(std::accumulate(out.begin(), out.end(), 0) == 10);
  CHECK(*std::min_element(out.begin(), out.end()) >= 1);
  CHECK(max_of(device_loads(cost, out, s)) == 5.0);
}

TEST_CASE("balance_devices keeps a balanced one-stage-per-device partition") {
  // 1F1B: one stage per rank; [2,2,2] of equal layers is already optimal.
  const Schedule s = make_schedule(ScheduleKind::OneFOneB, 3, 6, 1);
  CHECK(balance_devices(std::vector<double>(6, 1.0), {2, 2, 2}, s) == std::vector<int>{2, 2, 2});
}
}
