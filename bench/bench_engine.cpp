// Benchmark: the event engine and the flow network alone.
//
//   build/bench_engine [REPEATS] [CASE]
//
// Prints, for each case, the median, minimum and maximum rate (items per
// second of processor time) over REPEATS runs (default 5), and the median
// wall-clock rate:
//   engine/plain      N events with a small capture (3 words), each event
//                     scheduling the next one of its chain (64 chains);
//   engine/cancel     the same, and every event also schedules a decoy that
//                     the next event cancels (half of all events cancelled);
//   flows/disjoint    many flows on disjoint links, 64 at a time;
//   flows/a2a         a 64-GPU all-to-all (64 x 63 flows, started together)
//                     on a hand-built 8-leaf, 4-spine leaf-spine, repeated;
//   flows/a2a-bundle  the same traffic as 64 bundled flows (one per source
//                     GPU, weights = share of its bytes on each link).
// Results and the commands that produce them are in docs/PERFORMANCE.md.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "trainsim/sim/engine.hpp"
#include "trainsim/sim/flow_network.hpp"

namespace {

using namespace trainsim;
using namespace trainsim::sim;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Processor time of this (single-threaded) process: robust to other jobs
// sharing the machine's cores, unlike wall time.
double cpu_seconds() { return static_cast<double>(std::clock()) / CLOCKS_PER_SEC; }

// Runs `body` (returning the number of items it processed) `repeats` times
// and prints items per second.
template <class Body>
void measure(const std::string& name, int repeats, Body body) {
  std::vector<double> rates, wall;
  std::uint64_t items = 0;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = Clock::now();
    const double c0 = cpu_seconds();
    items = body();
    rates.push_back(static_cast<double>(items) / (cpu_seconds() - c0));
    wall.push_back(static_cast<double>(items) / seconds_since(t0));
  }
  std::sort(rates.begin(), rates.end());
  std::sort(wall.begin(), wall.end());
  fmt::print("{:<18} {:>10} items   CPU-time median {:>12.0f}/s   min {:>12.0f}   max {:>12.0f}   (wall median {:.0f}/s)\n",
             name, items, rates[rates.size() / 2], rates.front(), rates.back(), wall[wall.size() / 2]);
}

// 64 chains of events; every event schedules the next of its chain until
// `total` have run. The capture is three words (engine, counter, chain id).
std::uint64_t engine_plain(std::uint64_t total) {
  Engine e;
  std::uint64_t count = 0;
  struct Chain {
    Engine* e;
    std::uint64_t* count;
    std::uint64_t total;
    std::uint64_t id;
    void operator()() const {
      if (++*count < total) e->schedule(Time::ns(1 + static_cast<std::int64_t>(id % 7)), *this);
    }
  };
  for (std::uint64_t c = 0; c < 64; ++c) e.schedule(Time::ns(1), Chain{&e, &count, total, c});
  e.run();
  return e.executed();
}

// As engine_plain, but each event also schedules a decoy event and cancels
// the decoy of the previous event of its chain: one cancellation per event.
std::uint64_t engine_cancel(std::uint64_t total) {
  Engine e;
  std::uint64_t count = 0;
  std::vector<EventHandle> decoys(64);
  struct Chain {
    Engine* e;
    std::uint64_t* count;
    std::vector<EventHandle>* decoys;
    std::uint64_t total;
    std::uint64_t id;
    void operator()() const {
      (*decoys)[id].cancel();
      (*decoys)[id] = e->schedule(Time::ns(100), [] {});
      if (++*count < total) e->schedule(Time::ns(1 + static_cast<std::int64_t>(id % 7)), *this);
    }
  };
  for (std::uint64_t c = 0; c < 64; ++c) e.schedule(Time::ns(1), Chain{&e, &count, &decoys, total, c});
  e.run();
  return 2 * e.executed();  // scheduled events (half of them cancelled)
}

Link make_link(std::string name, double GBps, Time latency) {
  return Link{std::move(name), gbytes_per_s(GBps), latency};
}

// n flows, 64 at a time, each alone on its own link; a finishing flow starts
// the next one on its link.
std::uint64_t flows_disjoint(std::uint64_t n) {
  Engine e;
  FlowNetwork net(e);
  std::uint64_t started = 0;
  std::vector<LinkIndex> links;
  for (int i = 0; i < 64; ++i) links.push_back(net.add_link(make_link("l", 50.0, Time::ns(500))));
  std::function<void(LinkIndex)> start = [&](LinkIndex l) {
    if (started >= n) return;
    ++started;
    net.start_flow({l}, bytes(1e6 * (1 + started % 5)), [&start, l] { start(l); });
  };
  for (LinkIndex l : links) start(l);
  e.run();
  return started;
}

