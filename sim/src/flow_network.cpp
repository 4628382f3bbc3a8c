#include "trainsim/sim/flow_network.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <utility>

namespace trainsim::sim {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kEps = std::numeric_limits<double>::epsilon();

// Seconds in a picosecond span, as an exact division (count / 1e12 is
// correctly rounded; count * 1e-12 is not).
double seconds_of(Time t) { return static_cast<double>(t.count_ps()) / 1e12; }

// Registered sharing solvers. A new model is one more row here.
struct SolverEntry {
  std::string_view name;
  SharingSolver fn;
};
constexpr std::array<SolverEntry, 1> kSolvers{{
    {"maxmin", &maxmin_rates},
}};

std::string known_solver_list() {
  std::string out;
  for (const auto& s : kSolvers) {
    if (!out.empty()) out += ", ";
    out += fmt::format("'{}'", s.name);
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------
// Max-min fairness by progressive filling.
//
// All unfixed flows grow together by the largest increment `delta` that no
// link can refuse (the smallest remaining-capacity / unfixed-crossings over
// the links). Links whose fair share equals delta are now full; every unfixed
// flow crossing one is fixed at the current level. Repeat until all flows are
// fixed. Each round fixes at least one flow, so there are at most F rounds.
std::vector<double> maxmin_rates(const std::vector<double>& capacities_Bps,
                                 const std::vector<Route>& routes) {
  const std::size_t n_links = capacities_Bps.size();
  for (std::size_t l = 0; l < n_links; ++l) {
    const double c = capacities_Bps[l];
    if (!std::isfinite(c) || c < 0.0)
      throw std::invalid_argument(
          fmt::format("maxmin_rates: link {} has capacity {}; expected a finite value >= 0", l, c));
  }

  std::vector<double> rates(routes.size(), 0.0);
  std::vector<char> fixed(routes.size(), 0);
  std::vector<double> remaining = capacities_Bps;  // capacity not yet handed out
  std::vector<int> users(n_links, 0);              // unfixed crossings per link
  std::vector<std::vector<std::size_t>> flows_on(n_links);
  std::size_t unfixed = 0;

  for (std::size_t f = 0; f < routes.size(); ++f) {
    if (routes[f].empty()) {  // local copy: not limited by any link
      rates[f] = kInf;
      fixed[f] = 1;
      continue;
    }
    for (LinkIndex l : routes[f]) {
      if (l < 0 || static_cast<std::size_t>(l) >= n_links)
        throw std::invalid_argument(fmt::format(
            "maxmin_rates: flow {} crosses link {}; expected an index in [0, {})", f, l, n_links));
      ++users[l];
      flows_on[l].push_back(f);
    }
    ++unfixed;
  }

  double level = 0.0;  // common rate of all unfixed flows
  std::vector<char> saturated(n_links, 0);
  while (unfixed > 0) {
    // Largest common increment: the tightest link's fair share of what is left.
    double delta = kInf;
    for (std::size_t l = 0; l < n_links; ++l)
      if (users[l] > 0) delta = std::min(delta, remaining[l] / users[l]);
    level += delta;

    // Hand out delta to every unfixed crossing; links at (or within rounding
    // of) the bottleneck share become saturated. The relative tolerance makes
    // ties between equally tight links resolve in the same round.
    const double tie = delta * (1.0 + 1e-12);
    for (std::size_t l = 0; l < n_links; ++l) {
      saturated[l] = 0;
      if (users[l] == 0) continue;
      if (remaining[l] / users[l] <= tie) {
        saturated[l] = 1;
        remaining[l] = 0.0;
      } else {
        remaining[l] -= delta * users[l];
      }
    }

    // Fix every unfixed flow that crosses a saturated link (in link, then
    // flow order: deterministic).
    for (std::size_t l = 0; l < n_links; ++l) {
      if (!saturated[l]) continue;
      for (std::size_t f : flows_on[l]) {
        if (fixed[f]) continue;
        fixed[f] = 1;
        rates[f] = level;
        --unfixed;
        for (LinkIndex l2 : routes[f]) --users[l2];
      }
    }
  }
  return rates;
}

SharingSolver find_solver(std::string_view name) {
  for (const auto& s : kSolvers)
    if (s.name == name) return s.fn;
  throw std::invalid_argument(
      fmt::format("unknown bandwidth-sharing solver '{}'; known solvers: {}", name, known_solver_list()));
}

std::vector<std::string> solver_names() {
  std::vector<std::string> out;
  for (const auto& s : kSolvers) out.emplace_back(s.name);
  return out;
}

Time transfer_duration(double bytes, double rate_Bps) {
  if (bytes < kDoneBytes || rate_Bps == kInf) return Time::zero();
  const double ps = bytes * 1e12 / rate_Bps;
  // 9.2e18 ps is about Time::max(); a zero or tiny rate lands here too.
  if (!(ps < 9.2e18))
    throw std::overflow_error(
        fmt::format("transfer of {} bytes at {} B/s does not fit in simulated time", bytes, rate_Bps));
  // Round up so that a flow never completes with bytes left. A slack of a few
  // ulps keeps a value that is an integer in exact arithmetic but came out a
  // hair above it (after subtracting moved bytes) on that integer.
  return Time::ps(static_cast<std::int64_t>(std::ceil(ps * (1.0 - 4 * kEps))));
}

Time route_latency(const std::vector<Link>& links, const Route& route) {
  Time t = Time::zero();
  for (LinkIndex l : route) {
    if (l < 0 || static_cast<std::size_t>(l) >= links.size())
      throw std::invalid_argument(
          fmt::format("route crosses link {}; expected an index in [0, {})", l, links.size()));
    t += links[l].latency;
  }
  return t;
}

// ---------------------------------------------------------------------------
// FlowNetwork

FlowNetwork::FlowNetwork(Engine& engine, std::string solver)
    : engine_(engine), solver_name_(std::move(solver)), solver_(find_solver(solver_name_)) {
  last_update_ = engine_.now();
}

FlowNetwork::~FlowNetwork() {
  // Pending events capture `this`: make sure none of them fires later.
  completion_.cancel();
  resolve_event_.cancel();
  for (auto& [id, w] : waiting_) w.activation.cancel();
}

LinkIndex FlowNetwork::add_link(Link link) {
  const double c = link.capacity.value();
  if (!std::isfinite(c) || c <= 0.0)
    throw std::invalid_argument(fmt::format(
        "link '{}': capacity {} B/s; expected a finite value > 0 (leave a dead link out of routes instead)",
        link.name, c));
  if (link.latency < Time::zero())
    throw std::invalid_argument(
        fmt::format("link '{}': latency {} ps; expected >= 0", link.name, link.latency.count_ps()));
  // A new link changes no running flow's rate (none can cross it yet).
  links_.push_back(std::move(link));
  capacities_.push_back(c);
  carried_.push_back(0.0);
  return static_cast<LinkIndex>(links_.size() - 1);
}

void FlowNetwork::check_link(LinkIndex i, const char* what) const {
  if (i < 0 || static_cast<std::size_t>(i) >= links_.size())
    throw std::invalid_argument(
        fmt::format("FlowNetwork::{}: link {}; expected an index in [0, {})", what, i, links_.size()));
}

const Link& FlowNetwork::link(LinkIndex i) const {
  check_link(i, "link");
  return links_[i];
}

ByteCount FlowNetwork::bytes_carried(LinkIndex i) const {
  check_link(i, "bytes_carried");
  // carried_ is exact up to last_update_; add what moved since at the
  // current rates (the same amount advance_to() will add).
  double total = carried_[i];
  const double dt = seconds_of(engine_.now() - last_update_);
  if (dt > 0.0) {
    for (const auto& [id, f] : transferring_) {
      const double moved = std::min(f.remaining, f.rate * dt);
      for (LinkIndex l : f.route)
        if (l == i) total += moved;
    }
  }
  return ByteCount(total);
}

std::uint64_t FlowNetwork::start_flow(Route route, ByteCount bytes, std::function<void()> on_done) {
  const double b = bytes.value();
  if (!std::isfinite(b) || b < 0.0)
    throw std::invalid_argument(fmt::format("FlowNetwork::start_flow: {} bytes; expected a finite value >= 0", b));
  for (LinkIndex l : route) check_link(l, "start_flow");

  const std::uint64_t id = next_id_++;
  const Time latency = route_latency(links_, route);
  Waiting w;
  w.flow.route = std::move(route);
  w.flow.bytes = b;
  w.flow.remaining = b;
  w.flow.on_done = std::move(on_done);
  // The flow uses no bandwidth while it waits out its latency.
  w.activation = engine_.schedule(latency, [this, id] { activate(id); });
  waiting_.emplace(id, std::move(w));
  return id;
}

void FlowNetwork::activate(std::uint64_t id) {
  auto node = waiting_.extract(id);
  Flow f = std::move(node.mapped().flow);
  if (f.route.empty() || f.bytes < kDoneBytes) {
    // Local copy (infinite rate) or nothing to move: done after 0 transfer time.
    for (LinkIndex l : f.route) carried_[l] += f.bytes;
    if (f.on_done) f.on_done();
    return;
  }
  advance_to(engine_.now());
  f.rate = 0.0;  // until the (same-instant) re-solve
  f.finish = Time::max();
  transferring_.emplace(id, std::move(f));
  request_resolve();
}

void FlowNetwork::advance_to(Time t) {
  if (t <= last_update_) return;
  const double dt = seconds_of(t - last_update_);
  for (auto& [id, f] : transferring_) {
    const double moved = std::min(f.remaining, f.rate * dt);
    f.remaining -= moved;
    for (LinkIndex l : f.route) carried_[l] += moved;
  }
  last_update_ = t;
}

void FlowNetwork::request_resolve() {
  // Batch all set changes of one instant into a single solve that runs after
  // the ordinary events of that instant.
  if (!resolve_event_.pending())
    resolve_event_ = engine_.schedule(Time::zero(), [this] { resolve(); }, kResolvePriority);
}

void FlowNetwork::resolve() {
  const Time now = engine_.now();
  advance_to(now);
  completion_.cancel();
  if (transferring_.empty()) return;

  std::vector<Route> routes;
  routes.reserve(transferring_.size());
  for (const auto& [id, f] : transferring_) routes.push_back(f.route);
  const std::vector<double> rates = solver_(capacities_, routes);

  Time next = Time::max();
  std::size_t k = 0;
  for (auto& [id, f] : transferring_) {
    f.rate = rates[k++];
    f.finish = now + transfer_duration(f.remaining, f.rate);
    next = min(next, f.finish);
  }
  completion_ = engine_.schedule_at(next, [this] { on_completion(); });
}

void FlowNetwork::on_completion() {
  const Time now = engine_.now();
  advance_to(now);
  // Every flow whose rounded-up finish time has come is done; any bytes left
  // are double-rounding residue and are credited to its links.
  std::vector<std::function<void()>> done;
  for (auto it = transferring_.begin(); it != transferring_.end();) {
    Flow& f = it->second;
    if (f.finish <= now || f.remaining < kDoneBytes) {
      for (LinkIndex l : f.route) carried_[l] += f.remaining;
      done.push_back(std::move(f.on_done));
      it = transferring_.erase(it);
    } else {
      ++it;
    }
  }
  request_resolve();
  // Callbacks run last, in flow-id order, with the network consistent; they
  // may start new flows (which activate from their own events).
  for (auto& fn : done)
    if (fn) fn();
}

}  // namespace trainsim::sim
