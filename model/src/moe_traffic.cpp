#include "trainsim/model/moe_traffic.hpp"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <map>
#include <numeric>
#include <set>
#include <stdexcept>
#include <utility>

#include <fmt/format.h>

#include "trainsim/common/embedded_data.hpp"
#include "trainsim/common/json_reader.hpp"
#include "trainsim/model/accounting.hpp"
#include "trainsim/sim/engine.hpp"
#include "trainsim/sim/flow_network.hpp"

namespace trainsim::model {

namespace {

std::size_t z(std::int64_t i) { return static_cast<std::size_t>(i); }

// C(a, k) / C(b, k) for 0 <= a <= b: the probability that k items drawn
// without replacement from b all fall in a given subset of a.
double choose_ratio(int a, int b, int k) {
  if (a < k) return 0.0;
  double r = 1.0;
  for (int i = 0; i < k; ++i) r *= static_cast<double>(a - i) / static_cast<double>(b - i);
  return r;
}

int ep_size(const MoeTrafficParams& p) { return static_cast<int>(p.ep_group.size()); }

void validate(const hw::Topology& topo, const MoeTrafficParams& p) {
  const int ep = ep_size(p);
  if (ep < 1) throw std::invalid_argument("moe traffic: empty EP group");
  std::set<int> seen;
  for (int g : p.ep_group) {
    if (g < 0 || g >= topo.gpu_count())
      throw std::invalid_argument(fmt::format("moe traffic: GPU {} outside the cluster of {}", g, topo.gpu_count()));
    if (!seen.insert(g).second) throw std::invalid_argument(fmt::format("moe traffic: GPU {} twice in the EP group", g));
  }
  if (p.routed_experts < 1 || p.routed_experts % ep != 0)
    throw std::invalid_argument(fmt::format("moe traffic: ep={} does not divide routed_experts={}", ep, p.routed_experts));
  if (p.top_k < 1 || p.top_k > p.routed_experts)
    throw std::invalid_argument(fmt::format("moe traffic: top_k={} outside [1, {}]", p.top_k, p.routed_experts));
  if (!(p.tokens_per_gpu >= 0) || !(p.dispatch_bytes_per_token >= 0) || !(p.combine_bytes_per_token >= 0) ||
      p.max_nodes_per_token < 0)
    throw std::invalid_argument("moe traffic: negative tokens, bytes or node limit");
  const RoutingModel& r = p.routing;
  if (r.kind == RoutingKind::Balanced && !r.replicas.empty())
    throw std::invalid_argument("moe traffic: expert replicas need a skewed routing model (balanced has no hot experts)");
  if (r.kind == RoutingKind::Histogram && static_cast<int>(r.expert_load.size()) != p.routed_experts)
    throw std::invalid_argument(fmt::format("moe traffic: histogram has {} loads for {} experts", r.expert_load.size(),
                                            p.routed_experts));
  if (r.kind == RoutingKind::Zipf && !(r.zipf_exponent >= 0 && std::isfinite(r.zipf_exponent)))
    throw std::invalid_argument("moe traffic: zipf exponent must be finite and >= 0");
  if (r.kind != RoutingKind::Balanced && r.max_sampled_tokens < 1)
    throw std::invalid_argument("moe traffic: max_sampled_tokens must be >= 1");
  for (const ExpertReplica& x : r.replicas)
    if (x.expert < 0 || x.expert >= p.routed_experts || x.ep_rank < 0 || x.ep_rank >= ep)
      throw std::invalid_argument(fmt::format("moe traffic: replica of expert {} on rank {} out of range", x.expert, x.ep_rank));
}

// Group nodes in order of first appearance, and each rank's node index.
RoutingCounts empty_counts(const hw::Topology& topo, const MoeTrafficParams& p) {
  RoutingCounts c;
  c.ep = ep_size(p);
  for (int g : p.ep_group) {
    const int node = topo.node_of(g);
    auto it = std::find(c.node_ids.begin(), c.node_ids.end(), node);
    c.node_of_rank.push_back(static_cast<int>(it - c.node_ids.begin()));
    if (it == c.node_ids.end()) c.node_ids.push_back(node);
  }
  c.node_tokens.assign(z(c.ep) * z(c.nodes()), 0.0);
  c.rank_tokens.assign(z(c.ep) * z(c.ep), 0.0);
  c.expert_rows.assign(z(c.ep) * z(c.ep), 0.0);
  return c;
}

int effective_node_limit(int nodes, int max_nodes) {
  return (max_nodes <= 0 || max_nodes > nodes) ? nodes : max_nodes;
}

// Score-based node-limited top-k routing with uniform loads, in closed form.
// A token's expert scores are i.i.d.; the M' = min(M, N) nodes with the
// highest maximum score are chosen, then the top k experts on those nodes
// (DeepEP's benchmark routing; V3's gate ranks groups by the sum of their top
// two scores instead). Sorting all N*m experts by score gives a uniformly
// random sequence of node labels (m copies of each of N). Given the chosen
// set S, the selection is the first k items of the sequence restricted to S,
// a uniform arrangement of M' labels tilted by the chance that S really is
// chosen: with q the restricted position at which the last S label first
// appears, that is the chance that the first q S-items precede all b =
// (N-M')m others in a uniform merge, w(q) = C(a, q) / C(a + b, q), a = M'm.
// A dynamic programme over the restricted sequence tracks (labels seen j,
// items of a tagged node among the first k: c) and applies w at coverage.
// Within a node the chosen items are a uniform c-subset of its m experts, so
// a tagged rank of m_r experts is hit with 1 - C(m - m_r, c) / C(m, c).
// Every node is in S with probability M'/N. With M' = N (no limit) w = 1 and
// this is plain top-k: P(node) = 1 - C(Nm - m, k) / C(Nm, k).
struct HitProbabilities {
  double node = 0;  // a given node receives the token
  double rank = 0;  // a given rank (m_r experts of that node) receives it
};

class BalancedRouting {
 public:
  BalancedRouting(int nodes, int m, int m_r, int k, int max_nodes)
      : n_(nodes), m_(m), m_r_(m_r), k_(k), mm_(effective_node_limit(nodes, max_nodes)),
        a_(mm_ * m), b_((nodes - mm_) * m) {}

