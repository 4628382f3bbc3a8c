#include "trainsim/model/cluster_layout.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace trainsim::model {

ClusterLayout::ClusterLayout(const ParallelPlan& plan, const Schedule& schedule)
    : tp_(plan.tp), pp_(plan.pp), dp_(plan.dp), ep_(plan.ep) {
  if (tp_ < 1 || pp_ < 1 || dp_ < 1 || ep_ < 1)
    throw std::invalid_argument(fmt::format("ClusterLayout: tp={} pp={} dp={} ep={}; expected >= 1", tp_, pp_, dp_, ep_));
  const long long per_rank = static_cast<long long>(dp_) * tp_;
  if (per_rank * pp_ > std::numeric_limits<int>::max())
    throw std::invalid_argument(fmt::format("ClusterLayout: {} x {} x {} GPUs do not fit an int", tp_, pp_, dp_));
  per_rank_ = static_cast<int>(per_rank);
  if (per_rank_ % ep_ != 0)
    throw std::invalid_argument(fmt::format("ClusterLayout: ep={} does not divide dp*tp={}", ep_, per_rank_));
  if (schedule.ranks != pp_)
    throw std::invalid_argument(fmt::format("ClusterLayout: schedule has {} ranks, plan pp={}", schedule.ranks, pp_));
  std::vector<std::vector<int>> stages(static_cast<std::size_t>(pp_));
  for (int r = 0; r < pp_; ++r) stages[static_cast<std::size_t>(r)] = schedule.stages_of_rank(r);
  same_stages_.resize(static_cast<std::size_t>(pp_));
  for (int r = 0; r < pp_; ++r)
    for (int q = 0; q < pp_; ++q)
      if (stages[static_cast<std::size_t>(q)] == stages[static_cast<std::size_t>(r)])
        same_stages_[static_cast<std::size_t>(r)].push_back(q);
}

std::vector<int> ClusterLayout::ep_members(int group) const {
  const int blocks = per_rank_ / ep_;
  const int rank = group / blocks, block = group % blocks;
  std::vector<int> m(static_cast<std::size_t>(ep_));
  for (int i = 0; i < ep_; ++i) m[static_cast<std::size_t>(i)] = gpu(rank, block * ep_ + i);
  return m;
}

std::vector<int> ClusterLayout::tp_members(int group) const {
  std::vector<int> m(static_cast<std::size_t>(tp_));
  for (int i = 0; i < tp_; ++i) m[static_cast<std::size_t>(i)] = group * tp_ + i;
  return m;
}

int ClusterLayout::first_rank_with_same_stages(int rank) const {
  return same_stages_[static_cast<std::size_t>(rank)].front();
}

int ClusterLayout::dp_group_of(int gpu, bool expert) const {
  const int first = first_rank_with_same_stages(rank_of(gpu));
  const int replica = replica_of(gpu);
  return expert ? first * ep_ + replica % ep_ : first * tp_ + replica % tp_;
}

std::vector<int> ClusterLayout::dp_members(int group, bool expert) const {
  const int width = expert ? ep_ : tp_;
  const int first = group / width, slot = group % width;
  std::vector<int> m;
  for (int rank : same_stages_[static_cast<std::size_t>(first)])
    for (int base = 0; base < per_rank_; base += width) m.push_back(gpu(rank, base + slot));
  return m;
}

}  // namespace trainsim::model
