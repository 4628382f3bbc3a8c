#include <doctest/doctest.h>

#include "../support/test_support.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "trainsim/sim/engine.hpp"
#include "trainsim/sim/flow_network.hpp"

// Print Time values in failure messages (identical in every sim test file).

using namespace trainsim;
using namespace trainsim::sim;

namespace {

Link make_link(double GBps, Time latency, std::string name = "l") {
  return Link{std::move(name), gbytes_per_s(GBps), latency};
}

}  // namespace

TEST_SUITE("unit") {
TEST_CASE("maxmin: textbook case with two bottlenecks") {
  // Links: L0 capacity 10, L1 capacity 6.
  // Flows: f0 crosses L0 and L1, f1 crosses L0, f2 crosses L1.
  // Progressive filling: fair shares are L0: 10/2 = 5, L1: 6/2 = 3, so L1 is
  // the bottleneck; f0 = f2 = 3 and L1 is full. L0 has 10 - 3 = 7 left for
  // f1 alone: f1 = 7. Every link is saturated: 3 + 7 = 10, 3 + 3 = 6.
  const auto r = maxmin_rates({10.0, 6.0}, {{0, 1}, {0}, {1}});
  REQUIRE(r.size() == 3);
  CHECK(r[0] == doctest::Approx(3.0));
  CHECK(r[1] == doctest::Approx(7.0));
  CHECK(r[2] == doctest::Approx(3.0));
}

TEST_CASE("maxmin: equal sharing, parking lot, and a flow that is not on the tightest link") {
  // One link of 9 shared by three flows: 9 / 3 = 3 each.
  CHECK(maxmin_rates({9.0}, {{0}, {0}, {0}}) == std::vector<double>{3.0, 3.0, 3.0});

  // Parking lot: three links of capacity 1 in a line; a long flow crosses
  // all three and one short flow crosses each link. Each link has 2 flows:
  // share 1/2 everywhere, all links saturate together: everyone gets 0.5.
  const auto pl = maxmin_rates({1.0, 1.0, 1.0}, {{0, 1, 2}, {0}, {1}, {2}});
  for (double x : pl) CHECK(x == doctest::Approx(0.5));

  // A (cap 1) carries f0, f1; B (cap 2) carries f1, f2. Shares: A 1/2,
  // B 2/2 = 1, so A saturates first: f0 = f1 = 0.5. B then has 2 - 0.5 =
  // 1.5 left for f2 alone: f2 = 1.5.
  const auto r = maxmin_rates({1.0, 2.0}, {{0}, {0, 1}, {1}});
  CHECK(r[0] == doctest::Approx(0.5));
  CHECK(r[1] == doctest::Approx(0.5));
  CHECK(r[2] == doctest::Approx(1.5));
}

TEST_CASE("maxmin: local copies, double crossings, unused links and bad input") {
  // An empty route is a local copy: infinite rate; it takes nothing away.
  const auto r = maxmin_rates({4.0}, {{}, {0}});
  CHECK(std::isinf(r[0]));
  CHECK(r[1] == doctest::Approx(4.0));
  // A flow crossing link 0 twice is charged twice: with f1 crossing once, the
  // link sees 3 crossings of the common rate x: 3x = 6, x = 2 for both flows.
  const auto d = maxmin_rates({6.0, 100.0}, {{0, 1, 0}, {0}});
  CHECK(d[0] == doctest::Approx(2.0));
  CHECK(d[1] == doctest::Approx(2.0));
  CHECK(maxmin_rates({1.0}, {}).empty());

  CHECK_THROWS_AS(maxmin_rates({1.0}, {{1}}), std::invalid_argument);
  CHECK_THROWS_AS(maxmin_rates({1.0}, {{-1}}), std::invalid_argument);
  CHECK_THROWS_AS(maxmin_rates({-1.0}, {{0}}), std::invalid_argument);
  CHECK_THROWS_AS(maxmin_rates({std::numeric_limits<double>::infinity()}, {{0}}), std::invalid_argument);
}

TEST_CASE("maxmin: random instances satisfy the bottleneck characterisation") {
  // A feasible allocation is max-min fair iff every flow has a bottleneck
  // link: one that is saturated and on which no flow gets more than it
  // (Bertsekas & Gallager, Data Networks, 6.5.2). Checked on seeded random
  // instances (std::mt19937 is specified bit for bit by the standard).
  std::mt19937 rng(12345);
  for (int trial = 0; trial < 50; ++trial) {
    const int n_links = 1 + static_cast<int>(rng() % 12);
    const int n_flows = 1 + static_cast<int>(rng() % 40);
    std::vector<double> caps;
    for (int l = 0; l < n_links; ++l) caps.push_back(1.0 + static_cast<double>(rng() % 1000));
    std::vector<Route> routes(n_flows);
    for (auto& r : routes) {
      const int len = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < len; ++k) r.push_back(static_cast<LinkIndex>(rng() % n_links));
    }
    const auto rates = maxmin_rates(caps, routes);
    std::vector<double> load(n_links, 0.0), top(n_links, 0.0);
    for (int f = 0; f < n_flows; ++f)
      for (LinkIndex l : routes[f]) {
        load[l] += rates[f];
        top[l] = std::max(top[l], rates[f]);
      }
    for (int l = 0; l < n_links; ++l) CHECK(load[l] <= caps[l] * (1 + 1e-9));  // feasible
    for (int f = 0; f < n_flows; ++f) {
      CHECK(rates[f] > 0.0);
      bool has_bottleneck = false;
      for (LinkIndex l : routes[f])
        has_bottleneck |= load[l] >= caps[l] * (1 - 1e-9) && rates[f] >= top[l] * (1 - 1e-9);
      CHECK(has_bottleneck);
    }
  }
}

