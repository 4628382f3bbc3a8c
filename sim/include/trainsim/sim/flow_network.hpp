#pragma once
// The flow network: a fluid model of bulk transfers sharing links.
//
// Vocabulary (SimGrid's): a link is a *constraint* with a capacity in bytes/s;
// a flow is a *variable* with a route (the links it crosses) and a number of
// bytes still to move. A bandwidth-sharing *solver* maps (capacities, routes,
// shares) to one rate per flow; solvers are plain functions looked up by name,
// so a new sharing model is one more row in the table in flow_network.cpp.
//
// What is modelled
//  * A flow first waits out a latency (by default the sum of the latencies of
//    its route's links: propagation, switching, software start-up as
//    calibrated into the link); it uses no bandwidth while it waits. Then it
//    transfers its bytes at the rate the solver gives it, and on_done() fires
//    when the last byte lands.
//  * Bundled flows. A flow may stand for several transfers that move together
//    (one collective's traffic): its route is weighted, each flow-byte putting
//    `weight` bytes on a link, and it has a `share` (>= 1), its weight in the
//    fairness. A plain Route is the case weight 1 per hop (a link listed twice:
//    weight 2) and share 1.
//  * "maxmin" (the only solver so far) is weighted max-min fairness by
//    progressive filling: a common level grows; flow f's rate is share_f x
//    level; link l consumes sum_f weight_fl x share_f per unit of level. When
//    a link is full, the flows crossing it are fixed; repeat. Every flow ends
//    bottlenecked on a saturated link (reported per flow), and no flow can
//    gain without taking from one that has no more than it per unit of share.
//    This is the steady state that TCP-like and DCQCN-like congestion control
//    aim for on long flows (SimGrid's LMM model with weights).
//  * Rates are piecewise constant and change only when the set of
//    transferring flows changes (a flow ends its latency phase, or finishes).
//    Changes at one instant are batched into one re-solve (an event at the
//    same time, priority kResolvePriority).
//  * Components. Flows that share a link, directly or through other flows,
//    form a connected component; max-min rates of one component do not depend
//    on any other. A re-solve visits only the components that contain a link
//    of a flow that started or finished since the last one; every other flow
//    keeps its rate and predicted finish time untouched. Flows and links are
//    advanced lazily (bytes left at the time of their last rate change), so
//    neither an event nor a re-solve touches untouched components.
//  * Memo. A component's rates depend only on the multiset of its flows'
//    (weighted route, share) and the link capacities, which never change.
//    Each flow carries a 64-bit signature of its (route, share); a component
//    is put in canonical order (by signature, then id) and cached under a
//    hash of its signatures, checked for equality of the whole problem on a
//    hit; the cache is bounded (cleared when it would hold more than
//    kMemoEntries solutions or kMemoHops hops). A repeated transfer phase
//    (every identical all-to-all of a training step) costs a sort, a hash
//    and a compare instead of a solve. Solving always runs in canonical
//    order, so a hit returns bit for bit what a fresh solve would. (Two
//    different flows with equal signatures are ordered by id; the memo then
//    misses more often, and nothing else changes.)
//    The compare is O(F_c): each flow's (route, share) is interned when it
//    starts (an id that equal routes and shares share, never reused); an
//    entry also holds its links' rates (summed in canonical order, as hop by
//    hop), so a hit sets them in O(L_c) and the links are sorted only for
//    a fresh solve.
//  * A component of one flow is set in closed form, skipping order and memo:
//    the solver's arithmetic for one flow (level = smallest capacity /
//    (weight x share); bottleneck the first link within the tie tolerance),
//    bit for bit its answer (checked by a test), cached per interned route.
//  * Solving per component adds the level increments of one component
//    only; a global solve over several components adds them in another
//    order, so rates can differ from a global solve in the last bits
//    (relative 1e-12; checked by a test).
//  * Event times are integer picoseconds; a completion time is rounded *up*,
//    so a flow never completes with bytes left; a flow completes when its
//    rounded finish time has been reached (bytes left then are rounding
//    residue and are credited to its links).
//  * An empty route is a local copy: infinite rate, no latency; the flow
//    finishes after 0 transfer time (on_done still runs from an event, never
//    from inside start_flow). Zero-byte flows finish after their latency.
//  * Each finished flow can report a FlowRecord: start and end time, and the
//    bottleneck link over which it moved the most bytes (the saturated link
//    that fixed its rate, per rate period).
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
//  * A bundle moves its transfers in lockstep: all of them at the same rate
//    and finishing together. Real transfers of a collective on lightly loaded
//    links would finish earlier than those on its bottleneck; a bundle hides
//    that skew (split it into several bundles where it matters).
//  * Max-min is not proportional fairness and not what a real fabric does
//    under heavy multi-bottleneck contention; it is a common, explainable
//    approximation (Bertsekas & Gallager, "Data Networks", sec. 6.5.2).
//
// Complexity: a re-solve costs O(F_c x (L_c + R_c)) per changed component
// (F_c flows, L_c links, R_c total route length of that component; each
// filling round fixes at least one flow), plus O(F_c log F_c) to put it in
// canonical order; a memo hit costs O(R_c + F_c log F_c). Untouched
// components cost nothing. A flow start or finish costs O(log F) in the
// completion queue. Memory is O(F + L) plus the bounded memo. Caveat: on a
// fabric where all traffic crosses shared spine links, every transferring
// flow is in one component and each change re-solves all of them (as the
// old global solve did); there, bundling a collective's transfers into few
// flows is what keeps the cost down.
//
// Determinism: no iteration over an unordered container; components are
// visited in the order their links became dirty, solved in canonical order,
// and flows finishing at one instant run their callbacks in flow-id order; a
// run is reproducible bit for bit.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "trainsim/common/units.hpp"
#include "trainsim/sim/engine.hpp"
#include "trainsim/sim/link.hpp"

