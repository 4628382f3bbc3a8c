#include "trainsim/sim/collectives.hpp"

#include <fmt/format.h>

#include <cmath>
#include <cstddef>
#include <memory>
#include <stdexcept>
#include <utility>

namespace trainsim::sim {

namespace {

void check_group(const char* what, int n) {
  if (n < 1) throw std::invalid_argument(fmt::format("{}: group size {}; expected >= 1", what, n));
}

void check_bytes(const char* what, ByteCount b) {
  if (!std::isfinite(b.value()) || b.value() < 0.0)
    throw std::invalid_argument(fmt::format("{}: {} bytes; expected a finite value >= 0", what, b.value()));
}

// n-1 steps in which every rank sends `chunk` to its right neighbour: the
// shape shared by ring reduce-scatter and ring all-gather.
CollectiveSchedule ring_pass(int n, ByteCount chunk) {
  CollectiveSchedule s;
  if (n == 1) return s;
  s.resize(static_cast<std::size_t>(n - 1));
  for (Step& step : s) {
    step.transfers.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) step.transfers.push_back(Transfer{i, (i + 1) % n, chunk});
  }
  return s;
}

// The state of one run_collective() call, shared by the callbacks of the
// flows of the current step.
struct CollectiveRun {
  FlowNetwork* net = nullptr;
  CollectiveSchedule schedule;
  std::vector<std::vector<Route>> routes;  // [step][transfer], computed up front
  std::function<void()> on_done;
  std::size_t step = 0;         // step now running
  std::size_t outstanding = 0;  // its unfinished transfers
};

// Starts run->step (skipping steps without transfers); calls on_done when
// none is left. Only called from a flow's completion event (or at start when
// there is work), so on_done always runs from an engine event.
void start_step(const std::shared_ptr<CollectiveRun>& run) {
  while (run->step < run->schedule.size() && run->schedule[run->step].transfers.empty()) ++run->step;
  if (run->step == run->schedule.size()) {
    if (run->on_done) run->on_done();
    return;
  }
  const auto& transfers = run->schedule[run->step].transfers;
  run->outstanding = transfers.size();
  for (std::size_t t = 0; t < transfers.size(); ++t) {
    run->net->start_flow(run->routes[run->step][t], transfers[t].bytes, [run] {
      if (--run->outstanding == 0) {  // bulk synchronous: the step is over
        ++run->step;
        start_step(run);
      }
    });
  }
}

}  // namespace

CollectiveSchedule ring_reduce_scatter(int n, ByteCount total_bytes) {
  check_group("ring_reduce_scatter", n);
  check_bytes("ring_reduce_scatter", total_bytes);
  return ring_pass(n, total_bytes / n);
}

CollectiveSchedule ring_all_gather(int n, ByteCount total_bytes) {
  check_group("ring_all_gather", n);
  check_bytes("ring_all_gather", total_bytes);
  return ring_pass(n, total_bytes / n);
}

CollectiveSchedule ring_all_reduce(int n, ByteCount total_bytes) {
  check_group("ring_all_reduce", n);
  check_bytes("ring_all_reduce", total_bytes);
  CollectiveSchedule s = ring_reduce_scatter(n, total_bytes);
  CollectiveSchedule ag = ring_all_gather(n, total_bytes);
  s.insert(s.end(), std::make_move_iterator(ag.begin()), std::make_move_iterator(ag.end()));
  return s;
}

CollectiveSchedule all_to_all_pairwise(int n, ByteCount bytes_per_pair) {
  check_group("all_to_all_pairwise", n);
  check_bytes("all_to_all_pairwise", bytes_per_pair);
  CollectiveSchedule s;
  for (int step = 1; step < n; ++step) {
    Step st;
    st.transfers.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) st.transfers.push_back(Transfer{i, (i + step) % n, bytes_per_pair});
    s.push_back(std::move(st));
  }
  return s;
}

CollectiveSchedule point_to_point(ByteCount bytes) {
  check_bytes("point_to_point", bytes);
  return CollectiveSchedule{Step{{Transfer{0, 1, bytes}}}};
}

