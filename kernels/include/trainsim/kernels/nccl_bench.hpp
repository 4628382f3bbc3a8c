#pragma once
// NCCL all-reduce and all-to-all bandwidth sweeps over the GPUs of one
// process. No CUDA or NCCL headers needed here.
//
// What it measures
//  * One communicator per visible GPU (up to max_gpus), created in this
//    process with ncclCommInitAll, one stream per GPU. For each requested
//    size (bytes per GPU):
//     - "all_reduce": ncclAllReduce, FP32 sum, out of place (send and
//       receive buffers of `bytes` each on every GPU);
//     - "all_to_all": every GPU sends bytes / n to every GPU (itself
//       included) with ncclSend / ncclRecv inside one ncclGroupStart /
//       ncclGroupEnd (nccl-tests' alltoall), `bytes` in total per GPU.
//    Element type FP32; `bytes` is rounded down to whole elements (and, for
//    all-to-all, to n equal chunks, at least one element each); the point
//    records the bytes actually moved.
//  * Timing: one warm-up operation per size, then `repeats` operations, each
//    timed with CUDA events on every GPU's stream; an operation's time is the
//    slowest GPU's, `seconds` the median over the repeats.
//  * Bandwidths follow nccl-tests (doc/PERFORMANCE.md): algbw = bytes /
//    seconds; busbw = algbw * 2(n-1)/n for all-reduce and algbw * (n-1)/n
//    for all-to-all, in GB/s (1e9 bytes per second).
//
// What it ignores
//  * Multiple processes / nodes (no MPI bootstrap: single-process
//    ncclCommInitAll only, so intra-node NVLink/PCIe only), other collectives
//    (all-gather, reduce-scatter), other data types and reduction ops, in-place
//    variants, NCCL tuning variables (whatever the environment sets applies),
//    result checking of the collective's data.
//
// Needs: a build with CUDA and NCCL (kernels/CMakeLists.txt finds nccl.h and
// libnccl next to the CUDA toolkit; without them nccl_sweep returns ran =
// false, "built without NCCL" / "built without CUDA"), and at least 2 CUDA
// devices at run time (fewer: ran = false and the message says how many were
// found and why). It never throws for CUDA/NCCL errors or bad arguments.
//
// UNVERIFIED: the development machine has no GPU; this code has been compiled
// and linked against NCCL 2.28 but has NEVER RUN a collective.
#include <string>
#include <vector>

namespace trainsim::kernels {

struct NcclSweepPoint {
  std::string op;           // "all_reduce" or "all_to_all"
  double bytes = 0.0;       // bytes per GPU actually moved (after rounding to whole FP32 elements / chunks)
  double seconds = 0.0;     // median over repeats of the slowest GPU's event time
  double algbw_GBps = 0.0;  // bytes / seconds / 1e9
  double busbw_GBps = 0.0;  // algbw * 2(n-1)/n (all-reduce) or (n-1)/n (all-to-all)
};

struct NcclSweepResult {
  bool ran = false;     // true when every point was measured
  std::string message;  // what ran (GPUs, NCCL version), or why nothing did
  std::vector<NcclSweepPoint> points;  // per size: all_reduce, then all_to_all
};

// nccl-tests' bus-bandwidth factors for n ranks (0 when n < 2).
double nccl_all_reduce_bus_factor(int n);
double nccl_all_to_all_bus_factor(int n);

// Sweeps all-reduce and all-to-all over min(max_gpus, visible) GPUs
// (max_gpus <= 0: all visible) for each size in sizes_bytes (bytes per GPU,
// each >= 4); repeats >= 1.
NcclSweepResult nccl_sweep(int max_gpus, const std::vector<double>& sizes_bytes, int repeats);

}  // namespace trainsim::kernels