namespace trainsim::sim {

// A remaining amount of bytes below this counts as transferred.
inline constexpr double kDoneBytes = 1e-6;

// Rates and bottlenecks of a sharing problem, one per flow.
struct SharingResult {
  std::vector<double> rates;           // flow-bytes/s; +infinity for a local copy
  std::vector<LinkIndex> bottlenecks;  // saturated link that fixed the rate; -1 for a local copy
};

// Weighted max-min fair rates by progressive filling. capacities_Bps[l] is
// link l's capacity (>= 0, finite); flow f crosses routes[f] (weights > 0,
// finite; a link listed twice is charged twice) with shares[f] (>= 1, finite).
// An empty route is a local copy. Throws std::invalid_argument on a link
// index out of range, a bad capacity, weight or share, or sizes that differ.
SharingResult maxmin_rates(const std::vector<double>& capacities_Bps,
                           const std::vector<WeightedRoute>& routes, const std::vector<double>& shares);

// Max-min fair rates (bytes/s), one per plain route (weight 1 per hop,
// share 1): maxmin_rates(capacities, weighted routes, shares).rates.
std::vector<double> maxmin_rates(const std::vector<double>& capacities_Bps,
                                 const std::vector<Route>& routes);

// A bandwidth-sharing solver: (capacities, weighted routes, shares) ->
// rate and bottleneck per flow.
using SharingSolver = SharingResult (*)(const std::vector<double>& capacities_Bps,
                                        const std::vector<WeightedRoute>& routes,
                                        const std::vector<double>& shares);

// The same route with weight 1 per hop (hops in route order).
WeightedRoute unit_weights(const Route& route);

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

// What a finished flow did: when it started (start_flow was called) and
// ended (its last byte landed), its size, and the link over which it moved
// the most bytes while that link fixed its rate (-1 for a local copy or a
// flow that moved no bytes over links).
struct FlowRecord {
  std::uint64_t id = 0;
  Time start{};
  Time end{};
  ByteCount bytes{};
  LinkIndex bottleneck = -1;
};

// Work counters of a FlowNetwork.
struct FlowNetworkStats {
  std::uint64_t events = 0;             // engine events the network ran
  std::uint64_t flows_started = 0;
  std::uint64_t solves = 0;             // batched re-solves
  std::uint64_t components_solved = 0;  // components whose rates were set (solver or memo)
  std::uint64_t solver_runs = 0;        // components handed to the solver
  std::uint64_t cache_hits = 0;         // components answered by the memo
  std::uint64_t single_flow = 0;        // one-flow components set in closed form (no solver, no memo)
};

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
  // The same, reporting the flow's FlowRecord to `on_done`.
  std::uint64_t start_flow(Route route, ByteCount bytes, std::function<void(const FlowRecord&)> on_done);
  std::uint64_t start_flow(Route route, ByteCount bytes, std::nullptr_t);