  HitProbabilities hits() const {
    std::vector<double> mass = after_first_k();
    const std::vector<double> tail = coverage_weight_after_k();
    double z = 0, node = 0, rank = 0;
    for (int j = 0; j <= mm_; ++j)
      for (int c = 0; c <= k_; ++c) {
        const double w = mass[at(j, c)] * (j == mm_ ? 1.0 : tail[z_(j)]);
        z += w;
        node += c > 0 ? w : 0.0;
        rank += w * (1.0 - choose_ratio(m_ - m_r_, m_, c));
      }
    const double pick = static_cast<double>(mm_) / n_;
    return {pick * node / z, pick * rank / z};
  }

 private:
  static std::size_t z_(int i) { return static_cast<std::size_t>(i); }
  std::size_t at(int j, int c) const { return z_(j) * z_(k_ + 1) + z_(c); }
  double w(int q) const { return choose_ratio(a_, a_ + b_, q); }  // tilt at coverage position q

  // Mass over (j, c) after k restricted items; w applied when j reaches M'.
  std::vector<double> after_first_k() const {
    std::vector<double> p(z_(mm_ + 1) * z_(k_ + 1), 0.0);
    p[at(0, 0)] = 1.0;
    for (int t = 0; t < k_; ++t) {
      std::vector<double> q(p.size(), 0.0);
      const double rem = a_ - t;
      for (int j = 0; j <= mm_; ++j)
        for (int c = 0; c <= std::min(t, k_); ++c) {
          const double v = p[at(j, c)];
          if (v == 0) continue;
          const bool seen = c > 0;
          const auto go = [&](int j2, int c2, double count) {
            if (count > 0) q[at(j2, c2)] += v * count / rem * (j2 == mm_ && j < mm_ ? w(t + 1) : 1.0);
          };
          go(j + (seen ? 0 : 1), c + 1, seen ? m_ - c : m_);                // tagged node
          go(j + 1, c, static_cast<double>(mm_ - j - (seen ? 0 : 1)) * m_);  // a new untagged node
          go(j, c, static_cast<double>(j - (seen ? 1 : 0)) * m_ - (t - c));  // a node already seen
        }
      p = std::move(q);
    }
    return p;
  }

