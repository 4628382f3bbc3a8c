#pragma once
// From per-layer operations to timed chunk programs on one GPU.
//
// What it captures. A pipeline stage holds a contiguous run of layers. One
// "chunk" is one pass of one micro-batch through one stage. Its program is the
// layers' operations in execution order (forward: layers in order; backward:
// layers in reverse), each op timed by the calibration profile and placed on
// one of two streams of the GPU:
//   * the compute stream (GEMMs, attention, memory-bound kernels), running on
//     the SMs left after the communication reservation;
//   * the communication stream (MoE dispatch/combine, TP collectives), the
//     kernels that own the reserved SMs and drive NVLink and the NIC.
// Ops of one program form a chain: each waits for its predecessor, so inside a
// lone chunk every all-to-all is exposed. Two programs simulated together (a
// forward chunk of one micro-batch and a backward chunk of another, as in
// DualPipe's overlapped F&B) share the two streams: one's communication runs
// while the other computes, which is exactly the overlap DualPipe was built
// for. When both programs have an op ready for the same stream, the one that
// became ready first runs first (ties: the backward program).
//
// What it ignores. Interference of concurrent kernels beyond the SM split (HBM
// and L2 contention of the communication kernels), launch gaps beyond the
// profile's fixed per-kernel cost, routing imbalance between experts (routing
// is taken as perfectly balanced, as in DeepSeek's published profile), and
// overlap inside a single chunk (e.g. shared experts during dispatch).
//
// Validation. The simulated F&B pair of a 4-MoE-layer DeepSeek-V3 stage is
// compared with DeepSeek's published profile of exactly that pair
// (docs/VALIDATION.md).
#include <string>
#include <vector>

#include "trainsim/common/units.hpp"
#include "trainsim/hardware/calibration.hpp"
#include "trainsim/hardware/cluster.hpp"
#include "trainsim/model/accounting.hpp"
#include "trainsim/model/architecture.hpp"
#include "trainsim/model/ops.hpp"
#include "trainsim/model/parallel.hpp"

namespace trainsim::model {

enum class Stream { Compute, Comm };

struct TimedOp {
  Op op;
  Stream stream = Stream::Compute;
  Time duration{};
  int layer = 0;  // index of the layer within the stage
  // The next kernel of the program may start together with this one (on the
  // other stream), and the one after waits for both: a tensor-parallel
  // all-gather pipelined into the GEMM it feeds, or a GEMM pipelined into the
  // reduce-scatter of its output (Megatron's tp_comm_overlap).
  bool concurrent_with_next = false;
};

// Which parts of a chunk a program contains.
enum class ChunkPass { Forward, BackwardInput, BackwardWeight, BackwardFull };

struct ChunkProgram {
  ChunkPass pass = ChunkPass::Forward;
  std::vector<TimedOp> ops;
};

struct OpInterval {
  int program = 0;
  int op = 0;
  Time start{};
  Time end{};
};

// Time the compute stream waited for a communication op, by kind.
struct ExposedComm {
  Time ep_dispatch{};
  Time ep_combine{};
  Time tp{};
  Time total() const { return ep_dispatch + ep_combine + tp; }
};

struct ChunkSimResult {
  Time makespan{};
  Time compute_busy{};
  Time comm_busy{};
  ExposedComm exposed{};
  std::vector<OpInterval> intervals;  // filled when requested
};

// Everything needed to time operations on one GPU of the cluster.
struct TimingContext {
  const hw::CalibrationProfile* profile = nullptr;
  const hw::ClusterSpec* cluster = nullptr;
  int compute_sms = 0;
  int comm_sms = 0;
};

// Times one op on the given context and tells which stream it runs on.
TimedOp time_op(const Op& op, const hw::KernelTimer& timer, const TimingContext& ctx);

// Builds the program of one pass over a stage's layers.
ChunkProgram build_program(const std::vector<std::vector<TimedOp>>& layer_ops, ChunkPass pass);

// Runs one or more programs together on one GPU's two streams.
ChunkSimResult simulate_chunks(const std::vector<const ChunkProgram*>& programs, bool keep_intervals = false);

}  // namespace trainsim::model
