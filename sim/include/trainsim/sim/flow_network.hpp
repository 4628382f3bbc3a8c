#pragma once
// The flow network: a fluid model of bulk transfers sharing links.
//
// Vocabulary (SimGrid's): a link is a *constraint* with a capacity in bytes/s;
// a flow is a *variable* with a route (the links it crosses) and a number of
// bytes still to move. A bandwidth-sharing *solver* maps (capacities, routes)
// to one rate per flow; solvers are plain functions looked up by name, so a
// new sharing model is one more row in the table in flow_network.cpp.
//
// What is modelled
//  * A flow first waits the sum of the latencies of the links on its route
//    (propagation, switching, software start-up as calibrated into the link);
//    it uses no bandwidth while it waits. Then it transfers its bytes at the
//    rate the solver gives it, and on_done() fires when the last byte lands.
//  * "maxmin" (the only solver so far) is max-min fairness by progressive
//    filling: all unfixed flows grow at the same rate until some link is
//    full; the flows crossing a full link are fixed at that level; repeat.
//    Every flow ends bottlenecked on at least one saturated link, and no flow
//    can gain without taking from one that has no more than it. This is the
//    steady state that TCP-like and DCQCN-like congestion control aim for on
//    long flows (SimGrid's LMM model with all weights 1).
//  * Rates are piecewise constant. Whenever the set of transferring flows
//    changes (a flow ends its latency phase, or finishes), every flow's
//    remaining bytes are reduced by elapsed time x old rate, rates are
//    re-solved, and the single "next completion" event is rescheduled. The
//    network's whole contract with the engine is "when does the next flow
//    finish" and "advance by dt". Changes at one instant are batched into one
//    re-solve (an event at the same time, priority kResolvePriority).
//  * Event times are integer picoseconds; a completion time is rounded *up*,
//    so a flow never completes with bytes left (remaining < kDoneBytes, or a
//    flow whose rounded finish time has been reached, counts as done).
//  * An empty route is a local copy: infinite rate, no latency; the flow
//    finishes after 0 transfer time (on_done still runs from an event, never
//    from inside start_flow). Zero-byte flows finish after their latency.
//
// What it gets wrong (by design; see docs before trusting a number)
//  * No congestion-control dynamics: rates jump to the fair share instantly;
//    no slow start, no DCQCN rate ramps, no queue build-up or RTT inflation.
//  * No incast, no PFC pauses or head-of-line blocking, no packet drops or
//    retransmits, no ECMP hash collisions unless the caller's routes say so.
//  * No packet-level effects: headers, MTU, per-packet overheads and
//    pipelining across hops are folded into the capacity and the latency.
//  * Small messages are priced only as latency + bytes / rate; protocol
//    handshakes (rendezvous, LL/LL128 modes in NCCL) must be calibrated into
//    link latency or capacity by the caller.
//  * Max-min is not proportional fairness and not what a real fabric does
//    under heavy multi-bottleneck contention; it is a common, explainable
//    approximation (Bertsekas & Gallager, "Data Networks", sec. 6.5.2).
//
// Complexity: one max-min solve over F transferring flows and L links costs
// O(F * (L + R)) in the worst case, R the total route length (each filling
// round fixes at least one flow and scans every link and route once); usually
// a handful of rounds suffice. Advancing time is O(R). A flow start or finish
// therefore costs one solve; n flows that start at the same instant cost one
// solve, not n. Memory is O(F + L).
//
// Determinism: flows are kept in id order (std::map), solvers iterate links
// and flows by index, and ties are broken by index; a run is reproducible bit
// for bit.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "trainsim/common/units.hpp"
#include "trainsim/sim/engine.hpp"
#include "trainsim/sim/link.hpp"

