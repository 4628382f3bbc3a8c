#include "trainsim/sim/flow_network.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <bit>
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
    {"maxmin", static_cast<SharingSolver>(&maxmin_rates)},
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
// Weighted max-min fairness by progressive filling.
//
// A common level grows; flow f's rate is share_f x level; link l consumes
// load_l = sum over its unfixed flows of weight_fl x share_f per unit of
// level. Each round grows the level by the largest increment no link can
// refuse (the smallest remaining-capacity / load over the links); links whose
// ratio equals it are now full, and every unfixed flow crossing one is fixed
// (its bottleneck is the first such link in link order). Each round fixes at
// least one flow, so there are at most F rounds. With weights and shares 1
// the loads are exact small integers and this is the classic algorithm.
namespace {

void check_capacities(const std::vector<double>& capacities_Bps) {
  for (std::size_t l = 0; l < capacities_Bps.size(); ++l) {
    const double c = capacities_Bps[l];
    if (!std::isfinite(c) || c < 0.0)
      throw std::invalid_argument(
          fmt::format("maxmin_rates: link {} has capacity {}; expected a finite value >= 0", l, c));
  }
}

void check_flow(std::size_t f, const WeightedRoute& route, double share, std::size_t n_links) {
  if (!std::isfinite(share) || share < 1.0)
    throw std::invalid_argument(fmt::format("maxmin_rates: flow {} has share {}; expected a finite value >= 1", f, share));
  for (const WeightedHop& h : route) {
    if (h.link < 0 || static_cast<std::size_t>(h.link) >= n_links)
      throw std::invalid_argument(fmt::format(
          "maxmin_rates: flow {} crosses link {}; expected an index in [0, {})", f, h.link, n_links));
    if (!std::isfinite(h.weight) || h.weight <= 0.0)
      throw std::invalid_argument(fmt::format(
          "maxmin_rates: flow {} has weight {} on link {}; expected a finite value > 0", f, h.weight, h.link));
  }
}

// State of one progressive-filling run.
struct Filling {
  std::vector<double> remaining;  // capacity not yet handed out
  std::vector<double> load;       // sum of weight x share of unfixed crossings
  std::vector<int> users;         // unfixed crossings (load is exactly 0 at 0)
  std::vector<std::vector<std::size_t>> flows_on;
  std::vector<char> fixed;
  std::vector<char> saturated;
  std::size_t unfixed = 0;
};

// Grows the level by one round; returns the increment.
double fill_round(Filling& st) {
  const std::size_t n_links = st.remaining.size();
  double delta = kInf;
  for (std::size_t l = 0; l < n_links; ++l)
    if (st.users[l] > 0) delta = std::min(delta, st.remaining[l] / st.load[l]);
  // Links at (or within rounding of) the bottleneck ratio saturate. The
  // relative tolerance makes ties between equally tight links resolve in the
  // same round.
  const double tie = delta * (1.0 + 1e-12);
  for (std::size_t l = 0; l < n_links; ++l) {
    st.saturated[l] = 0;
    if (st.users[l] == 0) continue;
    if (st.remaining[l] / st.load[l] <= tie) {
      st.saturated[l] = 1;
      st.remaining[l] = 0.0;
    } else {
      st.remaining[l] = std::max(0.0, st.remaining[l] - delta * st.load[l]);
    }
  }
  return delta;
}

}  // namespace