// A leaf-spine: 64 GPUs, 8 per leaf; each GPU has an up and a down link to
// its leaf; each leaf has an up and a down link to each of 4 spines. The
// route from a to b: up(a), then (other leaf) leaf-up to spine s, spine-down
// to b's leaf, with s = (a + b) % 4; then down(b).
struct LeafSpine {
  static constexpr int kGpus = 64, kPerLeaf = 8, kSpines = 4;
  std::vector<LinkIndex> up, down;  // per GPU
  std::vector<LinkIndex> leaf_up, spine_down;  // [leaf * kSpines + spine]

  explicit LeafSpine(FlowNetwork& net) {
    for (int g = 0; g < kGpus; ++g) {
      up.push_back(net.add_link(make_link("up", 50.0, Time::ns(700))));
      down.push_back(net.add_link(make_link("down", 50.0, Time::ns(700))));
    }
    for (int l = 0; l < kGpus / kPerLeaf; ++l)
      for (int s = 0; s < kSpines; ++s) {
        leaf_up.push_back(net.add_link(make_link("leaf-up", 100.0, Time::ns(600))));
        spine_down.push_back(net.add_link(make_link("spine-down", 100.0, Time::ns(600))));
      }
  }
  Route route(int a, int b) const {
    const int la = a / kPerLeaf, lb = b / kPerLeaf;
    if (la == lb) return {up[a], down[b]};
    const int s = (a + b) % kSpines;
    return {up[a], leaf_up[la * kSpines + s], spine_down[lb * kSpines + s], down[b]};
  }
};

constexpr double kPairBytes = 1e6;

// `reps` all-to-alls, one after the other; each is 64 x 63 plain flows.
std::uint64_t flows_a2a(int reps, FlowNetworkStats* stats) {
  Engine e;
  FlowNetwork net(e);
  const LeafSpine fabric(net);
  std::uint64_t started = 0;
  int left = 0, round = 0;
  std::function<void()> start_round = [&] {
    if (round++ == reps) return;
    for (int a = 0; a < LeafSpine::kGpus; ++a)
      for (int b = 0; b < LeafSpine::kGpus; ++b) {
        if (a == b) continue;
        ++left;
        ++started;
        net.start_flow(fabric.route(a, b), bytes(kPairBytes), [&] {
          if (--left == 0) start_round();
        });
      }
  };
  start_round();
  e.run();
  *stats = net.stats();
  return started;
}

// The same traffic as flows_a2a, one bundled flow per source GPU: it moves
// 63 x kPairBytes, putting on each link the fraction of those bytes its 63
// transfers put there; its share is 63 (it stands for 63 flows).
std::uint64_t flows_a2a_bundled(int reps, FlowNetworkStats* stats) {
  Engine e;
  FlowNetwork net(e);
  const LeafSpine fabric(net);
  constexpr int n = LeafSpine::kGpus;
  std::vector<WeightedRoute> bundles(n);
  for (int a = 0; a < n; ++a) {
    std::map<LinkIndex, double> w;
    for (int b = 0; b < n; ++b)
      if (a != b)
        for (LinkIndex l : fabric.route(a, b)) w[l] += 1.0 / (n - 1);
    for (const auto& [l, x] : w) bundles[a].push_back(WeightedHop{l, x});
  }
  std::uint64_t started = 0;
  int left = 0, round = 0;
  std::function<void()> start_round = [&] {
    if (round++ == reps) return;
    for (int a = 0; a < n; ++a) {
      ++left;
      ++started;
      net.start_flow(bundles[a], bytes(kPairBytes * (n - 1)), double(n - 1), [&] {
        if (--left == 0) start_round();
      });
    }
  };
  start_round();
  e.run();
  *stats = net.stats();
  return started;
}

void print_stats(const char* name, const FlowNetworkStats& s) {
  fmt::print("  {:<16} events {}  flows {}  solves {}  components {}  solver runs {}  memo hits {}\n", name,
             s.events, s.flows_started, s.solves, s.components_solved, s.solver_runs, s.cache_hits);
}

}  // namespace

int main(int argc, char** argv) {
  const int repeats = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  const std::string only = argc > 2 ? argv[2] : "";  // run one case (e.g. under perf)
  auto wanted = [&only](const char* name) { return only.empty() || only == name; };
  if (wanted("engine/plain")) measure("engine/plain", repeats, [] { return engine_plain(2'000'000); });
  if (wanted("engine/cancel")) measure("engine/cancel", repeats, [] { return engine_cancel(1'000'000); });
  if (wanted("flows/disjoint")) measure("flows/disjoint", repeats, [] { return flows_disjoint(200'000); });
  FlowNetworkStats plain, bundled;
  if (wanted("flows/a2a")) {
    measure("flows/a2a", repeats, [&] { return flows_a2a(1000, &plain); });
    print_stats("flows/a2a", plain);
  }
  if (wanted("flows/a2a-bundle")) {
    measure("flows/a2a-bundle", repeats, [&] { return flows_a2a_bundled(1000, &bundled); });
    print_stats("flows/a2a-bundle", bundled);
  }
  return 0;
}