TEST_CASE("solvers are chosen by name; unknown names list the known ones") {
  // maxmin_rates is overloaded (plain and weighted): name the solver one.
  const bool same = find_solver("maxmin") == static_cast<SharingSolver>(&maxmin_rates);
  CHECK(same);
  CHECK(solver_names() == std::vector<std::string>{"maxmin"});
  Engine e;
  CHECK_THROWS_WITH_AS(FlowNetwork(e, "proportional"),
                       "unknown bandwidth-sharing solver 'proportional'; known solvers: 'maxmin'",
                       std::invalid_argument);
  FlowNetwork net(e);
  CHECK(net.solver_name() == "maxmin");
}

TEST_CASE("transfer_duration rounds up to the next picosecond") {
  CHECK(transfer_duration(1e6, 1e9) == Time::ms(1));       // exact: 1e-3 s
  CHECK(transfer_duration(1.0, 3.0) == Time::ps(333333333334));  // 1/3 s = 333333333333.3 ps
  CHECK(transfer_duration(1e-7, 1.0) == Time::zero());     // below kDoneBytes: done
  CHECK(transfer_duration(5.0, std::numeric_limits<double>::infinity()) == Time::zero());
  CHECK_THROWS_AS(transfer_duration(1.0, 0.0), std::overflow_error);
}

TEST_CASE("one flow takes route latency + bytes / capacity") {
  Engine e;
  FlowNetwork net(e);
  // Two links in series: latency 2 us + 3 us; the slower one (1 GB/s) limits.
  const LinkIndex a = net.add_link(make_link(4.0, Time::us(2), "a"));
  const LinkIndex b = net.add_link(make_link(1.0, Time::us(3), "b"));
  CHECK(net.link_count() == 2);
  CHECK(net.link(b).name == "b");
  Time done = Time::max();
  // 1e6 bytes at 1e9 B/s = 1 ms; plus 5 us of latency.
  const auto id = net.start_flow({a, b}, bytes(1e6), [&] { done = e.now(); });
  CHECK(id == 0);
  CHECK(net.active_flows() == 1);
  e.run_until(Time::us(4));
  CHECK(net.active_flows() == 1);
  CHECK(net.transferring_flows() == 0);  // still in its latency phase
  CHECK(net.bytes_carried(a).value() == 0.0);
  e.run();
  CHECK(done == Time::us(1005));
  CHECK(net.active_flows() == 0);
  CHECK(net.bytes_carried(a).value() == doctest::Approx(1e6));
  CHECK(net.bytes_carried(b).value() == doctest::Approx(1e6));
}

