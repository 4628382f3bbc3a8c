#pragma once
// One optimizer step of a training run, simulated.
//
// Data flow: architecture + plan -> per-layer ops (accounting; compute
// kernels timed by the calibration profile, communication kernels by their
// group alone on the fabric) -> stage partition -> chunk programs -> one
// discrete-event execution of the whole step over the cluster
// (cluster_exec: every simulated GPU's kernels on two streams, collectives
// and pipeline transfers as flows on the fabric, gradient synchronisation
// and optimizer) -> step time and its breakdown on the GPU that ends it.
// Chunks and overlapped pairs are also simulated alone, for the report and
// for the static order of an overlapped pair's collectives.
//
// Fidelity: every GPU, or one replica per pipeline rank (StepInputs).
//
// Memory per GPU is computed for every pipeline rank from the same layer
// accounting and the activation peak the executed schedule actually reached.
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "trainsim/common/precision.hpp"
#include "trainsim/common/units.hpp"
#include "trainsim/hardware/calibration.hpp"
#include "trainsim/hardware/cluster.hpp"
#include "trainsim/model/accounting.hpp"
#include "trainsim/model/architecture.hpp"
#include "trainsim/model/cluster_exec.hpp"
#include "trainsim/model/moe_traffic.hpp"
#include "trainsim/model/parallel.hpp"
#include "trainsim/model/partition.hpp"
#include "trainsim/model/pipeline_exec.hpp"
#include "trainsim/model/schedule.hpp"
#include "trainsim/model/workload.hpp"

namespace trainsim::model {

struct StepInputs {
  const Architecture* arch = nullptr;
  const hw::ClusterSpec* cluster = nullptr;
  const ParallelPlan* plan = nullptr;
  Precision precision = Precision::BF16;
  std::int64_t seq_len = 0;
  std::int64_t microbatches = 0;  // per pipeline per step
  const hw::CalibrationProfile* profile = nullptr;
  Fidelity fidelity = Fidelity::Collapsed;
  std::vector<double> slowdown;  // per GPU compute-time factor; empty: all 1
  // Scale-out links at exp(-link_sigma |z|) of their achievable capacity, z
  // a standard normal drawn per link from link_seed (0: none).
  double link_sigma = 0;
  std::uint64_t link_seed = 0;
  RoutingModel routing;          // MoE token-to-expert routing (balanced by default)
  bool record = false;           // keep kernels and transfers of replica 0 (for traces)
  int routing_states = 16;       // distinct draws of a skewed routing model
  // Called during the cluster execution with the fraction of the estimated
  // step simulated so far (may exceed 1 near the end); empty: none.
  std::function<void(double)> progress;
  // Stop after the stage-partition search: the step is the chosen
  // partition's estimate (the pipeline schedule executed with simulated
  // chunk times, one pipeline-transfer delay, every rank's gradient sync
  // alone on the fabric; no cluster execution, so no contention between
  // GPUs). Memory is read from that execution. The planner's first screen.
  bool estimate_only = false;
};

struct StageCost {
  std::vector<LayerKind> layers;
  Time forward{}, backward_input{}, backward_weight{}, backward_full{};
  double params_per_gpu = 0;        // parameters of this stage held by one GPU
  double expert_params_per_gpu = 0; // of which routed-expert parameters
  ByteCount activations_per_microbatch{};
  // What a deferred weight-gradient pass (W after a split B) keeps alive: the
  // inputs of the Linear layers and the output gradients B produced.
  ByteCount weight_grad_inputs_per_microbatch{};
  ByteCount transient{};            // largest short-lived buffer (e.g. logits)
  double model_flops_per_microbatch = 0;
  double executed_flops_per_microbatch = 0;
};

struct PairCost {
  int forward_stage = 0, backward_stage = 0;
  Time duration{};
  Time compute_busy{}, comm_busy{};
  ExposedComm exposed{};
};

struct MemoryBreakdown {
  int rank = 0;
  double weights_bytes = 0, gradients_bytes = 0, optimizer_bytes = 0, activations_bytes = 0, transient_bytes = 0;
  int activation_chunks_peak = 0;
  double total_bytes() const { return weights_bytes + gradients_bytes + optimizer_bytes + activations_bytes + transient_bytes; }
};

struct StepBreakdown {
  int rank = 0;               // the pipeline rank whose end (incl. its gradient sync) ends the step
  Time compute{};             // compute-stream time of that rank's chunks
  ExposedComm exposed_ep{};   // compute stalls on all-to-all / TP inside chunks
  Time exposed_pp{};          // extra makespan due to pipeline transfers
  Time bubble{};              // idle time of the rank in the pipeline (excl. transfers)
  Time dp_sync{};             // exposed data-parallel communication: the gradient sync after the
                              // pipeline, and under ZeRO-3 the waits for parameter gathers inside it
  Time optimizer{};
};

struct LayerTiming {
  LayerKind kind = LayerKind::Dense;
  std::vector<TimedOp> ops;  // every op of the layer for one micro-batch, all passes
};

struct StepResult {
  std::vector<LayerTiming> layer_kinds;  // one entry per distinct layer kind
  std::vector<StageCost> stages;
  PartitionChoice partition;  // how the layers were cut into stages (partition.hpp)
  // Per stage: the chunk programs (forward, input backward, weight backward,
  // full backward) whose simulation gave the stage's chunk times; kept so a
  // trace can replay any chunk kernel by kernel.
  std::vector<ChunkProgram> program_f, program_b, program_w, program_bw;
  std::vector<PairCost> pairs;
  // Per overlapped pair (forward stage, backward stage): the order of its
  // collectives on the communication stream (cluster_exec.hpp).
  std::map<std::pair<int, int>, std::vector<std::pair<int, int>>> fb_comm_order;
  Schedule schedule;
  ExecResult exec;
  Time makespan{};            // pipeline part
  Time step_time{};
  StepBreakdown breakdown;
  std::vector<MemoryBreakdown> memory;  // per pipeline rank
  MemoryBreakdown peak_memory;          // the rank with the most
  double model_flops_per_step = 0;      // whole cluster, no recompute
  double executed_flops_per_step = 0;
  int compute_sms = 0;
  int dp_group_dense = 0, dp_group_expert = 0;
  double p2p_seconds = 0;
  // The cluster execution.
  Fidelity fidelity = Fidelity::Collapsed;
  int critical_gpu = 0;          // the GPU whose optimizer step ends last
  GroupStats critical_group;     // the EP/TP group whose collectives took longest
  std::vector<int> critical_group_members;
  int simulated_gpus = 0;
  std::uint64_t events = 0, flows = 0, collectives = 0;
  std::string critical_link;     // the link that bounded flows longest (empty: none)
  Time critical_link_time{};
  std::vector<KernelRecord> kernels;      // with StepInputs::record
  std::vector<TransferRecord> transfers;  // with StepInputs::record; links by name below
  std::vector<std::string> link_names;    // with StepInputs::record: topology link names
  // What the cluster execution was given (for exports that rebuild the
  // per-GPU work): each rank's gradient synchronisation and optimizer, and
  // the bytes of one pipeline transfer.
  std::vector<TailWork> tail;
  double activation_bytes = 0;
};


// The model's layer sequence: Embedding, dense layers, MoE layers, Head, MTP modules.
std::vector<LayerKind> layer_sequence(const Architecture& arch);

StepResult simulate_step(const StepInputs& in);

}  // namespace trainsim::model