  // Starts a bundled flow: `bytes` flow-bytes, each putting hop.weight bytes
  // on hop.link (weights > 0, finite; a link listed twice adds its weights),
  // with weight `share` (>= 1, finite) in the fairness. `latency` (>= 0)
  // defaults to the sum of the latencies of its distinct links. Throws
  // std::invalid_argument on bad input.
  std::uint64_t start_flow(WeightedRoute route, ByteCount bytes, double share,
                           std::function<void()> on_done, std::optional<Time> latency = std::nullopt);
  std::uint64_t start_flow(WeightedRoute route, ByteCount bytes, double share,
                           std::function<void(const FlowRecord&)> on_done,
                           std::optional<Time> latency = std::nullopt);
  std::uint64_t start_flow(WeightedRoute route, ByteCount bytes, double share, std::nullptr_t,
                           std::optional<Time> latency = std::nullopt);

  // Flows started and not yet finished (waiting out latency or transferring).
  std::size_t active_flows() const { return waiting_ + transferring_; }
  // Flows past their latency phase and moving bytes.
  std::size_t transferring_flows() const { return transferring_; }
  // Total bytes that crossed link i so far (as of engine.now()); a flow that
  // crosses a link twice counts twice, a bundled flow weight x its bytes.
  ByteCount bytes_carried(LinkIndex i) const;

  // For tests and diagnostics (O(flows) each): current rate (flow-bytes/s)
  // of a transferring flow, 0 while it waits for the re-solve of its instant;
  // std::invalid_argument when `id` is not transferring.
  double flow_rate(std::uint64_t id) const;
  // Predicted completion time of a transferring flow (Time::max() until it
  // has a rate); std::invalid_argument when `id` is not transferring.
  Time flow_finish(std::uint64_t id) const;

  const FlowNetworkStats& stats() const { return stats_; }
  Engine& engine() const { return engine_; }
  const std::string& solver_name() const { return solver_name_; }

  // Memo bounds: the cache is cleared when it would exceed either.
  static constexpr std::size_t kMemoEntries = 4096;
  static constexpr std::size_t kMemoHops = std::size_t{1} << 22;

 private:
  enum class State : std::uint8_t { Free, Waiting, Transferring, Done };
  struct Flow {
    std::uint64_t id = 0;
    State state = State::Free;
    std::uint32_t mark = 0;               // component-search epoch
    WeightedRoute route;                  // sorted by link, duplicates merged
    std::vector<std::uint32_t> pos;       // pos[k]: index in link_flows_[route[k].link]
    double share = 1.0;
    std::uint64_t sig = 0;                // hash of (route, share): canonical order
    std::uint64_t rid = 0;                // interned (route, share): equal rid => equal (route, share)
    double bytes = 0.0;                   // total size
    double remaining = 0.0;               // bytes still to move as of `updated`
    double rate = 0.0;                    // flow-bytes/s since `updated`
    Time start{};
    Time updated{};
    Time finish = Time::max();            // predicted completion at the current rate
    LinkIndex bottleneck = -1;            // link that fixed the current rate
    std::vector<std::pair<LinkIndex, double>> moved_by;  // bytes per bottleneck (records only)
    std::function<void()> on_done;
    std::function<void(const FlowRecord&)> on_record;
    EventHandle activation;
  };
  struct Due {  // a completion-queue entry; stale when the flow's finish changed
    Time finish;
    std::uint64_t id;
    std::uint32_t slot;
  };
  struct Memo {
    std::vector<std::uint64_t> rids;  // the flows' interned (route, share), canonical order
    std::size_t hop_total = 0;        // hops of all its routes (for the memo bound)
    std::vector<double> rates;
    std::vector<LinkIndex> bottlenecks;
    // The component's links (index order) and the rate each carries: the sum
    // of weight x rate over its flows, added in canonical order (as applying
    // the rates hop by hop would), so a hit sets link rates in O(L_c).
    std::vector<LinkIndex> links;
    std::vector<double> link_rates;
  };
  struct OnLink {  // a transferring flow on a link: its slot and the hop index in its route
    std::uint32_t slot;
    std::uint32_t hop;
  };