TEST_CASE("two flows share a link; when the shorter one finishes the other speeds up") {
  Engine e;
  FlowNetwork net(e);
  const LinkIndex l = net.add_link(make_link(1.0, Time::us(1)));  // 1e9 B/s
  Time done_a = Time::max(), done_b = Time::max();
  net.start_flow({l}, bytes(1e6), [&] { done_a = e.now(); });
  net.start_flow({l}, bytes(3e6), [&] { done_b = e.now(); });
  // Both transfer from t = 1 us at 0.5e9 B/s each.
  // A: 1e6 / 0.5e9 = 2 ms -> done at 2 ms + 1 us. B has then moved 1e6 and
  // has 2e6 left, now alone at 1e9 B/s: 2 ms more -> done at 4 ms + 1 us.
  // (Work conservation: 4e6 bytes through a 1e9 B/s link take 4 ms.)
  e.run_until(Time::ms(1) + Time::us(1));
  CHECK(net.transferring_flows() == 2);
  CHECK(net.bytes_carried(l).value() == doctest::Approx(1e6));  // 2 x 0.5e9 x 1 ms
  e.run();
  CHECK(done_a == Time::ms(2) + Time::us(1));
  CHECK(done_b == Time::ms(4) + Time::us(1));
  CHECK(net.bytes_carried(l).value() == doctest::Approx(4e6));
}

TEST_CASE("a flow in its latency phase uses no bandwidth; arrivals re-solve rates") {
  Engine e;
  FlowNetwork net(e);
  const LinkIndex shared = net.add_link(make_link(1.0, Time::zero(), "shared"));    // 1e9 B/s
  const LinkIndex slow = net.add_link(make_link(1000.0, Time::ms(1), "far"));       // not a bottleneck
  Time done_a = Time::max(), done_b = Time::max();
  // A (2e6 bytes) starts at once and is alone for 1 ms: moves 1e6.
  // B (1e6 bytes) waits 1 ms of latency, then shares: 0.5e9 B/s each.
  // A's 1e6 left and B's 1e6 both take 2 ms: both finish at 3 ms.
  net.start_flow({shared}, bytes(2e6), [&] { done_a = e.now(); });
  net.start_flow({slow, shared}, bytes(1e6), [&] { done_b = e.now(); });
  e.run_until(Time::ms(1) - Time::ps(1));
  CHECK(net.transferring_flows() == 1);
  e.run();
  CHECK(done_a == Time::ms(3));
  CHECK(done_b == Time::ms(3));
  CHECK(net.bytes_carried(shared).value() == doctest::Approx(3e6));
  CHECK(net.bytes_carried(slow).value() == doctest::Approx(1e6));
}

TEST_CASE("bytes_carried sums every flow crossing a link") {
  Engine e;
  FlowNetwork net(e);
  const LinkIndex up = net.add_link(make_link(10.0, Time::us(1), "up"));
  const LinkIndex core = net.add_link(make_link(10.0, Time::us(1), "core"));
  const LinkIndex down = net.add_link(make_link(10.0, Time::us(1), "down"));
  int finished = 0;
  net.start_flow({up, core}, bytes(5e5), [&] { ++finished; });
  net.start_flow({core, down}, bytes(2e5), [&] { ++finished; });
  net.start_flow({core}, bytes(1e5), [&] { ++finished; });
  e.run();
  CHECK(finished == 3);
  CHECK(net.bytes_carried(up).value() == doctest::Approx(5e5));
  CHECK(net.bytes_carried(core).value() == doctest::Approx(8e5));
  CHECK(net.bytes_carried(down).value() == doctest::Approx(2e5));
  CHECK_THROWS_AS(net.bytes_carried(3), std::invalid_argument);
}

TEST_CASE("local copies and empty flows finish from an event, after 0 transfer time") {
  Engine e;
  FlowNetwork net(e);
  const LinkIndex l = net.add_link(make_link(1.0, Time::us(7)));
  e.run_until(Time::us(1));
  Time local = Time::max(), empty = Time::max();
  net.start_flow({}, bytes(1e9), [&] { local = e.now(); });
  net.start_flow({l}, bytes(0), [&] { empty = e.now(); });
  CHECK(local == Time::max());  // not called from inside start_flow
  CHECK(net.active_flows() == 2);
  e.run();
  CHECK(local == Time::us(1));  // no link: no latency, infinite rate
  CHECK(empty == Time::us(8));  // latency only
  CHECK(net.bytes_carried(l).value() == 0.0);
  CHECK(net.active_flows() == 0);
  // A flow without a callback is fine.
  net.start_flow({l}, bytes(10), nullptr);
  e.run();
  CHECK(net.active_flows() == 0);
}