ByteCount schedule_bytes(const CollectiveSchedule& s) {
  ByteCount total{};
  for (const Step& step : s)
    for (const Transfer& t : step.transfers) total += t.bytes;
  return total;
}

void run_collective(FlowNetwork& net, const CollectiveSchedule& s, RouteFn routes,
                    std::function<void()> on_done) {
  if (!routes) throw std::invalid_argument("run_collective: empty RouteFn");
  auto run = std::make_shared<CollectiveRun>();
  run->net = &net;
  run->schedule = s;
  run->on_done = std::move(on_done);
  // Routes and byte counts are checked now, so a bad schedule throws here
  // rather than from inside a later event.
  std::size_t n_transfers = 0;
  run->routes.resize(s.size());
  for (std::size_t k = 0; k < s.size(); ++k) {
    for (const Transfer& t : s[k].transfers) {
      check_bytes("run_collective", t.bytes);
      Route r = routes(t.src, t.dst);
      route_latency(net.links(), r);  // throws on a bad link index
      run->routes[k].push_back(std::move(r));
      ++n_transfers;
    }
  }
  if (n_transfers == 0) {
    // Nothing to move: finish at now, from an event like every other path.
    net.engine().schedule(Time::zero(), [run] {
      if (run->on_done) run->on_done();
    });
    return;
  }
  start_step(run);
}

Time collective_time_idle(const std::vector<Link>& links, const CollectiveSchedule& s,
                          const RouteFn& routes, std::string_view solver) {
  if (!routes) throw std::invalid_argument("collective_time_idle: empty RouteFn");
  const SharingSolver solve = find_solver(solver);
  std::vector<double> caps;
  caps.reserve(links.size());
  for (const Link& l : links) caps.push_back(l.capacity.value());

  // On an idle network a step's time is a function of its transfers alone,
  // so a step identical to the previous one (every step of a ring algorithm)
  // reuses its time instead of solving the sharing again.
  auto same_transfers = [](const Step& a, const Step& b) {
    if (a.transfers.size() != b.transfers.size()) return false;
    for (std::size_t i = 0; i < a.transfers.size(); ++i) {
      const Transfer& x = a.transfers[i];
      const Transfer& y = b.transfers[i];
      if (x.src != y.src || x.dst != y.dst || x.bytes.value() != y.bytes.value()) return false;
    }
    return true;
  };
  Time total = Time::zero();
  const Step* previous = nullptr;
  Time previous_time = Time::zero();
  for (const Step& step : s) {
    if (previous && same_transfers(step, *previous)) {
      total += previous_time;
      continue;
    }
    // Latency of every transfer; only transfers that move bytes over links
    // share bandwidth (as in FlowNetwork).
    std::vector<Time> latency;
    std::vector<WeightedRoute> shared_routes;
    std::vector<std::size_t> shared_index;  // transfer index of each shared route
    for (std::size_t t = 0; t < step.transfers.size(); ++t) {
      const Transfer& tr = step.transfers[t];
      check_bytes("collective_time_idle", tr.bytes);
      Route r = routes(tr.src, tr.dst);
      latency.push_back(route_latency(links, r));
      if (!r.empty() && tr.bytes.value() >= kDoneBytes) {
        shared_routes.push_back(unit_weights(r));
        shared_index.push_back(t);
      }
    }
    const std::vector<double> rates =
        solve(caps, shared_routes, std::vector<double>(shared_routes.size(), 1.0)).rates;

    Time step_time = Time::zero();
    for (Time l : latency) step_time = max(step_time, l);
    for (std::size_t k = 0; k < shared_index.size(); ++k) {
      const std::size_t t = shared_index[k];
      step_time = max(step_time, latency[t] + transfer_duration(step.transfers[t].bytes.value(), rates[k]));
    }
    total += step_time;
    previous = &step;
    previous_time = step_time;
  }
  return total;
}

}  // namespace trainsim::sim