namespace trainsim::sim {

// A remaining amount of bytes below this counts as transferred.
inline constexpr double kDoneBytes = 1e-6;

// Max-min fair rates (bytes/s), one per route, by progressive filling.
// capacities_Bps[l] is link l's capacity (>= 0). A link listed twice in one
// route is crossed twice and so charged twice. An empty route is a local copy
// and gets rate +infinity. Throws std::invalid_argument on a link index out of
// range or a negative/non-finite capacity.
std::vector<double> maxmin_rates(const std::vector<double>& capacities_Bps,
                                 const std::vector<Route>& routes);

// A bandwidth-sharing solver: (capacities, routes) -> rate per route.
using SharingSolver = std::vector<double> (*)(const std::vector<double>& capacities_Bps,
                                              const std::vector<Route>& routes);

// The solver registered under `name`; std::invalid_argument naming the known
// solvers when there is none.
SharingSolver find_solver(std::string_view name);
// Names of the registered solvers, in registration order.
std::vector<std::string> solver_names();

// Time to move `bytes` at `rate_Bps`, rounded up to the next picosecond; zero
// when bytes < kDoneBytes or the rate is infinite. std::overflow_error when
// the rate is zero or the time does not fit in Time.
Time transfer_duration(double bytes, double rate_Bps);

// Sum of the latencies of the route's links.
Time route_latency(const std::vector<Link>& links, const Route& route);

class FlowNetwork {
 public:
  // Priority of the batched re-solve event: after ordinary (priority 0)
  // events at the same instant, so flows started together share one solve.
  static constexpr int kResolvePriority = 1;

  // `engine` must outlive the network; the network cancels its own pending
  // events when destroyed. Unknown solver -> std::invalid_argument.
  explicit FlowNetwork(Engine& engine, std::string solver = "maxmin");
  ~FlowNetwork();
  FlowNetwork(const FlowNetwork&) = delete;
  FlowNetwork& operator=(const FlowNetwork&) = delete;

  // Adds a link; capacity must be > 0 and finite, latency >= 0
  // (std::invalid_argument otherwise).
  LinkIndex add_link(Link link);
  const Link& link(LinkIndex i) const;
  std::size_t link_count() const { return links_.size(); }
  const std::vector<Link>& links() const { return links_; }

  // Starts a flow of `bytes` (>= 0, finite) along `route` now; `on_done` (may
  // be empty) runs from an engine event when the flow has finished. Returns
  // the flow id (increasing from 0). Throws std::invalid_argument on a bad
  // link index or byte count.
  std::uint64_t start_flow(Route route, ByteCount bytes, std::function<void()> on_done);

  // Flows started and not yet finished (waiting out latency or transferring).
  std::size_t active_flows() const { return waiting_.size() + transferring_.size(); }
  // Flows past their latency phase and moving bytes.
  std::size_t transferring_flows() const { return transferring_.size(); }
  // Total bytes that crossed link i so far (as of engine.now()); a flow that
  // crosses a link twice counts twice.
  ByteCount bytes_carried(LinkIndex i) const;

  Engine& engine() const { return engine_; }
  const std::string& solver_name() const { return solver_name_; }

 private:
  struct Flow {
    Route route;
    double bytes = 0.0;      // total size
    double remaining = 0.0;  // bytes still to move
    double rate = 0.0;       // bytes/s since last_update_
    Time finish = Time::max();  // predicted completion at the current rate
    std::function<void()> on_done;
  };
  struct Waiting {
    Flow flow;
    EventHandle activation;
  };

  void check_link(LinkIndex i, const char* what) const;
  void activate(std::uint64_t id);
  void on_completion();
  void request_resolve();
  void resolve();
  void advance_to(Time t);

  Engine& engine_;
  std::string solver_name_;
  SharingSolver solver_;
  std::vector<Link> links_;
  std::vector<double> capacities_;  // links_[i].capacity in bytes/s
  std::vector<double> carried_;     // bytes moved per link up to last_update_
  std::map<std::uint64_t, Waiting> waiting_;    // in latency phase, by id
  std::map<std::uint64_t, Flow> transferring_;  // moving bytes, by id
  std::uint64_t next_id_ = 0;
  Time last_update_ = Time::zero();
  EventHandle completion_;
  EventHandle resolve_event_;
};

}  // namespace trainsim::sim