TEST_CASE("callbacks may start new flows; many flows finishing together") {
  Engine e;
  FlowNetwork net(e);
  const LinkIndex l = net.add_link(make_link(8.0, Time::zero()));  // 8e9 B/s
  // 8 flows of 1e6 bytes at 1e9 B/s each: all finish at 1 ms; the last
  // callback starts a follow-up of 8e6 bytes alone: 1 ms more.
  int done = 0;
  Time follow_up = Time::max();
  for (int i = 0; i < 8; ++i)
    net.start_flow({l}, bytes(1e6), [&] {
      if (++done == 8) net.start_flow({l}, bytes(8e6), [&] { follow_up = e.now(); });
    });
  e.run();
  CHECK(done == 8);
  CHECK(follow_up == Time::ms(2));
  CHECK(net.bytes_carried(l).value() == doctest::Approx(16e6));
}

TEST_CASE("flow network rejects bad links, routes and sizes") {
  Engine e;
  FlowNetwork net(e);
  CHECK_THROWS_AS(net.add_link(make_link(0.0, Time::zero())), std::invalid_argument);
  CHECK_THROWS_AS(net.add_link(make_link(-1.0, Time::zero())), std::invalid_argument);
  CHECK_THROWS_AS(net.add_link(make_link(1.0, Time::ps(-1))), std::invalid_argument);
  const LinkIndex l = net.add_link(make_link(1.0, Time::zero()));
  CHECK_THROWS_AS(net.start_flow({l, 1}, bytes(1), nullptr), std::invalid_argument);
  CHECK_THROWS_AS(net.start_flow({l}, bytes(-1), nullptr), std::invalid_argument);
  CHECK_THROWS_AS(net.start_flow({l}, bytes(std::nan("")), nullptr), std::invalid_argument);
  CHECK_THROWS_AS(net.link(5), std::invalid_argument);
  CHECK(net.active_flows() == 0);
}

TEST_CASE("a destroyed network leaves no live events behind") {
  Engine e;
  {
    FlowNetwork net(e);
    const LinkIndex l = net.add_link(make_link(1.0, Time::us(1)));
    net.start_flow({l}, bytes(1e6), [] { FAIL("must not run"); });
    net.start_flow({l}, bytes(1e6), [] { FAIL("must not run"); });
    e.run_until(Time::us(2));  // both transferring, a completion is pending
  }
  CHECK(e.empty());
  e.run();
}

TEST_CASE("flow network runs are deterministic") {
  auto run_once = [](double second_size) {
    Engine e;
    FlowNetwork net(e);
    const LinkIndex a = net.add_link(make_link(3.0, Time::ns(300)));
    const LinkIndex b = net.add_link(make_link(7.0, Time::ns(700)));
    for (int i = 0; i < 10; ++i) net.start_flow({a, b}, bytes(1e5 * (i + 1)), nullptr);
    net.start_flow({b}, bytes(second_size), nullptr);
    e.run();
    return e.fingerprint();
  };
  CHECK(run_once(1e6) == run_once(1e6));
  CHECK(run_once(1e6) != run_once(2e6));
}

