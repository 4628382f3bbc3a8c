#pragma once
// The simulated step as MLCommons Chakra execution traces, the workload format
// ASTRA-sim and other simulators read, so trainsim's workload can be checked
// in another simulator.
//
// What is written. `DIR/trainsim.<gpu>.et` for every GPU of the cluster
// (ASTRA-sim's `--workload-configuration=DIR/trainsim`) and
// `DIR/comm_group.json` (its `--comm-group-configuration`: group id -> GPU
// ids). Each trace is a GlobalMetadata message, then one Node per operation
// the GPU ran in the step, each message preceded by its varint length
// (app/proto/chakra_et.proto). Nodes, in the order the simulation started
// them (node id = that order):
//   COMP_NODE       every compute kernel of every chunk (num_ops = its
//                   executed FLOPs), and the optimizer step;
//   COMM_COLL_NODE  every collective: MoE dispatch/combine (ALL_TO_ALL), TP
//                   all-reduce / all-gather / reduce-scatter, the data-parallel
//                   gradient reduce-scatter / all-gather / all-reduce;
//                   comm_size = the bytes this GPU contributes, pg_name = its
//                   group in comm_group.json;
//   COMM_SEND_NODE / COMM_RECV_NODE  each pipeline transfer to or from another
//                   pipeline rank (comm_src, comm_dst, comm_size, comm_tag =
//                   the chunk it carries, equal on both ends).
// data_deps are the dependencies the cluster execution enforces: a kernel
// waits for the previous kernel of its chunk program (a kernel that starts
// with its predecessor, tp_comm_overlap, shares its dependencies); the first
// kernels of a schedule op wait for the end of the previous op and for the
// receives of the op's inputs; a send waits for the end of the op that
// produced the chunk; the gradient synchronisation waits for the last op and
// the optimizer for it. ctrl_deps add the order in which the simulation ran
// kernels on each of the GPU's two streams (compute, communication).
// start_time_micros / duration_micros are the simulated times, rounded to
// whole microseconds (Chakra's unit).
//
// What it ignores. Every GPU of a pipeline rank gets the kernels and times of
// the rank's replica 0 (the one the simulation records); with stragglers or
// skewed routing other replicas ran at other speeds. Collectives carry the
// simulated group's bytes, not trainsim's bundled flows; the receiving
// simulator times them with its own network model. Memory-bound kernels are
// COMP_NODEs with their FLOPs (often 0) and their simulated duration.
//
// Validated by tests/app/test_chakra.cpp: the files of a 16-GPU dense 1F1B
// scenario and of a 32-GPU DualPipe MoE one decode with the schema, per-GPU
// node counts equal the simulated kernel and transfer counts, every send has
// its receive (same tag) on the peer, every member of a group runs as many of
// its collectives, and the dependencies reference earlier nodes (no cycle).
// Not run through ASTRA-sim itself (not installed here).
#include <cstdint>
#include <string>

#include "trainsim/app/report.hpp"

namespace trainsim::app {

// False when trainsim was built without protobuf (the export then fails with
// an InputError saying so).
bool chakra_available();

struct ChakraSummary {
  int files = 0;              // traces written (one per GPU)
  std::uint64_t nodes = 0;    // over all traces
  std::uint64_t bytes = 0;    // over all traces
  int comm_groups = 0;
};

// Writes the traces of `sim` (run with SimulateOptions::record) into `dir`,
// creating it if needed; each file through a temporary name and a rename.
// Throws InputError when the export is unavailable or the directory cannot be
// written.
ChakraSummary write_chakra(const Simulation& sim, const std::string& dir);

}  // namespace trainsim::app
