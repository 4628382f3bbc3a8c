#pragma once
// Where every GPU of the cluster sits in the parallel layout, and the groups
// it communicates in.
//
// GPU numbering (the same as the scenario's and the topology's): pipeline
// rank major, then data-parallel index, then tensor-parallel index:
//   gpu = pp_rank * (dp * tp) + dp_index * tp + tp_index.
// With 8 GPUs per node and tp <= 8, a tensor-parallel group never leaves its
// node, and consecutive data-parallel replicas of one pipeline rank fill
// consecutive nodes (DeepSeek-V3: pipeline rank r on nodes 16r..16r+15).
//
// Groups (member lists in group-rank order, global GPU ids):
//  * pipeline replica: the GPUs with the same (dp_index, tp_index) on every
//    rank; a chunk's activation goes to the same replica's next rank.
//  * tensor parallel: the tp GPUs of one (pp_rank, dp_index).
//  * expert parallel: `ep` consecutive replicas (dp_index * tp + tp_index) of
//    one pipeline rank, so EP64 over tp=1 spans 8 nodes.
//  * data parallel (gradient synchronisation): every GPU holding the same
//    stages with the same tensor slice: the replicas of the ranks whose stage
//    sets are equal (DualPipe: rank r and rank pp-1-r hold the same two
//    stages, so their 2*dp GPUs form one group). Routed-expert gradients are
//    synchronised only among the GPUs holding the same experts: those with the
//    same EP rank.
// Every list is built on demand; nothing here grows faster than the GPUs.
#include <vector>

#include "trainsim/model/parallel.hpp"
#include "trainsim/model/schedule.hpp"

namespace trainsim::model {

class ClusterLayout {
 public:
  // Throws std::invalid_argument when tp*pp*dp does not fit an int or ep does
  // not divide dp*tp.
  ClusterLayout(const ParallelPlan& plan, const Schedule& schedule);

  int gpus() const { return pp_ * per_rank_; }
  int ranks() const { return pp_; }
  int per_rank() const { return per_rank_; }  // GPUs per pipeline rank: dp * tp
  int tp() const { return tp_; }
  int ep() const { return ep_; }

  int gpu(int pp_rank, int replica) const { return pp_rank * per_rank_ + replica; }
  int rank_of(int gpu) const { return gpu / per_rank_; }
  // dp_index * tp + tp_index: the pipeline replica a GPU belongs to.
  int replica_of(int gpu) const { return gpu % per_rank_; }

  // Group ids are dense per kind: EP groups 0..ep_groups()-1, and so on.
  int ep_groups() const { return pp_ * (per_rank_ / ep_); }
  int ep_group_of(int gpu) const { return rank_of(gpu) * (per_rank_ / ep_) + replica_of(gpu) / ep_; }
  std::vector<int> ep_members(int group) const;
  int tp_groups() const { return pp_ * (per_rank_ / tp_); }
  int tp_group_of(int gpu) const { return gpu / tp_; }
  std::vector<int> tp_members(int group) const;

  // Data-parallel gradient groups. dense: every GPU with the same stages and
  // tensor slice; expert: of those, the ones with the same EP rank.
  int dp_group_of(int gpu, bool expert) const;
  std::vector<int> dp_members(int group, bool expert) const;

 private:
  int first_rank_with_same_stages(int rank) const;

  int tp_ = 1, pp_ = 1, dp_ = 1, ep_ = 1, per_rank_ = 1;
  // Ranks holding the same stage set as rank r, ascending (size 1 or 2).
  std::vector<std::vector<int>> same_stages_;
};

}  // namespace trainsim::model