TEST_CASE("weighted maxmin: shares and weights, hand-solved") {
  // One link of 100 B/s; a plain flow (weight 1, share 1) and a bundle
  // (weight 1, share 3). The link consumes (1 x 1 + 1 x 3) per unit of level:
  // 4 level = 100, level = 25; plain = 1 x 25 = 25, bundle = 3 x 25 = 75.
  const auto a = maxmin_rates({100.0}, std::vector<WeightedRoute>{{{0, 1.0}}, {{0, 1.0}}}, {1.0, 3.0});
  CHECK(a.rates[0] == doctest::Approx(25.0));
  CHECK(a.rates[1] == doctest::Approx(75.0));
  CHECK(a.bottlenecks == std::vector<LinkIndex>{0, 0});

  // A bundle alone with weight 0.5 on links of 10 and 100 B/s: link 0 allows
  // level 10 / 0.5 = 20, link 1 allows 100 / 0.5 = 200: rate 20, bounded by
  // link 0.
  const auto b = maxmin_rates({10.0, 100.0}, std::vector<WeightedRoute>{{{0, 0.5}, {1, 0.5}}}, {1.0});
  CHECK(b.rates[0] == doctest::Approx(20.0));
  CHECK(b.bottlenecks[0] == 0);

  // Links A = 10, B = 6. Bundle f0 (share 2) puts weight 1 on A and 0.5 on
  // B; plain f1 on A, plain f2 on B. Loads per unit of level: A 1x2 + 1 = 3
  // (A allows 10/3 = 3.33), B 0.5x2 + 1 = 2 (B allows 6/2 = 3). B saturates
  // at level 3: f0 = 2 x 3 = 6, f2 = 3. A has 10 - 3 x 3 = 1 left for f1
  // alone: level 4, f1 = 4. Check: A carries 6 + 4 = 10, B 0.5 x 6 + 3 = 6.
  const auto c = maxmin_rates({10.0, 6.0}, std::vector<WeightedRoute>{{{0, 1.0}, {1, 0.5}}, {{0, 1.0}}, {{1, 1.0}}},
                              {2.0, 1.0, 1.0});
  CHECK(c.rates[0] == doctest::Approx(6.0));
  CHECK(c.rates[1] == doctest::Approx(4.0));
  CHECK(c.rates[2] == doctest::Approx(3.0));
  CHECK(c.bottlenecks == std::vector<LinkIndex>{1, 0, 1});

  // A plain route is weight 1 per hop and share 1: the same rates as before.
  const auto plain = maxmin_rates({10.0, 6.0}, {{0, 1}, {0}, {1}});
  const auto w = maxmin_rates({10.0, 6.0}, std::vector<WeightedRoute>{{{0, 1.0}, {1, 1.0}}, {{0, 1.0}}, {{1, 1.0}}},
                              {1.0, 1.0, 1.0});
  CHECK(plain == w.rates);

  CHECK_THROWS_AS(maxmin_rates({1.0}, std::vector<WeightedRoute>{{{0, 0.0}}}, {1.0}), std::invalid_argument);
  CHECK_THROWS_AS(maxmin_rates({1.0}, std::vector<WeightedRoute>{{{0, 1.0}}}, {0.5}), std::invalid_argument);
  CHECK_THROWS_AS(maxmin_rates({1.0}, std::vector<WeightedRoute>{{{0, 1.0}}}, {}), std::invalid_argument);
}

TEST_CASE("a bundled flow moves weight x bytes over each link, with the given latency") {
  Engine e;
  FlowNetwork net(e);
  const LinkIndex a = net.add_link(make_link(10.0, Time::us(1), "a"));
  const LinkIndex b = net.add_link(make_link(100.0, Time::us(2), "b"));
  // Alone, weights 0.5/0.5: rate 10e9 / 0.5 = 20e9 B/s (link a full), so
  // 2e6 bytes take 100 us, after the caller's 3 us of latency.
  FlowRecord rec;
  e.run_until(Time::us(1));
  net.start_flow(WeightedRoute{{a, 0.5}, {b, 0.5}}, bytes(2e6), 1.0, [&](const FlowRecord& r) { rec = r; },
                 Time::us(3));
  e.run_until(Time::us(5));
  CHECK(net.flow_rate(0) == doctest::Approx(20e9));
  e.run();
  CHECK(rec.id == 0);
  CHECK(rec.start == Time::us(1));
  CHECK(rec.end == Time::us(104));
  CHECK(rec.bytes.value() == 2e6);
  CHECK(rec.bottleneck == a);
  CHECK(net.bytes_carried(a).value() == doctest::Approx(1e6));  // 0.5 x 2e6
  CHECK(net.bytes_carried(b).value() == doctest::Approx(1e6));

  // Default latency: each distinct link once (a listed twice merges to
  // weight 1 and still costs 1 us): 1 + 2 = 3 us. Rate: a allows 10e9 / 1,
  // b 100e9 / 0.5: 10e9 B/s, 1e6 bytes in 100 us.
  Time done = Time::max();
  const Time t0 = e.now();
  net.start_flow(WeightedRoute{{a, 0.5}, {b, 0.5}, {a, 0.5}}, bytes(1e6), 1.0, [&] { done = e.now(); });
  e.run();
  CHECK(done - t0 == Time::us(103));

  CHECK_THROWS_AS(net.start_flow(WeightedRoute{{a, 0.0}}, bytes(1), 1.0, nullptr), std::invalid_argument);
  CHECK_THROWS_AS(net.start_flow(WeightedRoute{{a, 1.0}}, bytes(1), 0.5, nullptr), std::invalid_argument);
  CHECK_THROWS_AS(net.start_flow(WeightedRoute{{7, 1.0}}, bytes(1), 1.0, nullptr), std::invalid_argument);
  CHECK_THROWS_AS(net.start_flow(WeightedRoute{{a, 1.0}}, bytes(1), 1.0, nullptr, Time::ps(-1)),
                  std::invalid_argument);
}