  void check_link(LinkIndex i, const char* what) const;
  std::uint64_t add_flow(WeightedRoute route, double bytes, double share, Time latency,
                         std::function<void()> on_done, std::function<void(const FlowRecord&)> on_record);
  std::uint64_t add_weighted(WeightedRoute route, double bytes, double share, std::optional<Time> latency,
                             std::function<void()> on_done, std::function<void(const FlowRecord&)> on_record);
  std::uint32_t new_slot();
  const Flow& transferring_flow(std::uint64_t id, const char* what) const;
  void activate(std::uint32_t slot);
  void link_flow(std::uint32_t slot);
  void unlink_flow(std::uint32_t slot);
  void note_moved(Flow& f, double moved);
  void advance_flow(Flow& f, Time now);
  void on_completion();
  void finish_flow(std::uint32_t slot, Time now);
  void deliver(std::uint32_t slot, Time now);
  void request_resolve();
  void resolve();
  void gather_component(LinkIndex seed);
  void solve_component(Time now);
  void canonical_order();
  void solve_single(Flow& f, Time now);
  static std::uint64_t flow_signature(const WeightedRoute& route, double share);
  std::uint64_t intern(const WeightedRoute& route, double share, std::uint64_t sig);
  std::uint64_t component_key() const;
  const Memo* memo_find(std::uint64_t key) const;
  const Memo* memo_store(std::uint64_t key, Memo m);
  Memo solve_fresh();
  bool due_valid(const Due& d) const;
  void push_due(std::uint32_t slot);
  void schedule_completion();

  Engine& engine_;
  std::string solver_name_;
  SharingSolver solver_;
  std::vector<Link> links_;
  std::vector<double> capacities_;    // links_[i].capacity in bytes/s
  struct LinkState {  // together: a component's links are advanced in one pass
    double carried = 0.0;  // bytes moved up to `since`
    double rate = 0.0;     // bytes/s on the link since `since`
    Time since{};
  };
  std::vector<LinkState> lstate_;
  std::vector<std::vector<OnLink>> link_flows_;         // transferring flows per link
  std::vector<std::uint32_t> link_mark_;                // component-search epoch per link
  std::vector<Flow> flows_;                             // slot map
  std::vector<std::uint32_t> free_slots_;
  std::size_t waiting_ = 0;
  std::size_t transferring_ = 0;
  std::uint64_t next_id_ = 0;
  std::vector<Due> due_;              // min-heap on (finish, id), lazily invalidated
  std::vector<LinkIndex> dirty_links_;
  std::uint32_t epoch_ = 0;
  // Scratch of the current component (reused between solves).
  std::vector<LinkIndex> comp_links_;
  std::vector<std::uint32_t> comp_flows_;
  struct SortKey {
    std::uint64_t sig;
    std::uint64_t id;
    std::uint32_t slot;
  };
  std::vector<SortKey> sort_keys_;
  std::vector<double> link_acc_;  // solve_fresh scratch: per local link
  // Memo: key -> index in memo_; cleared wholesale when full.
  std::vector<std::pair<std::uint64_t, std::uint32_t>> memo_index_;  // sorted by key
  std::vector<Memo> memo_;
  std::size_t memo_hops_ = 0;
  // Interned (route, share): sig -> (rid, route, share). An rid is never
  // reused, so the memo can compare rids instead of routes; the table is
  // cleared when it would hold more than kMemoHops hops (flows interned
  // after that get new rids: the memo may miss, never answer wrongly).
  struct Interned {
    std::uint64_t rid;
    WeightedRoute route;
    double share;
  };
  std::unordered_map<std::uint64_t, std::vector<Interned>> interned_;
  std::size_t interned_hops_ = 0;
  std::uint64_t next_rid_ = 0;
  std::uint64_t rid_base_ = 0;  // first rid since the table was last cleared
  // Closed-form rate and bottleneck of a flow alone, by rid - rid_base_
  // (rate < 0: not computed yet); cleared with the table.
  std::vector<std::pair<double, LinkIndex>> alone_;
  FlowNetworkStats stats_;
  Time completion_at_ = Time::max();
  EventHandle completion_;
  EventHandle resolve_event_;
};

}  // namespace trainsim::sim
