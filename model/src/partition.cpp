#include "trainsim/model/partition.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

namespace trainsim::model {

std::vector<int> partition_layers(const std::vector<double>& cost, int stages) {
  const int n = static_cast<int>(cost.size());
  if (stages < 1 || n < stages)
    throw std::invalid_argument(fmt::format("cannot split {} layers into {} stages", n, stages));
  // best[s][i]: minimal max-stage cost of splitting the first i layers into s
  // stages; classic O(S * n^2) dynamic programme (n is a few hundred at most).
  std::vector<double> prefix(static_cast<std::size_t>(n) + 1, 0.0);
  for (int i = 0; i < n; ++i) prefix[static_cast<std::size_t>(i) + 1] = prefix[static_cast<std::size_t>(i)] + cost[static_cast<std::size_t>(i)];
  const double inf = 1e300;
  std::vector<std::vector<double>> best(static_cast<std::size_t>(stages) + 1, std::vector<double>(static_cast<std::size_t>(n) + 1, inf));
  std::vector<std::vector<int>> cut(static_cast<std::size_t>(stages) + 1, std::vector<int>(static_cast<std::size_t>(n) + 1, 0));
  best[0][0] = 0;
  for (int s = 1; s <= stages; ++s)
    for (int i = s; i <= n - (stages - s); ++i)
      for (int j = s - 1; j < i; ++j) {
        const double prev = best[static_cast<std::size_t>(s) - 1][static_cast<std::size_t>(j)];
        if (prev >= inf) continue;
        const double v = std::max(prev, prefix[static_cast<std::size_t>(i)] - prefix[static_cast<std::size_t>(j)]);
        // Strictly better only: ties keep the earliest cut, which is deterministic.
        if (v < best[static_cast<std::size_t>(s)][static_cast<std::size_t>(i)]) {
          best[static_cast<std::size_t>(s)][static_cast<std::size_t>(i)] = v;
          cut[static_cast<std::size_t>(s)][static_cast<std::size_t>(i)] = j;
        }
      }
  std::vector<int> counts(static_cast<std::size_t>(stages));
  int i = n;
  for (int s = stages; s >= 1; --s) {
    const int j = cut[static_cast<std::size_t>(s)][static_cast<std::size_t>(i)];
    counts[static_cast<std::size_t>(s) - 1] = i - j;
    i = j;
  }
  return counts;
}


std::vector<double> device_loads(const std::vector<double>& cost, const std::vector<int>& counts,
                                 const Schedule& schedule) {
  std::vector<double> stage(counts.size(), 0.0);
  std::size_t li = 0;
  for (std::size_t s = 0; s < counts.size(); ++s)
    for (int c = 0; c < counts[s]; ++c, ++li) stage[s] += cost[li];
  std::vector<double> load(static_cast<std::size_t>(schedule.ranks), 0.0);
  for (int r = 0; r < schedule.ranks; ++r)
    for (int s : schedule.stages_of_rank(r)) load[static_cast<std::size_t>(r)] += stage[static_cast<std::size_t>(s)];
  return load;
}

namespace {

// (largest load, sum of squared loads): the local search's objective.
std::pair<double, double> balance_key(const std::vector<double>& load) {
  double mx = 0, sq = 0;
  for (double l : load) {
    mx = std::max(mx, l);
    sq += l * l;
  }
  return {mx, sq};
}

// a < b by more than rounding: loads are sums of the same few layer costs in
// different orders, so equal partitions may differ in the last bits.
bool better(const std::pair<double, double>& a, const std::pair<double, double>& b) {
  const double tol = 1e-12 * std::max(1.0, b.first);
  if (a.first < b.first - tol) return true;
  if (a.first > b.first + tol) return false;
  return a.second < b.second - tol * b.first;
}

}  // namespace

std::vector<int> balance_devices(const std::vector<double>& cost, std::vector<int> counts,
                                 const Schedule& schedule) {
  auto key = balance_key(device_loads(cost, counts, schedule));
  // Each accepted move strictly lowers the key, so the search ends; the cap
  // only bounds the work on pathological inputs.
  for (int iter = 0; iter < 100000; ++iter) {
    std::vector<int> best_counts;
    auto best_key = key;
    for (std::size_t b = 0; b + 1 < counts.size(); ++b)
      for (int dir : {-1, 1}) {  // -1: stage b gives its last layer to b+1
        std::vector<int> c = counts;
        c[b] += dir;
        c[b + 1] -= dir;
        if (c[b] < 1 || c[b + 1] < 1) continue;
        const auto k = balance_key(device_loads(cost, c, schedule));
        if (better(k, best_key)) {
          best_key = k;
          best_counts = std::move(c);
        }
      }
    if (best_counts.empty()) break;
    counts = std::move(best_counts);
    key = best_key;
  }
  return counts;
}

}  // namespace trainsim::model