SharingResult maxmin_rates(const std::vector<double>& capacities_Bps,
                           const std::vector<WeightedRoute>& routes, const std::vector<double>& shares) {
  check_capacities(capacities_Bps);
  if (shares.size() != routes.size())
    throw std::invalid_argument(
        fmt::format("maxmin_rates: {} routes but {} shares; expected one share per route", routes.size(), shares.size()));
  const std::size_t n_links = capacities_Bps.size();
  SharingResult out{std::vector<double>(routes.size(), 0.0), std::vector<LinkIndex>(routes.size(), -1)};
  Filling st{capacities_Bps, std::vector<double>(n_links, 0.0), std::vector<int>(n_links, 0),
             std::vector<std::vector<std::size_t>>(n_links), std::vector<char>(routes.size(), 0),
             std::vector<char>(n_links, 0), 0};
  for (std::size_t f = 0; f < routes.size(); ++f) {
    check_flow(f, routes[f], shares[f], n_links);
    if (routes[f].empty()) {  // local copy: not limited by any link
      out.rates[f] = kInf;
      st.fixed[f] = 1;
      continue;
    }
    for (const WeightedHop& h : routes[f]) {
      st.load[h.link] += h.weight * shares[f];
      ++st.users[h.link];
      st.flows_on[h.link].push_back(f);
    }
    ++st.unfixed;
  }

  double level = 0.0;
  while (st.unfixed > 0) {
    level += fill_round(st);
    // Fix every unfixed flow that crosses a saturated link (in link, then
    // flow order: deterministic).
    for (std::size_t l = 0; l < n_links; ++l) {
      if (!st.saturated[l]) continue;
      for (std::size_t f : st.flows_on[l]) {
        if (st.fixed[f]) continue;
        st.fixed[f] = 1;
        out.rates[f] = shares[f] * level;
        out.bottlenecks[f] = static_cast<LinkIndex>(l);
        --st.unfixed;
        for (const WeightedHop& h : routes[f]) {
          st.load[h.link] -= h.weight * shares[f];
          if (--st.users[h.link] == 0) st.load[h.link] = 0.0;
        }
      }
    }
  }
  return out;
}

WeightedRoute unit_weights(const Route& route) {
  WeightedRoute w;
  w.reserve(route.size());
  for (LinkIndex l : route) w.push_back(WeightedHop{l, 1.0});
  return w;
}

