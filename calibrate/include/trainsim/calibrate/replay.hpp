#pragma once
// The closed loop (`trainsim replay SCENARIO --device cpu --calibration P`):
// execute, for real, the operations the simulator would simulate for one
// micro-batch chunk of the scenario (the forward and then the full backward
// of one layer of each kind it has, dense and MoE, in the order a training
// step runs them), time every one, and set the measurement beside the
// simulator's prediction of the same operations from the profile (the same
// time_op path the step simulation uses).
//
// The sequence runs once as a warm-up and three more times; each operation's
// time is its median over those three.
//
// Operations run on the local CPU kernels: GEMMs and grouped GEMMs on
// gemm_tiled, attention on the causal attention forward/backward, memory-
// bound ops as a stream triad over their HBM bytes. Communication ops are
// not executed (a single-device scenario has none; if any, they are counted
// as skipped). Every format runs in FP32.
#include <string>

#include <nlohmann/json.hpp>

#include "trainsim/hardware/calibration.hpp"
#include "trainsim/hardware/cluster.hpp"
#include "trainsim/model/architecture.hpp"
#include "trainsim/model/parallel.hpp"

namespace trainsim::calibrate {

struct ReplayInputs {
  const model::Architecture* arch = nullptr;
  const hw::ClusterSpec* cluster = nullptr;
  const model::ParallelPlan* plan = nullptr;
  Precision precision = Precision::BF16;
  std::int64_t seq_len = 0;
  const hw::CalibrationProfile* profile = nullptr;
};

// Returns {measured_s, predicted_s, ratio, by_kind{...}, ops_executed,
// ops_skipped, layers, profile, device}. Throws std::invalid_argument when
// the profile carries no device spec (it must come from
// `trainsim calibrate --device cpu`).
nlohmann::json replay_cpu(const ReplayInputs& in);

}  // namespace trainsim::calibrate