TEST_CASE("a bundle with share 3 gets three times a plain flow's rate on a shared link") {
  Engine e;
  FlowNetwork net(e);
  const LinkIndex l = net.add_link(make_link(1.0, Time::zero()));  // 1e9 B/s
  // Rates 0.25e9 (plain) and 0.75e9 (bundle); both carry 1.5e6 bytes. The
  // bundle finishes at 1.5e6 / 0.75e9 = 2 ms, having given the plain flow
  // 0.5e6; the plain flow's last 1e6 then run alone at 1e9: 1 ms more.
  Time plain = Time::max(), bundle = Time::max();
  net.start_flow({l}, bytes(1.5e6), [&] { plain = e.now(); });
  net.start_flow(WeightedRoute{{l, 1.0}}, bytes(1.5e6), 3.0, [&] { bundle = e.now(); });
  e.run();
  CHECK(bundle == Time::ms(2));
  CHECK(plain == Time::ms(3));
}

TEST_CASE("re-solving one component leaves another's rates and finish times untouched") {
  Engine e;
  FlowNetwork net(e);
  const LinkIndex a = net.add_link(make_link(1.0, Time::zero(), "a"));
  const LinkIndex b = net.add_link(make_link(1.0, Time::zero(), "b"));
  // Components {a} and {b}. y on b alone: 4e6 bytes at 1e9 B/s: 4 ms.
  net.start_flow({a}, bytes(1e6), nullptr);  // x: 1 ms alone
  net.start_flow({b}, bytes(4e6), nullptr);  // y
  e.run_until(Time::us(500));
  const Time y_finish = net.flow_finish(1);
  CHECK(y_finish == Time::ms(4));
  const auto before = net.stats();
  CHECK(before.components_solved == 2);
  // z joins x on a: only component {a} is re-solved. x had 0.5e6 left, now
  // at 0.5e9 B/s: 1 ms more, done at 1.5 ms.
  net.start_flow({a}, bytes(3e6), nullptr);
  e.run_until(Time::us(501));
  CHECK(net.stats().components_solved == before.components_solved + 1);
  CHECK(net.flow_finish(0) == Time::us(1500));
  CHECK(net.flow_finish(1) == y_finish);
  CHECK(net.flow_rate(1) == 1e9);
  e.run();
  CHECK(net.bytes_carried(a).value() == doctest::Approx(4e6));
}

TEST_CASE("component-wise rates equal the global max-min solve") {
  // Seeded random flows on 30 links in small clusters; after the batched
  // solve, every flow's rate equals the rate of one global solve over all
  // flows (to rounding: the two add levels in different orders).
  std::mt19937 rng(777);
  for (int trial = 0; trial < 20; ++trial) {
    Engine e;
    FlowNetwork net(e);
    std::vector<double> caps;
    for (int l = 0; l < 30; ++l) {
      caps.push_back(1e9 * (1 + static_cast<double>(rng() % 8)));
      net.add_link(Link{"l", BytesPerSecond(caps.back()), Time::zero()});
    }
    std::vector<Route> routes;
    for (int f = 0; f < 25; ++f) {
      const int base = static_cast<int>(rng() % 6) * 5;  // cluster of links base..base+4
      Route r;
      const int len = 1 + static_cast<int>(rng() % 3);
      for (int k = 0; k < len; ++k) r.push_back(base + static_cast<int>(rng() % 5));
      routes.push_back(r);
      net.start_flow(r, bytes(1e9), nullptr);
    }
    e.run_until(Time::ps(1));
    const auto global = maxmin_rates(caps, routes);
    for (std::size_t f = 0; f < routes.size(); ++f)
      CHECK(net.flow_rate(f) == doctest::Approx(global[f]).epsilon(1e-12));
    CHECK(net.stats().components_solved >= 1);
  }
}