std::vector<double> maxmin_rates(const std::vector<double>& capacities_Bps, const std::vector<Route>& routes) {
  std::vector<WeightedRoute> weighted;
  weighted.reserve(routes.size());
  for (const Route& r : routes) weighted.push_back(unit_weights(r));
  return maxmin_rates(capacities_Bps, weighted, std::vector<double>(routes.size(), 1.0)).rates;
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
  if (!(ps < 9.2e18)) throw TimeOverflow();
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
// FlowNetwork: set-up, flow start and activation

namespace {

// Sorted by link, duplicates merged (their weights add up).
WeightedRoute normalised(WeightedRoute r) {
  const bool strictly_sorted = std::adjacent_find(r.begin(), r.end(), [](const WeightedHop& a, const WeightedHop& b) {
                                 return a.link >= b.link;
                               }) == r.end();
  if (strictly_sorted) return r;  // the usual case for routes built by hand or by a topology
  std::sort(r.begin(), r.end(), [](const WeightedHop& a, const WeightedHop& b) { return a.link < b.link; });
  std::size_t out = 0;
  for (std::size_t k = 0; k < r.size(); ++k) {
    if (out > 0 && r[out - 1].link == r[k].link)
      r[out - 1].weight += r[k].weight;
    else
      r[out++] = r[k];
  }
  r.resize(out);
  return r;
}

}  // namespace

FlowNetwork::FlowNetwork(Engine& engine, std::string solver)
    : engine_(engine), solver_name_(std::move(solver)), solver_(find_solver(solver_name_)) {}

FlowNetwork::~FlowNetwork() {
  // Pending events capture `this`: make sure none of them fires later.
  completion_.cancel();
  resolve_event_.cancel();
  for (Flow& f : flows_)
    if (f.state == State::Waiting) f.activation.cancel();
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
  lstate_.push_back(LinkState{0.0, 0.0, engine_.now()});
  link_flows_.emplace_back();
  link_mark_.push_back(0);
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
  // carried is exact up to since; the link's rate has been constant
  // since then.
  const LinkState& s = lstate_[i];
  return ByteCount(s.carried + s.rate * seconds_of(engine_.now() - s.since));
}

const FlowNetwork::Flow& FlowNetwork::transferring_flow(std::uint64_t id, const char* what) const {
  for (const Flow& f : flows_)
    if (f.id == id && f.state == State::Transferring) return f;
  throw std::invalid_argument(fmt::format("FlowNetwork::{}: flow {} is not transferring", what, id));
}

double FlowNetwork::flow_rate(std::uint64_t id) const { return transferring_flow(id, "flow_rate").rate; }
Time FlowNetwork::flow_finish(std::uint64_t id) const { return transferring_flow(id, "flow_finish").finish; }

std::uint64_t FlowNetwork::start_flow(Route route, ByteCount bytes, std::function<void()> on_done) {
  for (LinkIndex l : route) check_link(l, "start_flow");
  const Time latency = route_latency(links_, route);
  return add_flow(normalised(unit_weights(route)), bytes.value(), 1.0, latency, std::move(on_done), nullptr);
}

std::uint64_t FlowNetwork::start_flow(Route route, ByteCount bytes,
                                      std::function<void(const FlowRecord&)> on_done) {
  for (LinkIndex l : route) check_link(l, "start_flow");
  const Time latency = route_latency(links_, route);
  return add_flow(normalised(unit_weights(route)), bytes.value(), 1.0, latency, nullptr, std::move(on_done));
}

std::uint64_t FlowNetwork::start_flow(Route route, ByteCount bytes, std::nullptr_t) {
  return start_flow(std::move(route), bytes, std::function<void()>{});
}

std::uint64_t FlowNetwork::start_flow(WeightedRoute route, ByteCount bytes, double share,
                                      std::function<void()> on_done, std::optional<Time> latency) {
  return add_weighted(std::move(route), bytes.value(), share, latency, std::move(on_done), nullptr);
}

std::uint64_t FlowNetwork::start_flow(WeightedRoute route, ByteCount bytes, double share,
                                      std::function<void(const FlowRecord&)> on_done,
                                      std::optional<Time> latency) {
  return add_weighted(std::move(route), bytes.value(), share, latency, nullptr, std::move(on_done));
}

std::uint64_t FlowNetwork::start_flow(WeightedRoute route, ByteCount bytes, double share, std::nullptr_t,
                                      std::optional<Time> latency) {
  return add_weighted(std::move(route), bytes.value(), share, latency, nullptr, nullptr);
}

std::uint64_t FlowNetwork::add_weighted(WeightedRoute route, double bytes, double share,
                                        std::optional<Time> latency, std::function<void()> on_done,
                                        std::function<void(const FlowRecord&)> on_record) {
  for (const WeightedHop& h : route) {
    check_link(h.link, "start_flow");
    if (!std::isfinite(h.weight) || h.weight <= 0.0)
      throw std::invalid_argument(fmt::format(
          "FlowNetwork::start_flow: weight {} on link {}; expected a finite value > 0", h.weight, h.link));
  }
  if (!std::isfinite(share) || share < 1.0)
    throw std::invalid_argument(fmt::format("FlowNetwork::start_flow: share {}; expected a finite value >= 1", share));
  if (latency && *latency < Time::zero())
    throw std::invalid_argument(
        fmt::format("FlowNetwork::start_flow: latency {} ps; expected >= 0", latency->count_ps()));
  route = normalised(std::move(route));
  Time sum = Time::zero();
  for (const WeightedHop& h : route) sum += links_[h.link].latency;
  return add_flow(std::move(route), bytes, share, latency.value_or(sum), std::move(on_done), std::move(on_record));
}

std::uint32_t FlowNetwork::new_slot() {
  if (!free_slots_.empty()) {
    const std::uint32_t s = free_slots_.back();
    free_slots_.pop_back();
    return s;
  }
  flows_.emplace_back();
  return static_cast<std::uint32_t>(flows_.size() - 1);
}

// Validates the size, stores the flow in a slot and schedules its
// activation after `latency`. `route` is normalised (sorted, merged).
std::uint64_t FlowNetwork::add_flow(WeightedRoute route, double bytes, double share, Time latency,
                                    std::function<void()> on_done,
                                    std::function<void(const FlowRecord&)> on_record) {
  if (!std::isfinite(bytes) || bytes < 0.0)
    throw std::invalid_argument(fmt::format("FlowNetwork::start_flow: {} bytes; expected a finite value >= 0", bytes));
  const std::uint64_t id = next_id_++;
  const std::uint32_t slot = new_slot();
  Flow& f = flows_[slot];
  f.id = id;
  f.state = State::Waiting;
  f.route = std::move(route);
  f.share = share;
  f.sig = flow_signature(f.route, share);
  f.rid = intern(f.route, share, f.sig);
  f.bytes = bytes;
  f.remaining = bytes;
  f.rate = 0.0;
  f.start = engine_.now();
  f.finish = Time::max();
  f.bottleneck = -1;
  f.moved_by.clear();
  f.on_done = std::move(on_done);
  f.on_record = std::move(on_record);
  // The flow uses no bandwidth while it waits out its latency.
  f.activation = engine_.schedule(latency, [this, slot] { activate(slot); });
  ++waiting_;
  ++stats_.flows_started;
  return id;
}

void FlowNetwork::activate(std::uint32_t slot) {
  ++stats_.events;
  Flow& f = flows_[slot];
  --waiting_;
  const Time now = engine_.now();
  if (f.route.empty() || f.bytes < kDoneBytes) {
    // Local copy (infinite rate) or nothing to move: done after 0 transfer time.
    for (const WeightedHop& h : f.route) lstate_[h.link].carried += h.weight * f.bytes;
    f.remaining = 0.0;
    deliver(slot, now);
    return;
  }
  f.state = State::Transferring;
  f.rate = 0.0;  // until the (same-instant) re-solve
  f.updated = now;
  f.finish = Time::max();
  ++transferring_;
  link_flow(slot);
  request_resolve();
}

void FlowNetwork::link_flow(std::uint32_t slot) {
  Flow& f = flows_[slot];
  f.pos.resize(f.route.size());
  for (std::size_t k = 0; k < f.route.size(); ++k) {
    const LinkIndex l = f.route[k].link;
    f.pos[k] = static_cast<std::uint32_t>(link_flows_[l].size());
    link_flows_[l].push_back(OnLink{slot, static_cast<std::uint32_t>(k)});
    dirty_links_.push_back(l);
  }
}

void FlowNetwork::unlink_flow(std::uint32_t slot) {
  Flow& f = flows_[slot];
  for (std::size_t k = 0; k < f.route.size(); ++k) {
    const LinkIndex l = f.route[k].link;
    std::vector<OnLink>& on = link_flows_[l];
    const OnLink moved = on.back();
    on[f.pos[k]] = moved;
    on.pop_back();
    if (moved.slot != slot) flows_[moved.slot].pos[moved.hop] = f.pos[k];  // where it now sits on l
    dirty_links_.push_back(l);
  }
}

// ---------------------------------------------------------------------------
// FlowNetwork: progress, completion and delivery

// Books `moved` bytes to the flow's current bottleneck (for its record).
void FlowNetwork::note_moved(Flow& f, double moved) {
  if (!f.on_record || f.bottleneck < 0 || moved <= 0.0) return;
  for (auto& [link, total] : f.moved_by)
    if (link == f.bottleneck) {
      total += moved;
      return;
    }
  f.moved_by.emplace_back(f.bottleneck, moved);
}

// Moves the flow's bytes at its rate from f.updated to now.
void FlowNetwork::advance_flow(Flow& f, Time now) {
  if (now <= f.updated) return;
  const double moved = std::min(f.remaining, f.rate * seconds_of(now - f.updated));
  f.remaining -= moved;
  f.updated = now;
  note_moved(f, moved);
}

bool FlowNetwork::due_valid(const Due& d) const {
  const Flow& f = flows_[d.slot];
  return f.id == d.id && f.state == State::Transferring && f.finish == d.finish;
}

namespace {
// Min-heap order on (finish, id) for std::push_heap/pop_heap.
struct DueLater {
  template <class D>
  bool operator()(const D& a, const D& b) const {
    if (a.finish != b.finish) return a.finish > b.finish;
    return a.id > b.id;
  }
};
}  // namespace

void FlowNetwork::push_due(std::uint32_t slot) {
  due_.push_back(Due{flows_[slot].finish, flows_[slot].id, slot});
  std::push_heap(due_.begin(), due_.end(), DueLater{});
}

// Points the single completion event at the earliest valid finish time.
void FlowNetwork::schedule_completion() {
  if (due_.size() > 2 * transferring_ + 1024) {  // drop stale entries
    due_.erase(std::remove_if(due_.begin(), due_.end(), [this](const Due& d) { return !due_valid(d); }),
               due_.end());
    std::make_heap(due_.begin(), due_.end(), DueLater{});
  }
  while (!due_.empty() && !due_valid(due_.front())) {
    std::pop_heap(due_.begin(), due_.end(), DueLater{});
    due_.pop_back();
  }
  const Time next = due_.empty() ? Time::max() : due_.front().finish;
  if (next == completion_at_ && completion_.pending()) return;
  completion_.cancel();
  completion_at_ = next;
  if (next != Time::max()) completion_ = engine_.schedule_at(next, [this] { on_completion(); });
}

void FlowNetwork::on_completion() {
  ++stats_.events;
  const Time now = engine_.now();
  completion_at_ = Time::max();
  // Every flow whose rounded-up finish time has come is done; any bytes left
  // are double-rounding residue and are credited to its links.
  std::vector<std::pair<std::uint64_t, std::uint32_t>> done;  // (id, slot)
  while (!due_.empty() && due_.front().finish <= now) {
    const Due d = due_.front();
    std::pop_heap(due_.begin(), due_.end(), DueLater{});
    due_.pop_back();
    if (!due_valid(d)) continue;
    flows_[d.slot].state = State::Done;  // a duplicate entry is now stale
    done.emplace_back(d.id, d.slot);
  }
  std::sort(done.begin(), done.end());
  for (const auto& [id, slot] : done) finish_flow(slot, now);
  if (!done.empty()) request_resolve();
  schedule_completion();
  // Callbacks run last, in flow-id order, with the network consistent; they
  // may start new flows (which activate from their own events).
  for (const auto& [id, slot] : done) deliver(slot, now);
}

// Takes a finished flow off its links. The links' lazy totals count the
// flow at its rate up to now; the difference to what it really had left is
// credited here, so each link gets exactly weight x bytes from the flow.
void FlowNetwork::finish_flow(std::uint32_t slot, Time now) {
  Flow& f = flows_[slot];
  const double at_rate = f.rate * seconds_of(now - f.updated);
  const double left = f.remaining;
  note_moved(f, left);
  f.remaining = 0.0;
  f.updated = now;
  for (const WeightedHop& h : f.route) lstate_[h.link].carried += h.weight * (left - at_rate);
  unlink_flow(slot);
  --transferring_;
}

// Runs a finished flow's callback and frees its slot.
void FlowNetwork::deliver(std::uint32_t slot, Time now) {
  Flow& f = flows_[slot];
  std::function<void()> on_done = std::move(f.on_done);
  std::function<void(const FlowRecord&)> on_record = std::move(f.on_record);
  FlowRecord rec{f.id, f.start, now, ByteCount(f.bytes), -1};
  double best = 0.0;
  for (const auto& [link, moved] : f.moved_by)
    if (moved > best) {
      best = moved;
      rec.bottleneck = link;
    }
  f.state = State::Free;
  f.on_done = nullptr;
  f.on_record = nullptr;
  free_slots_.push_back(slot);
  if (on_done) on_done();
  if (on_record) on_record(rec);
}

// ---------------------------------------------------------------------------
// FlowNetwork: re-solving the changed components

void FlowNetwork::request_resolve() {
  // Batch all set changes of one instant into a single solve that runs after
  // the ordinary events of that instant.
  if (!resolve_event_.pending())
    resolve_event_ = engine_.schedule(Time::zero(), [this] { resolve(); }, kResolvePriority);
}

void FlowNetwork::resolve() {
  ++stats_.events;
  ++stats_.solves;
  const Time now = engine_.now();
  ++epoch_;
  // dirty_links_ may hold a link many times; the epoch mark skips repeats
  // and links already reached from an earlier seed.
  for (std::size_t k = 0; k < dirty_links_.size(); ++k) {
    const LinkIndex seed = dirty_links_[k];
    if (link_mark_[seed] == epoch_) continue;
    gather_component(seed);
    solve_component(now);
  }
  dirty_links_.clear();
  schedule_completion();
}

// Collects the links and transferring flows connected to `seed` (breadth
// first, through shared links) into comp_links_ and comp_flows_.
void FlowNetwork::gather_component(LinkIndex seed) {
  comp_links_.clear();
  comp_flows_.clear();
  link_mark_[seed] = epoch_;
  comp_links_.push_back(seed);
  for (std::size_t next = 0; next < comp_links_.size(); ++next) {
    for (const OnLink& on : link_flows_[comp_links_[next]]) {
      const std::uint32_t slot = on.slot;
      Flow& f = flows_[slot];
      if (f.mark == epoch_) continue;
      f.mark = epoch_;
      comp_flows_.push_back(slot);
      for (const WeightedHop& h : f.route) {
        if (link_mark_[h.link] == epoch_) continue;
        link_mark_[h.link] = epoch_;
        comp_links_.push_back(h.link);
      }
    }
  }
}

// Sorts comp_flows_ by (signature, id). Flows with
// equal (route, share) are interchangeable, so the solver sees a problem that
// depends only on the component's multiset of (route, share) whatever the
// flow ids, unless two different (route, share) share a 64-bit signature
// (then their order follows their ids and the memo simply misses).
// (comp_links_ is put in index order only for a fresh solve: a memo hit
// does not depend on the order of the links.)
void FlowNetwork::canonical_order() {
  // Sort contiguous (signature, id, slot) keys rather than chase slots.
  sort_keys_.clear();
  for (std::uint32_t slot : comp_flows_) sort_keys_.push_back(SortKey{flows_[slot].sig, flows_[slot].id, slot});
  std::sort(sort_keys_.begin(), sort_keys_.end(), [](const SortKey& x, const SortKey& y) {
    return x.sig != y.sig ? x.sig < y.sig : x.id < y.id;
  });
  for (std::size_t k = 0; k < sort_keys_.size(); ++k) comp_flows_[k] = sort_keys_[k].slot;
}

void FlowNetwork::solve_component(Time now) {
  // Bring the component's links and flows up to now at their old rates.
  // Links solved together share `since`: one division for a run of them.
  Time since = Time::max();
  double dt = 0.0;
  for (LinkIndex l : comp_links_) {
    LinkState& s = lstate_[l];
    if (s.since != since) {
      since = s.since;
      dt = seconds_of(now - since);
    }
    s.carried += s.rate * dt;
    s.since = now;
    s.rate = 0.0;
  }
  if (comp_flows_.empty()) return;  // links a finished flow left idle
  ++stats_.components_solved;
  for (std::uint32_t slot : comp_flows_) advance_flow(flows_[slot], now);
  if (comp_flows_.size() == 1) {
    solve_single(flows_[comp_flows_[0]], now);
    return;
  }
  canonical_order();

  Memo fresh;
  const Memo* m = nullptr;
  const std::uint64_t key = component_key();
  m = memo_find(key);
  if (m) {
    ++stats_.cache_hits;
  } else {
    ++stats_.solver_runs;
    fresh = solve_fresh();
    m = memo_store(key, std::move(fresh));
  }
  // The component's links are exactly m->links (the union of its routes).
  for (std::size_t j = 0; j < m->links.size(); ++j) lstate_[m->links[j]].rate = m->link_rates[j];
  for (std::size_t k = 0; k < comp_flows_.size(); ++k) {
    const std::uint32_t slot = comp_flows_[k];
    Flow& f = flows_[slot];
    f.rate = m->rates[k];
    f.bottleneck = m->bottlenecks[k];
    const Time finish = now + transfer_duration(f.remaining, f.rate);
    if (finish == f.finish) continue;
    f.finish = finish;
    push_due(slot);
  }
}

// A component of one flow, in closed form: what maxmin_rates computes for a
// single flow, operation for operation. Each link's load is weight x share
// (0 + that, exact); the level grows once, by the smallest capacity / load;
// the bottleneck is the first link (in index order, which is route order)
// whose ratio is within the solver's tie tolerance of it; the rate is share x
// level (0 + the increment). Each link then carries exactly weight x rate
// (0 + that). Bit for bit the solver's answer (checked by a test).
void FlowNetwork::solve_single(Flow& f, Time now) {
  ++stats_.single_flow;
  // Flows with equal (route, share) share the answer (cached by rid).
  std::pair<double, LinkIndex>* cached = f.rid >= rid_base_ ? &alone_[f.rid - rid_base_] : nullptr;
  if (cached && cached->first >= 0.0) {
    f.rate = cached->first;
    f.bottleneck = cached->second;
  } else {
    double delta = kInf;
    for (const WeightedHop& h : f.route) delta = std::min(delta, capacities_[h.link] / (h.weight * f.share));
    const double tie = delta * (1.0 + 1e-12);
    LinkIndex bottleneck = -1;
    for (const WeightedHop& h : f.route)
      if (capacities_[h.link] / (h.weight * f.share) <= tie) {
        bottleneck = h.link;
        break;
      }
    const double level = 0.0 + delta;
    f.rate = f.share * level;
    f.bottleneck = bottleneck;
    if (cached) *cached = {f.rate, f.bottleneck};
  }
  for (const WeightedHop& h : f.route) lstate_[h.link].rate = h.weight * f.rate;
  const Time finish = now + transfer_duration(f.remaining, f.rate);
  if (finish == f.finish) return;
  f.finish = finish;
  push_due(static_cast<std::uint32_t>(&f - flows_.data()));
}

namespace {
void fnv_mix(std::uint64_t& h, std::uint64_t v) {
  h ^= v;
  h *= 1099511628211ull;
}
}  // namespace

// FNV-1a over a flow's (share, hops): its place in the canonical order.
std::uint64_t FlowNetwork::flow_signature(const WeightedRoute& route, double share) {
  std::uint64_t h = 1469598103934665603ull;
  fnv_mix(h, std::bit_cast<std::uint64_t>(share));
  for (const WeightedHop& hop : route) {
    fnv_mix(h, static_cast<std::uint64_t>(hop.link));
    fnv_mix(h, std::bit_cast<std::uint64_t>(hop.weight));
  }
  return h;
}

// The interned id of (route, share): the id an equal (route, share) got
// before (since the table was last cleared), or a new one.
std::uint64_t FlowNetwork::intern(const WeightedRoute& route, double share, std::uint64_t sig) {
  auto it = interned_.find(sig);
  if (it != interned_.end())
    for (const Interned& x : it->second)
      if (x.share == share && x.route == route) return x.rid;
  if (interned_hops_ + route.size() > kMemoHops) {
    interned_.clear();
    interned_hops_ = 0;
    alone_.clear();
    rid_base_ = next_rid_;
  }
  interned_hops_ += route.size();
  const std::uint64_t rid = next_rid_++;
  interned_[sig].push_back(Interned{rid, route, share});
  alone_.emplace_back(-1.0, LinkIndex{-1});
  return rid;
}

// Memo key of the current component: FNV-1a over its flows' signatures in
// canonical order (equality is checked on the whole problem at a hit).
std::uint64_t FlowNetwork::component_key() const {
  std::uint64_t h = 1469598103934665603ull;
  for (std::uint32_t slot : comp_flows_) fnv_mix(h, flows_[slot].sig);
  fnv_mix(h, comp_flows_.size());
  return h;
}

// The cached solution of the current component, or nullptr. A hash match is
// confirmed by comparing the whole canonical problem (by interned ids: equal
// ids are equal routes and shares; capacities never change).
const FlowNetwork::Memo* FlowNetwork::memo_find(std::uint64_t key) const {
  auto it = std::lower_bound(memo_index_.begin(), memo_index_.end(), std::make_pair(key, std::uint32_t{0}));
  if (it == memo_index_.end() || it->first != key) return nullptr;
  const Memo& m = memo_[it->second];
  if (m.rids.size() != comp_flows_.size()) return nullptr;
  for (std::size_t k = 0; k < comp_flows_.size(); ++k)
    if (m.rids[k] != flows_[comp_flows_[k]].rid) return nullptr;  // equal rids: equal (route, share)
  return &m;
}

// Stores a solution (clearing the memo first when it is full) and returns it.
// A key already present (a hash collision) is replaced.
const FlowNetwork::Memo* FlowNetwork::memo_store(std::uint64_t key, Memo m) {
  if (memo_.size() >= kMemoEntries || memo_hops_ + m.hop_total > kMemoHops) {
    memo_.clear();
    memo_index_.clear();
    memo_hops_ = 0;
  }
  memo_hops_ += m.hop_total;
  auto it = std::lower_bound(memo_index_.begin(), memo_index_.end(), std::make_pair(key, std::uint32_t{0}));
  if (it != memo_index_.end() && it->first == key) {
    memo_[it->second] = std::move(m);
    return &memo_[it->second];
  }
  memo_index_.insert(it, std::make_pair(key, static_cast<std::uint32_t>(memo_.size())));
  memo_.push_back(std::move(m));
  return &memo_.back();
}

// Runs the solver on the current component, with its links renumbered
// 0..L_c-1 in index order; bottlenecks come back as global link indices.
FlowNetwork::Memo FlowNetwork::solve_fresh() {
  std::sort(comp_links_.begin(), comp_links_.end());
  std::vector<double> caps(comp_links_.size());
  for (std::size_t k = 0; k < comp_links_.size(); ++k) {
    caps[k] = capacities_[comp_links_[k]];
    link_mark_[comp_links_[k]] = static_cast<std::uint32_t>(k);  // reused as local index below
  }
  Memo m;
  std::vector<WeightedRoute> routes(comp_flows_.size());
  std::vector<double> shares(comp_flows_.size());
  for (std::size_t k = 0; k < comp_flows_.size(); ++k) {
    const Flow& f = flows_[comp_flows_[k]];
    m.rids.push_back(f.rid);
    m.hop_total += f.route.size();
    shares[k] = f.share;
    routes[k].reserve(f.route.size());
    for (const WeightedHop& h : f.route)
      routes[k].push_back(WeightedHop{static_cast<LinkIndex>(link_mark_[h.link]), h.weight});
  }
  SharingResult r = solver_(caps, routes, shares);
  m.rates = std::move(r.rates);
  m.bottlenecks = std::move(r.bottlenecks);
  // Link rates: 0 plus weight x rate of each crossing flow, in canonical
  // flow order (bit for bit what adding them hop by hop to a zeroed link
  // rate gives).
  link_acc_.assign(comp_links_.size(), 0.0);
  for (std::size_t k = 0; k < comp_flows_.size(); ++k)
    for (const WeightedHop& h : routes[k]) link_acc_[static_cast<std::size_t>(h.link)] += h.weight * m.rates[k];
  m.links = comp_links_;
  m.link_rates = link_acc_;
  for (LinkIndex l : comp_links_) link_mark_[l] = epoch_;
  for (LinkIndex& b : m.bottlenecks)
    if (b >= 0) b = comp_links_[b];
  return m;
}

}  // namespace trainsim::sim
