#pragma once
// The parallel plan: how a training run is laid out over the cluster. It is a
// value separate from the architecture and the hardware (as in Calculon); a
// function that needs all three takes all three.
#include <string>
#include <vector>

namespace trainsim::model {

// Pipeline schedules. GPipe: all forwards then all backwards. OneFOneB:
// PipeDream-flush 1F1B. Interleaved: Megatron's interleaved 1F1B with
// virtual_stages model chunks per rank. ZB1P: zero-bubble ZB-H1 (backward
// split into input and weight passes). DualPipe: DeepSeek's bidirectional
// schedule (rank r holds stages r and pp-1-r). DualPipeV: the V-shaped,
// cut-in-half DualPipe (pp devices, 2*pp stages, device d holds stages d
// and 2pp-1-d).
enum class ScheduleKind { GPipe, OneFOneB, Interleaved, ZB1P, DualPipe, DualPipeV };
enum class Recompute { None, Selective, Full };

const char* to_string(ScheduleKind s);
const char* to_string(Recompute r);

struct ParallelPlan {
  int tp = 1;                 // tensor parallel degree
  int pp = 1;                 // pipeline stages (devices along the pipeline)
  int ep = 1;                 // expert parallel degree (divides experts)
  int dp = 1;                 // data parallel degree; tp*pp*dp == GPUs
  int zero_stage = 1;         // 0..3
  ScheduleKind schedule = ScheduleKind::OneFOneB;
  int micro_batch_size = 1;   // sequences per micro-batch per GPU
  int virtual_stages = 1;     // model chunks per pipeline rank (interleaving)
  Recompute recompute = Recompute::Selective;
  bool sequence_parallel = false;
  // Tensor-parallel all-gathers pipelined into the GEMMs they feed and GEMMs
  // into the reduce-scatters of their outputs (Megatron/Transformer Engine
  // tp_comm_overlap; needs sequence parallelism).
  bool tp_comm_overlap = false;
  // ZeRO 0-2: each layer's gradients are reduced (all-reduce under ZeRO 0,
  // reduce-scatter otherwise) as soon as the last backward of its stage has
  // made them, beside the remaining backward (PyTorch DDP's buckets,
  // Megatron's overlap_grad_reduce, DeepSpeed's overlap_comm), instead of
  // after the pipeline. ZeRO-3 always does so.
  bool overlap_grad_reduce = false;
  int comm_sms = 0;           // SMs reserved for communication kernels
  // Layers (embedding, decoder layers, head, MTP modules, in model order) of
  // each stage; empty: searched (partition.hpp).
  std::vector<int> layers_per_stage;
};

}  // namespace trainsim::model
