#include <doctest/doctest.h>

#include "../support/test_support.hpp"

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "trainsim/sim/collectives.hpp"
#include "trainsim/sim/engine.hpp"
#include "trainsim/sim/flow_network.hpp"

// Print Time values in failure messages (identical in every sim test file).

using namespace trainsim;
using namespace trainsim::sim;

namespace {

// Runs `s` on an otherwise idle network built from `links`; returns the time
// it took (and the engine fingerprint through `fp` when given).
Time run_on_idle(const std::vector<Link>& links, const CollectiveSchedule& s, const RouteFn& routes,
                 std::uint64_t* fp = nullptr) {
  Engine e;
  FlowNetwork net(e);
  for (const Link& l : links) net.add_link(l);
  Time done = Time::max();
  run_collective(net, s, routes, [&] { done = e.now(); });
  e.run();
  if (fp) *fp = e.fingerprint();
  return done;
}

// n ranks on a unidirectional ring: link i goes from rank i to rank i+1.
std::vector<Link> ring_links(int n, double GBps_base, double GBps_step, Time latency) {
  std::vector<Link> links;
  for (int i = 0; i < n; ++i)
    links.push_back(Link{"ring" + std::to_string(i), gbytes_per_s(GBps_base + GBps_step * i), latency});
  return links;
}

RouteFn ring_routes(int n) {
  return [n](int src, int dst) {
    Route r;
    for (int i = src; i != dst; i = (i + 1) % n) r.push_back(i);
    return r;
  };
}

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("ring reduce-scatter and all-gather: n-1 steps of total/n to the right neighbour") {
  for (auto make : {&ring_reduce_scatter, &ring_all_gather}) {
    const CollectiveSchedule s = make(4, bytes(400));
    REQUIRE(s.size() == 3);
    for (const Step& step : s) {
      REQUIRE(step.transfers.size() == 4);
      for (int i = 0; i < 4; ++i) {
        CHECK(step.transfers[i].src == i);
        CHECK(step.transfers[i].dst == (i + 1) % 4);
        CHECK(step.transfers[i].bytes.value() == 100.0);
      }
    }
    CHECK(schedule_bytes(s).value() == 1200.0);  // (n-1) * n * total/n
  }
}

TEST_CASE("ring all-reduce is reduce-scatter followed by all-gather") {
  const CollectiveSchedule s = ring_all_reduce(8, bytes(800));
  CHECK(s.size() == 14);  // 2 (n-1)
  for (const Step& step : s) {
    CHECK(step.transfers.size() == 8);
    for (const Transfer& t : step.transfers) CHECK(t.bytes.value() == 100.0);
  }
  // Each rank sends 2 (n-1)/n of the buffer: 8 ranks x 2 x 7/8 x 800 bytes.
  CHECK(schedule_bytes(s).value() == doctest::Approx(8 * 2.0 * 7.0 / 8.0 * 800.0));
}

TEST_CASE("pairwise all-to-all: step s sends i -> (i+s) % n, every pair exactly once") {
  const int n = 5;
  const CollectiveSchedule s = all_to_all_pairwise(n, bytes(64));
  REQUIRE(s.size() == static_cast<std::size_t>(n - 1));
  std::set<std::pair<int, int>> pairs;
  for (std::size_t k = 0; k < s.size(); ++k) {
    const int step = static_cast<int>(k) + 1;
    REQUIRE(s[k].transfers.size() == static_cast<std::size_t>(n));
    std::set<int> receivers;
    for (int i = 0; i < n; ++i) {
      const Transfer& t = s[k].transfers[i];
      CHECK(t.src == i);
      CHECK(t.dst == (i + step) % n);
      CHECK(t.bytes.value() == 64.0);
      receivers.insert(t.dst);
      pairs.insert({t.src, t.dst});
    }
    CHECK(receivers.size() == static_cast<std::size_t>(n));  // a permutation: no incast
  }
  CHECK(pairs.size() == static_cast<std::size_t>(n * (n - 1)));
}

TEST_CASE("point-to-point, single-rank groups and invalid arguments") {
  const CollectiveSchedule p = point_to_point(bytes(42));
  REQUIRE(p.size() == 1);
  REQUIRE(p[0].transfers.size() == 1);
  CHECK(p[0].transfers[0].src == 0);
  CHECK(p[0].transfers[0].dst == 1);
  CHECK(p[0].transfers[0].bytes.value() == 42.0);

  CHECK(ring_reduce_scatter(1, bytes(10)).empty());
  CHECK(ring_all_gather(1, bytes(10)).empty());
  CHECK(ring_all_reduce(1, bytes(10)).empty());
  CHECK(all_to_all_pairwise(1, bytes(10)).empty());

  CHECK_THROWS_AS(ring_reduce_scatter(0, bytes(10)), std::invalid_argument);
  CHECK_THROWS_AS(ring_all_gather(-2, bytes(10)), std::invalid_argument);
  CHECK_THROWS_AS(ring_all_reduce(0, bytes(10)), std::invalid_argument);
  CHECK_THROWS_AS(all_to_all_pairwise(0, bytes(10)), std::invalid_argument);
  CHECK_THROWS_AS(ring_all_reduce(4, bytes(-1)), std::invalid_argument);
  CHECK_THROWS_AS(all_to_all_pairwise(4, bytes(-1)), std::invalid_argument);
  CHECK_THROWS_AS(point_to_point(bytes(-1)), std::invalid_argument);
  CHECK_THROWS_AS(point_to_point(bytes(std::numeric_limits<double>::quiet_NaN())), std::invalid_argument);
}

TEST_CASE("executor == closed form: ring all-reduce on 8 ranks over a ring of links") {
  const int n = 8;
  const auto links = ring_links(n, 50.0, 0.0, Time::us(2));  // 50 GB/s, 2 us
  const auto routes = ring_routes(n);
  const auto s = ring_all_reduce(n, bytes(8e8));
  // Each step: every rank sends 1e8 bytes over its own ring link (no sharing):
  // 2 us + 1e8 / 5e10 s = 2 us + 2 ms. 14 steps: 14 x 2002 us = 28.028 ms.
  const Time closed = collective_time_idle(links, s, routes);
  CHECK(closed == Time::us(28028));
  std::uint64_t fp1 = 0, fp2 = 0;
  CHECK(run_on_idle(links, s, routes, &fp1) == closed);
  run_on_idle(links, s, routes, &fp2);
  CHECK(fp1 == fp2);  // deterministic
}

TEST_CASE("executor == closed form: all-to-all on 4 ranks through one shared switch link") {
  // Links 0..3: rank uplinks; 4: the switch link every flow crosses; 5..8:
  // rank downlinks. Route src -> dst = {up[src], switch, down[dst]}.
  std::vector<Link> links;
  for (int i = 0; i < 4; ++i) links.push_back(Link{"up", gbytes_per_s(100), Time::us(1)});
  links.push_back(Link{"switch", gbytes_per_s(50), Time::ns(500)});
  for (int i = 0; i < 4; ++i) links.push_back(Link{"down", gbytes_per_s(100), Time::us(1)});
  const RouteFn routes = [](int src, int dst) { return Route{src, 4, 5 + dst}; };
  const auto s = all_to_all_pairwise(4, bytes(1e8));
  // Each step: 4 flows share the 50 GB/s switch link: 12.5 GB/s each (up and
  // down links carry one flow each). Per step: 2.5 us + 1e8 / 1.25e10 s =
  // 2.5 us + 8 ms. Three steps: 24.0075 ms.
  const Time closed = collective_time_idle(links, s, routes);
  CHECK(closed == Time::ns(24007500));
  CHECK(run_on_idle(links, s, routes) == closed);
}

TEST_CASE("executor and closed form agree within rounding when flows of a step finish apart") {
  // Unequal ring links (10, 11, ..., 15 GB/s): in each step the flows finish at
  // different times, but on disjoint links, so no flow speeds up another. The
  // executor re-solves after each finish and rounds again: a few ps at most.
  const int n = 6;
  const auto links = ring_links(n, 10.0, 1.0, Time::ns(1500));
  const auto s = ring_all_reduce(n, bytes(1e7 + 7));
  const Time closed = collective_time_idle(links, s, ring_routes(n));
  const Time run = run_on_idle(links, s, ring_routes(n));
  // Slowest link per step: 10 GB/s; (1e7 + 7) / 6 bytes / 1e10 B/s.
  CHECK(closed.count_ps() ==
        static_cast<std::int64_t>(s.size()) * (1500000 + 166666784));  // ceil(166666783.33) ps + latency
  CHECK(std::llabs(run.count_ps() - closed.count_ps()) <= static_cast<std::int64_t>(s.size()));
}

TEST_CASE("contention: a competing flow slows the collective beyond the idle estimate") {
  const int n = 4;
  const auto links = ring_links(n, 10.0, 0.0, Time::us(1));
  const auto s = ring_all_reduce(n, bytes(4e7));
  const Time idle = collective_time_idle(links, s, ring_routes(n));
  Engine e;
  FlowNetwork net(e);
  for (const Link& l : links) net.add_link(l);
  Time done = Time::max();
  // A long background flow on link 0 halves rank 0's bandwidth in every step.
  net.start_flow({0}, bytes(1e12), nullptr);
  run_collective(net, s, ring_routes(n), [&] { done = e.now(); });
  e.run_until(Time::seconds(1));
  REQUIRE(done != Time::max());
  // Each of the 6 steps: 1 us + 1e7 / 5e9 s = 2 ms instead of 1 ms.
  CHECK(idle == Time::us(6 * 1001));
  CHECK(done == Time::us(6 * 2001));
}

TEST_CASE("empty schedules finish at now from an event; bad routes throw at submission") {
  Engine e;
  FlowNetwork net(e);
  net.add_link(Link{"l", gbytes_per_s(1), Time::us(1)});
  e.run_until(Time::us(3));
  Time done = Time::max();
  run_collective(net, ring_all_reduce(1, bytes(100)), ring_routes(1), [&] { done = e.now(); });
  CHECK(done == Time::max());  // not called synchronously
  e.run();
  CHECK(done == Time::us(3));
  CHECK(collective_time_idle(net.links(), CollectiveSchedule{}, ring_routes(1)) == Time::zero());

  const RouteFn bad = [](int, int) { return Route{7}; };
  CHECK_THROWS_AS(run_collective(net, point_to_point(bytes(1)), bad, nullptr), std::invalid_argument);
  CHECK_THROWS_AS(collective_time_idle(net.links(), point_to_point(bytes(1)), bad), std::invalid_argument);
  CHECK_THROWS_AS(collective_time_idle(net.links(), point_to_point(bytes(1)), bad, "nope"),
                  std::invalid_argument);
  CHECK(net.active_flows() == 0);

  // A point-to-point over one link: 1 us + 1e3 / 1e9 s = 2 us, both ways.
  const RouteFn one = [](int, int) { return Route{0}; };
  CHECK(collective_time_idle(net.links(), point_to_point(bytes(1000)), one) == Time::us(2));
  CHECK(run_on_idle(net.links(), point_to_point(bytes(1000)), one) == Time::us(2));
}
}