TEST_CASE("a memo hit gives the same finish times as a fresh solve") {
  // The same all-to-all-like phase (12 flows over 4 links) three times; the
  // second and third start their flows in another order. Durations must be
  // identical to the picosecond, and the repeats must be answered by the
  // memo, not the solver.
  auto phase = [](FlowNetwork& net, Engine& e, bool reversed) {
    std::vector<std::pair<Route, double>> flows;
    for (int s = 0; s < 4; ++s)
      for (int d = 0; d < 4; ++d)
        if (s != d) flows.push_back({Route{s, 4 + d}, 1e6 * (1 + (s + 2 * d) % 3)});
    if (reversed) std::reverse(flows.begin(), flows.end());
    const Time t0 = e.now();
    std::vector<Time> took(16, Time::max());
    for (const auto& [r, size] : flows) {
      const int key = r[0] * 4 + (r[1] - 4);
      net.start_flow(r, bytes(size), [&took, &e, key, t0] { took[key] = e.now() - t0; });
    }
    e.run();
    return took;
  };
  Engine e;
  FlowNetwork net(e);
  for (int l = 0; l < 8; ++l) net.add_link(make_link(1.0 + l % 3, Time::ns(100)));
  const auto first = phase(net, e, false);
  const auto misses = net.stats().solver_runs;
  CHECK(net.stats().cache_hits == 0);
  const auto second = phase(net, e, true);
  const auto third = phase(net, e, false);
  CHECK(first == second);
  CHECK(first == third);
  CHECK(net.stats().solver_runs == misses);  // every repeat was a hit
  CHECK(net.stats().cache_hits == 2 * misses);
}

TEST_CASE("flow records name the link that bounded most of the transfer") {
  Engine e;
  FlowNetwork net(e);
  const LinkIndex a = net.add_link(make_link(2.0, Time::zero(), "a"));
  const LinkIndex b = net.add_link(make_link(1.5, Time::zero(), "b"));
  // f crosses a and b; g crosses a. Together: a allows 2e9 / 2 = 1e9 each,
  // b allows 1.5e9: a bounds both. g (0.5e6 bytes) ends at 0.5 ms; f has
  // moved 0.5e6 over bottleneck a. Alone, f is bounded by b at 1.5e9 B/s:
  // its last 2.5e6 bytes take 1.667 ms over b. Most bytes: b.
  FlowRecord rf, rg, rl;
  net.start_flow({a, b}, bytes(3e6), [&](const FlowRecord& r) { rf = r; });
  net.start_flow({a}, bytes(0.5e6), [&](const FlowRecord& r) { rg = r; });
  net.start_flow(Route{}, bytes(10), [&](const FlowRecord& r) { rl = r; });
  e.run();
  CHECK(rf.id == 0);
  CHECK(rf.bottleneck == b);
  CHECK(rf.start == Time::zero());
  CHECK(rf.end == Time::us(500) + transfer_duration(2.5e6, 1.5e9));
  CHECK(rg.bottleneck == a);
  CHECK(rg.end == Time::us(500));
  CHECK(rl.id == 2);
  CHECK(rl.bottleneck == -1);  // local copy
  CHECK(net.stats().flows_started == 3);
}

