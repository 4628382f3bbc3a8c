#pragma once
// The parallel plan: how a training run is laid out over the cluster. It is a
// value separate from the architecture and the hardware (as in Calculon); a
// function that needs all three takes all three.
#include <string>

namespace trainsim::model {

enum class ScheduleKind { OneFOneB, DualPipe };
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
  int comm_sms = 0;           // SMs reserved for communication kernels
};

}  // namespace trainsim::model