  // E[w(coverage)] for j < M' labels seen after k items, by backward recursion.
  std::vector<double> coverage_weight_after_k() const {
    std::vector<double> next(z_(mm_ + 1), 0.0), cur(z_(mm_ + 1), 0.0);
    for (int t = a_ - 1; t >= k_; --t) {
      for (int j = 0; j < mm_; ++j) {
        const double p_new = static_cast<double>(mm_ - j) * m_ / (a_ - t);
        cur[z_(j)] = p_new * (j + 1 == mm_ ? w(t + 1) : next[z_(j + 1)]) + (1 - p_new) * next[z_(j)];
      }
      std::swap(cur, next);
    }
    return next;
  }

  int n_, m_, m_r_, k_, mm_, a_, b_;
};

// Balanced routing in expectation: identical for every source, layer and
// micro-batch. Expert rows on a rank: k / ep of the tokens (symmetry).
void fill_balanced(RoutingCounts& c, const MoeTrafficParams& p) {
  const int n_nodes = c.nodes(), ep = c.ep;
  if (ep % n_nodes != 0) throw std::invalid_argument("moe traffic: balanced routing needs the same number of EP ranks on every node");
  for (int r = 0; r < ep; ++r)
    if (c.node_of_rank[z(r)] != r / (ep / n_nodes))
      throw std::invalid_argument("moe traffic: balanced routing needs each node's EP ranks to be consecutive");
  const int e_rank = p.routed_experts / ep, e_node = e_rank * (ep / n_nodes);
  const int m = effective_node_limit(n_nodes, p.max_nodes_per_token);
  if (p.top_k > m * e_node)
    throw std::invalid_argument(fmt::format("moe traffic: top_k={} exceeds the {} experts on {} nodes", p.top_k, m * e_node, m));
  const HitProbabilities h = BalancedRouting(n_nodes, e_node, e_rank, p.top_k, p.max_nodes_per_token).hits();
  const double t = p.tokens_per_gpu, rows = static_cast<double>(p.top_k) / ep;
  for (int s = 0; s < ep; ++s) {
    for (int n = 0; n < n_nodes; ++n) c.node_tokens[z(s) * z(n_nodes) + z(n)] = t * h.node;
    for (int r = 0; r < ep; ++r) {
      c.rank_tokens[z(s) * z(ep) + z(r)] = t * h.rank;
      c.expert_rows[z(s) * z(ep) + z(r)] = t * rows;
    }
  }
}

// ---- counter-based RNG: every draw is a pure function of its key ----------

std::uint64_t mix64(std::uint64_t x) {  // SplitMix64 finaliser (Steele et al. 2014)
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

struct DrawKey {
  std::uint64_t seed, layer, micro_batch, stream;
};

// Uniform in (0, 1) for key + (a, b, c).
double uniform(const DrawKey& k, std::uint64_t a, std::uint64_t b = 0, std::uint64_t c = 0) {
  std::uint64_t h = mix64(k.seed);
  for (std::uint64_t v : {k.layer, k.micro_batch, k.stream, a, b, c}) h = mix64(h ^ v);
  return (static_cast<double>(h >> 11) + 0.5) * 0x1.0p-53;
}

// Gamma(alpha, 1) by Marsaglia & Tsang (2000); alpha < 1 via the boost
// Gamma(alpha) = Gamma(alpha + 1) * U^(1/alpha). Attempts are numbered so the
// draw stays a function of (key, expert).
double gamma_draw(const DrawKey& k, std::uint64_t expert, double alpha) {
  const double a = alpha < 1.0 ? alpha + 1.0 : alpha;
  const double d = a - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
  for (std::uint64_t attempt = 0;; ++attempt) {
    const double u1 = uniform(k, expert, attempt, 0), u2 = uniform(k, expert, attempt, 1);
    const double x = std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * 3.141592653589793 * u2);  // Box-Muller
    const double v = std::pow(1.0 + c * x, 3);
    if (v <= 0) continue;
    const double u = uniform(k, expert, attempt, 2);
    if (std::log(u) < 0.5 * x * x + d - d * v + d * std::log(v)) {
      const double g = d * v;
      return alpha < 1.0 ? g * std::pow(uniform(k, expert, attempt, 3), 1.0 / alpha) : g;
    }
  }
}

// Per-expert load of a skewed model for (seed, layer, micro-batch).
std::vector<double> expert_loads(const MoeTrafficParams& p) {
  const RoutingModel& r = p.routing;
  const auto e = z(p.routed_experts);
  const auto key = [&](std::uint64_t stream) {
    return DrawKey{r.seed, static_cast<std::uint64_t>(p.layer), static_cast<std::uint64_t>(p.micro_batch), stream};
  };
  std::vector<double> load(e, 0.0);
  if (r.kind == RoutingKind::Histogram) {
    load = r.expert_load;
  } else if (r.kind == RoutingKind::Zipf) {
    // A random ranking of the experts (sort by a uniform key), load r^-s.
    std::vector<std::pair<double, std::size_t>> order;
    for (std::size_t i = 0; i < e; ++i) order.emplace_back(uniform(key(1), i), i);
    std::sort(order.begin(), order.end());
    for (std::size_t rank = 0; rank < e; ++rank)
      load[order[rank].second] = std::pow(static_cast<double>(rank + 1), -r.zipf_exponent);
  } else {  // Dirichlet(alpha, ..., alpha) = normalised Gamma(alpha) draws
    if (!(r.dirichlet_alpha > 0)) throw std::invalid_argument("moe traffic: dirichlet alpha must be > 0");
    for (std::size_t i = 0; i < e; ++i) load[i] = gamma_draw(key(2), i, r.dirichlet_alpha);
  }
  for (double v : load)
    if (!(v >= 0) || !std::isfinite(v)) throw std::invalid_argument("moe traffic: expert loads must be finite and >= 0");
  if (std::accumulate(load.begin(), load.end(), 0.0) <= 0)
    throw std::invalid_argument("moe traffic: expert loads sum to zero");
  return load;
}

// Indices of the `count` largest keys (ties by index), keys of -inf skipped.
std::vector<int> top_indices(const std::vector<double>& keys, int count) {
  std::vector<int> idx;
  for (int i = 0; i < static_cast<int>(keys.size()); ++i)
    if (keys[z(i)] > -std::numeric_limits<double>::infinity()) idx.push_back(i);
  const auto n = std::min<std::size_t>(z(count), idx.size());
  std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(n), idx.end(), [&](int a, int b) {
    return keys[z(a)] != keys[z(b)] ? keys[z(a)] > keys[z(b)] : a < b;
  });
  idx.resize(n);
  return idx;
}

double gumbel_key(double weight, double u) {
  return weight > 0 ? std::log(weight) - std::log(-std::log(u)) : -std::numeric_limits<double>::infinity();
}

struct Placement {
  std::vector<std::vector<int>> copies;  // per expert: EP ranks holding it, home first
};

Placement placement(const MoeTrafficParams& p) {
  Placement pl;
  const int per_rank = p.routed_experts / ep_size(p);
  for (int e = 0; e < p.routed_experts; ++e) pl.copies.push_back({e / per_rank});
  for (const ExpertReplica& x : p.routing.replicas) {
    auto& c = pl.copies[z(x.expert)];
    if (std::find(c.begin(), c.end(), x.ep_rank) == c.end()) c.push_back(x.ep_rank);
  }
  return pl;
}

// The token's expert scores: log load + Gumbel noise. Taking the top k of
// these is sampling k experts without replacement with probability
// proportional to load (Gumbel-top-k, i.e. Plackett-Luce); with equal loads
// the scores are i.i.d., as in DeepEP's benchmark.
std::vector<double> expert_scores(const std::vector<double>& load, const DrawKey& key, int s, std::uint64_t token) {
  std::vector<double> score(load.size());
  for (std::size_t e = 0; e < load.size(); ++e) score[e] = gumbel_key(load[e], uniform(key, z(s), token, e));
  return score;
}

// Node-limited routing of one token on the scores: the M nodes whose best
// expert (home placement) scores highest, then the top k experts on them.
std::vector<int> route_token(const RoutingCounts& c, const MoeTrafficParams& p, std::vector<double> score) {
  const int per_rank = p.routed_experts / c.ep;
  const auto node_of_expert = [&](int e) { return c.node_of_rank[z(e / per_rank)]; };
  std::vector<double> node_score(z(c.nodes()), -std::numeric_limits<double>::infinity());
  for (int e = 0; e < p.routed_experts; ++e)
    node_score[z(node_of_expert(e))] = std::max(node_score[z(node_of_expert(e))], score[z(e)]);
  const auto chosen = top_indices(node_score, effective_node_limit(c.nodes(), p.max_nodes_per_token));
  for (int e = 0; e < p.routed_experts; ++e)
    if (std::find(chosen.begin(), chosen.end(), node_of_expert(e)) == chosen.end())
      score[z(e)] = -std::numeric_limits<double>::infinity();
  return top_indices(score, p.top_k);
}

// One sampled token of source rank s: adds its distinct nodes, distinct
// ranks and expert rows to the counts, x weight. A replicated expert's copy
// is drawn uniformly (tokens split evenly in expectation); a copy may sit on
// a node outside the M chosen ones, so replicas can raise the node count.
void sample_token(RoutingCounts& c, const MoeTrafficParams& p, const std::vector<double>& load,
                  const Placement& pl, const DrawKey& key, int s, std::uint64_t token, double weight) {
  std::vector<char> node_hit(z(c.nodes()), 0), rank_hit(z(c.ep), 0);
  const DrawKey copy_key{key.seed, key.layer, key.micro_batch, key.stream + 1};
  for (int e : route_token(c, p, expert_scores(load, key, s, token))) {
    const auto& copies = pl.copies[z(e)];
    const double u = uniform(copy_key, z(s), token, z(e));
    const int r = copies[std::min(copies.size() - 1, static_cast<std::size_t>(u * static_cast<double>(copies.size())))];
    c.expert_rows[z(s) * z(c.ep) + z(r)] += weight;
    rank_hit[z(r)] = 1;
    node_hit[z(c.node_of_rank[z(r)])] = 1;
  }
  for (int r = 0; r < c.ep; ++r) c.rank_tokens[z(s) * z(c.ep) + z(r)] += rank_hit[z(r)] * weight;
  for (int n = 0; n < c.nodes(); ++n) c.node_tokens[z(s) * z(c.nodes()) + z(n)] += node_hit[z(n)] * weight;
}

void fill_sampled(RoutingCounts& c, const MoeTrafficParams& p) {
  const std::vector<double> load = expert_loads(p);
  const Placement pl = placement(p);
  const auto sampled = static_cast<std::uint64_t>(
      std::min<double>(p.routing.max_sampled_tokens, std::ceil(p.tokens_per_gpu)));
  if (sampled == 0) return;
  const double weight = p.tokens_per_gpu / static_cast<double>(sampled);
  const DrawKey key{p.routing.seed, static_cast<std::uint64_t>(p.layer), static_cast<std::uint64_t>(p.micro_batch), 10};
  for (int s = 0; s < c.ep; ++s)
    for (std::uint64_t t = 0; t < sampled; ++t) sample_token(c, p, load, pl, key, s, t, weight);
}

// The GPU with `local_rank` on physical node `node`.
int gpu_on_node(const hw::Topology& topo, int node, int local_rank) {
  const int g = node * topo.gpus_per_node() + local_rank;
  if (topo.node_of(g) != node || topo.local_rank(g) != local_rank)
    throw std::logic_error("moe traffic: GPU numbering is not node-major");
  return g;
}

void push(std::vector<MoeTransfer>& out, int src, int dst, double bytes, MoeHop hop, int origin) {
  if (bytes > 0) out.push_back({.src_gpu = src, .dst_gpu = dst, .bytes = bytes, .hop = hop, .origin_gpu = origin});
}

// Transfers of source rank s's tokens towards group node n (reversed for combine).
void node_transfers(std::vector<MoeTransfer>& out, const hw::Topology& topo, const MoeTrafficParams& p,
                    const RoutingCounts& c, int s, int n, double bytes, bool combine) {
  const auto dir = [&](int a, int b, double v, MoeHop hop) {
    combine ? push(out, b, a, v, hop, p.ep_group[z(s)]) : push(out, a, b, v, hop, p.ep_group[z(s)]);
  };
  const int gs = p.ep_group[z(s)];
  const bool own = c.node_of_rank[z(s)] == n;
  const int proxy = own ? gs : gpu_on_node(topo, c.node_ids[z(n)], topo.local_rank(gs));
  if (!own) dir(gs, proxy, c.node_tokens[z(s) * z(c.nodes()) + z(n)] * bytes, MoeHop::InterNode);
  for (int r = 0; r < c.ep; ++r) {
    const int gr = p.ep_group[z(r)];
    if (c.node_of_rank[z(r)] != n || gr == proxy) continue;
    dir(proxy, gr, c.rank_tokens[z(s) * z(c.ep) + z(r)] * bytes, own ? MoeHop::IntraNode : MoeHop::Forward);
  }
}

bool is_nvlink(const hw::Topology& topo, sim::LinkIndex l) {
  return topo.vertex_kind(topo.link_tail(l)) == hw::VertexKind::NvSwitch ||
         topo.vertex_kind(topo.link_head(l)) == hw::VertexKind::NvSwitch;
}

// The InterNode transfer a Forward depends on (dispatch: origin -> forwarder)
// or that depends on it (combine: forwarder -> origin), by transfer index.
std::map<std::pair<int, int>, std::size_t> inter_node_index(const MoeTraffic& t) {
  std::map<std::pair<int, int>, std::size_t> idx;
  for (std::size_t i = 0; i < t.transfers.size(); ++i)
    if (t.transfers[i].hop == MoeHop::InterNode) idx[{t.transfers[i].src_gpu, t.transfers[i].dst_gpu}] = i;
  return idx;
}

// Completion times with causality: a dispatch forward ends no earlier than
// the IB copy it forwards; a combine IB copy no earlier than the rows it reduces.
void apply_causality(const MoeTraffic& t, std::vector<Time>& end) {
  const auto ib = inter_node_index(t);
  for (std::size_t i = 0; i < t.transfers.size(); ++i) {
    const MoeTransfer& x = t.transfers[i];
    if (x.hop != MoeHop::Forward) continue;
    if (t.phase == MoePhase::Dispatch) {
      end[i] = max(end[i], end[ib.at({x.origin_gpu, x.src_gpu})]);
    } else {
      const std::size_t j = ib.at({x.dst_gpu, x.origin_gpu});
      end[j] = max(end[j], end[i]);
    }
  }
}

double mean(const std::vector<double>& v) {
  return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

}  // namespace

const char* to_string(RoutingKind k) {
  switch (k) {
    case RoutingKind::Balanced: return "balanced";
    case RoutingKind::Zipf: return "zipf";
    case RoutingKind::Dirichlet: return "dirichlet";
    case RoutingKind::Histogram: return "histogram";
  }
  return "?";
}

const char* to_string(MoePhase p) { return p == MoePhase::Dispatch ? "dispatch" : "combine"; }

const char* to_string(MoeHop h) {
  switch (h) {
    case MoeHop::IntraNode: return "intra-node";
    case MoeHop::InterNode: return "inter-node";
    case MoeHop::Forward: return "forward";
  }
  return "?";
}

MoeTrafficParams moe_traffic_params(const Architecture& arch, std::vector<int> ep_group, int gpus_per_node,
                                    double tokens_per_gpu, Precision dispatch_precision) {
  if (!arch.moe) throw std::invalid_argument(fmt::format("moe traffic: {} has no MoE layers", arch.name));
  if (gpus_per_node < 1) throw std::invalid_argument("moe traffic: gpus_per_node must be >= 1");
  const MoeConfig& m = *arch.moe;
  MoeTrafficParams p;
  const int ep = static_cast<int>(ep_group.size());
  p.ep_group = std::move(ep_group);
  p.routed_experts = m.routed_experts;
  p.tokens_per_gpu = tokens_per_gpu;
  p.top_k = m.experts_per_token;
  if (m.max_groups_per_token > 0) {
    const int nodes = std::max(1, (ep + gpus_per_node - 1) / gpus_per_node);
    p.max_nodes_per_token = m.max_groups_per_token * std::max(1, (nodes + m.expert_groups - 1) / m.expert_groups);
  }
  p.dispatch_bytes_per_token = dispatch_bytes_per_token(arch, dispatch_precision);
  p.combine_bytes_per_token = bf16_bytes_per_token(arch.hidden);
  return p;
}

double fp8_dispatch_bytes_per_token(int hidden) { return hidden * (1.0 + 4.0 / 128.0); }
double bf16_bytes_per_token(int hidden) { return 2.0 * hidden; }

double expected_nodes_per_token(int nodes, int experts_per_node, int top_k, int max_nodes) {
  const int m = effective_node_limit(nodes, max_nodes);
  if (nodes < 1 || experts_per_node < 1 || top_k < 1 || top_k > m * experts_per_node)
    throw std::invalid_argument("expected_nodes_per_token: need nodes, experts >= 1 and 1 <= top_k <= experts reachable");
  return nodes * BalancedRouting(nodes, experts_per_node, experts_per_node, top_k, max_nodes).hits().node;
}

RoutingCounts routing_counts(const hw::Topology& topo, const MoeTrafficParams& p) {
  validate(topo, p);
  RoutingCounts c = empty_counts(topo, p);
  if (p.routing.kind == RoutingKind::Balanced)
    fill_balanced(c, p);
  else
    fill_sampled(c, p);
  return c;
}

MoeTraffic moe_traffic(const hw::Topology& topo, const MoeTrafficParams& p, MoePhase phase) {
  return moe_traffic(topo, p, routing_counts(topo, p), phase);
}

MoeTraffic moe_traffic(const hw::Topology& topo, const MoeTrafficParams& p, const RoutingCounts& c, MoePhase phase) {
  validate(topo, p);
  if (c.ep != ep_size(p) || c.node_of_rank.size() != z(c.ep) || c.node_tokens.size() != z(c.ep) * z(c.nodes()) ||
      c.rank_tokens.size() != z(c.ep) * z(c.ep) || c.expert_rows.size() != z(c.ep) * z(c.ep))
    throw std::invalid_argument("moe traffic: routing counts do not match the EP group");
  const bool combine = phase == MoePhase::Combine;
  const double bytes = combine ? p.combine_bytes_per_token : p.dispatch_bytes_per_token;
  MoeTraffic t;
  t.phase = phase;
  t.ep_group = p.ep_group;
  t.internode = c.nodes() > 1;
  t.received_rows.assign(z(c.ep), 0.0);
  t.deepep_rdma_bytes.assign(z(c.ep), 0.0);
  t.deepep_nvl_bytes.assign(z(c.ep), 0.0);
  for (int s = 0; s < c.ep; ++s) {
    for (int n = 0; n < c.nodes(); ++n) {
      node_transfers(t.transfers, topo, p, c, s, n, bytes, combine);
      t.deepep_rdma_bytes[z(s)] += c.node_tokens[z(s) * z(c.nodes()) + z(n)] * bytes;
    }
    for (int r = 0; r < c.ep; ++r) {
      t.received_rows[z(r)] += c.expert_rows[z(s) * z(c.ep) + z(r)];
      t.deepep_nvl_bytes[z(r)] += c.rank_tokens[z(s) * z(c.ep) + z(r)] * bytes;
    }
  }
  return t;
}

double NetworkEfficiency::sm_factor() const {
  if (comm_sms < 1 || saturating_comm_sms < 1) throw std::invalid_argument("NetworkEfficiency: comm SMs must be >= 1");
  return std::min(1.0, static_cast<double>(comm_sms) / saturating_comm_sms);
}

NetworkEfficiency load_network_efficiency() {
  const std::string origin = "data/network/efficiency.json";
  const auto text = embedded_file("network/efficiency.json");
  if (!text) throw std::logic_error(origin + " is not embedded");
  const Json j = parse_json_text(std::string(*text), origin);
  JsonObject o(j, origin, "");
  NetworkEfficiency e;
  e.nvlink = o.number("nvlink_achievable_fraction", 1e-3, 1.0);
  e.ib = o.number("ib_achievable_fraction", 1e-3, 1.0);
  e.saturating_comm_sms = static_cast<int>(o.integer("saturating_comm_sms", 1, 4096));
  e.comm_sms = e.saturating_comm_sms;
  o.object("sources");  // text for people; only required to be an object
  o.finish();
  return e;
}

std::vector<double> effective_capacities_Bps(const hw::Topology& topo, const NetworkEfficiency& eff) {
  if (!(eff.nvlink > 0 && eff.nvlink <= 1) || !(eff.ib > 0 && eff.ib <= 1))
    throw std::invalid_argument("NetworkEfficiency: efficiencies must be in (0, 1]");
  const double sm = eff.sm_factor();
  std::vector<double> cap;
  for (sim::LinkIndex l = 0; l < static_cast<sim::LinkIndex>(topo.links().size()); ++l) {
    double c = topo.links()[z(l)].capacity.value() * (is_nvlink(topo, l) ? eff.nvlink : eff.ib);
    if (topo.vertex_kind(topo.link_tail(l)) == hw::VertexKind::Gpu) c *= sm;
    cap.push_back(c);
  }
  return cap;
}

std::vector<double> link_bytes(const hw::Topology& topo, const std::vector<MoeTransfer>& transfers) {
  std::vector<double> b(topo.links().size(), 0.0);
  for (const MoeTransfer& x : transfers)
    for (sim::LinkIndex l : topo.route(x.src_gpu, x.dst_gpu)) b[z(l)] += x.bytes;
  return b;
}

Time bottleneck_time(const hw::Topology& topo, const std::vector<double>& bytes_per_link, const NetworkEfficiency& eff) {
  const std::vector<double> cap = effective_capacities_Bps(topo, eff);
  if (bytes_per_link.size() != cap.size()) throw std::invalid_argument("bottleneck_time: one byte count per link expected");
  double worst_s = 0;
  for (std::size_t l = 0; l < cap.size(); ++l) worst_s = std::max(worst_s, bytes_per_link[l] / cap[l]);
  return Time::seconds(worst_s);
}

MoeRunResult run_moe_traffic(const hw::Topology& topo, const MoeTraffic& traffic, const NetworkEfficiency& eff) {
  // Only the links some transfer crosses enter the network (an idle link
  // changes no max-min rate), renumbered in topology order: the solver then
  // scales with the group, not with the whole cluster.
  std::vector<sim::Route> routes;
  std::map<sim::LinkIndex, sim::LinkIndex> local;
  for (const MoeTransfer& x : traffic.transfers) {
    routes.push_back(topo.route(x.src_gpu, x.dst_gpu));
    for (sim::LinkIndex l : routes.back()) local.emplace(l, 0);
  }
  sim::Engine engine;
  sim::FlowNetwork net(engine);
  const std::vector<double> cap = effective_capacities_Bps(topo, eff);
  for (auto& [l, idx] : local) {
    const sim::Link& link = topo.links()[z(l)];
    idx = net.add_link({.name = link.name, .capacity = BytesPerSecond(cap[z(l)]), .latency = link.latency});
  }
  std::vector<Time> end(traffic.transfers.size());
  for (std::size_t i = 0; i < traffic.transfers.size(); ++i) {
    for (sim::LinkIndex& l : routes[i]) l = local.at(l);
    net.start_flow(std::move(routes[i]), ByteCount(traffic.transfers[i].bytes), [&end, &engine, i] { end[i] = engine.now(); });
  }
  engine.run();
  apply_causality(traffic, end);
  MoeRunResult r;
  for (std::size_t i = 0; i < end.size(); ++i) {
    r.time = max(r.time, end[i]);
    Time& part = traffic.transfers[i].hop == MoeHop::InterNode ? r.inter_node_end : r.nvlink_end;
    part = max(part, end[i]);
  }
  const double logical = mean(traffic.internode ? traffic.deepep_rdma_bytes : traffic.deepep_nvl_bytes);
  r.deepep_bandwidth_Bps = r.time > Time::zero() ? logical / r.time.to_seconds() : 0.0;
  return r;
}

}  // namespace trainsim::model