TEST_CASE("bundles hit the memo too; a plain route crossing a link twice is weight 2") {
  // Two identical rounds of two bundles on links of 1e9 and 2e9 B/s. Bundle
  // p: weights 1 on l0, 0.5 on l1, share 2; bundle q: weight 1 on l1.
  // Loads per unit of level: l0 2, l1 0.5 x 2 + 1 = 2; l0 allows 0.5e9, l1
  // 1e9: l0 saturates at level 0.5e9: p = 1e9, bounded by l0. l1 has
  // 2e9 - 0.5 x 1e9 = 1.5e9 left for q alone: q = 1.5e9.
  Engine e;
  FlowNetwork net(e);
  const LinkIndex l0 = net.add_link(make_link(1.0, Time::zero()));
  const LinkIndex l1 = net.add_link(make_link(2.0, Time::zero()));
  for (int round = 0; round < 2; ++round) {
    const auto p = net.start_flow(WeightedRoute{{l0, 1.0}, {l1, 0.5}}, bytes(1e6), 2.0, nullptr);
    const auto q = net.start_flow(WeightedRoute{{l1, 1.0}}, bytes(3e6), 1.0, nullptr);
    e.run_until(e.now());
    CHECK(net.flow_rate(p) == doctest::Approx(1e9));
    CHECK(net.flow_rate(q) == doctest::Approx(1.5e9));
    e.run();
  }
  CHECK(net.stats().cache_hits >= 1);

  // {l0, l0} on a 1e9 B/s link is one hop of weight 2: rate 0.5e9, so 1e6
  // bytes take 2 ms, and the link carries 2e6 bytes.
  Engine f;
  FlowNetwork twice(f);
  const LinkIndex l = twice.add_link(make_link(1.0, Time::zero()));
  Time done = Time::max();
  twice.start_flow({l, l}, bytes(1e6), [&] { done = f.now(); });
  f.run();
  CHECK(done == Time::ms(2));
  CHECK(twice.bytes_carried(l).value() == doctest::Approx(2e6));
}
TEST_CASE("a one-flow component gets exactly the solver's rate and bottleneck") {
  // Closed form for a lone flow: bit for bit maxmin_rates on the same
  // problem (rate and bottleneck), including near-ties between links.
  std::mt19937 rng(4242);
  for (int trial = 0; trial < 200; ++trial) {
    Engine e;
    FlowNetwork net(e);
    std::vector<double> caps;
    const int n_links = 1 + static_cast<int>(rng() % 12);
    for (int l = 0; l < n_links; ++l) {
      // Few distinct capacities so that ties (and near-ties) are common.
      caps.push_back(1e9 * (1 + static_cast<double>(rng() % 3)) * (1.0 + (rng() % 2) * 1e-13));
      net.add_link(Link{"l", BytesPerSecond(caps.back()), Time::zero()});
    }
    WeightedRoute route;
    for (int l = 0; l < n_links; ++l)
      if (rng() % 2) route.push_back(WeightedHop{l, 0.25 * static_cast<double>(1 + rng() % 8) / 3.0});
    if (route.empty()) route.push_back(WeightedHop{0, 1.0});
    if (trial % 3 == 0) std::reverse(route.begin(), route.end());  // unsorted input is normalised
    const double share = 1.0 + static_cast<double>(rng() % 5) / 7.0;
    WeightedRoute sorted = route;
    std::sort(sorted.begin(), sorted.end(), [](const WeightedHop& a, const WeightedHop& b) { return a.link < b.link; });
    const SharingResult want = maxmin_rates(caps, {sorted}, {share});
    FlowRecord rec;
    const auto id = net.start_flow(route, bytes(1e6), share, [&](const FlowRecord& r) { rec = r; });
    e.run_until(Time::ps(1));
    CHECK(net.flow_rate(id) == want.rates[0]);
    const auto stats = net.stats();
    CHECK(stats.single_flow == 1);
    CHECK(stats.solver_runs == 0);
    e.run();
    CHECK(rec.bottleneck == want.bottlenecks[0]);
    for (const WeightedHop& h : sorted)
      CHECK(net.bytes_carried(h.link).value() == doctest::Approx(h.weight * 1e6));
  }
}

TEST_CASE("a component that shrinks to one flow and grows again keeps the solver's rates") {
  // x alone (closed form), then y joins (solver), then x ends (y alone:
  // closed form): y's rate then equals a fresh solve of y alone.
  Engine e;
  FlowNetwork net(e);
  const LinkIndex a = net.add_link(make_link(1.0, Time::zero(), "a"));
  const LinkIndex b = net.add_link(make_link(3.0, Time::zero(), "b"));
  const auto x = net.start_flow(WeightedRoute{{a, 1.0}}, bytes(1e6), 1.0, nullptr);
  e.run_until(Time::ps(1));
  CHECK(net.flow_rate(x) == 1e9);
  const auto y = net.start_flow(WeightedRoute{{a, 0.5}, {b, 1.5}}, bytes(1e7), 1.5, nullptr);
  e.run_until(Time::ps(2));
  CHECK(net.stats().solver_runs == 1);
  e.run_until(net.flow_finish(x));
  const SharingResult alone = maxmin_rates({1e9, 3e9}, {WeightedRoute{{0, 0.5}, {1, 1.5}}}, {1.5});
  CHECK(net.flow_rate(y) == alone.rates[0]);
  CHECK(net.stats().single_flow == 2);
  e.run();
  CHECK(net.bytes_carried(b).value() == doctest::Approx(1.5e7));
  // The same (route, share) alone again: the cached closed form, same bits.
  FlowRecord rec;
  const auto z = net.start_flow(WeightedRoute{{b, 1.5}, {a, 0.5}}, bytes(1e6), 1.5,
                                [&](const FlowRecord& r) { rec = r; });
  e.run_until(e.now());
  CHECK(net.flow_rate(z) == alone.rates[0]);
  CHECK(net.stats().single_flow == 3);
  e.run();
  CHECK(rec.bottleneck == alone.bottlenecks[0]);
}
}
