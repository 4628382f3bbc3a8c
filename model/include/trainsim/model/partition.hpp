#pragma once
// The layer-to-stage partition: which contiguous run of the model's layers
// (embedding, decoder layers, head, MTP modules) each pipeline stage holds.
//
// What it captures
// ----------------
// A pipeline step is as slow as its most loaded device, and a device may hold
// more than one stage: DualPipe's rank r holds stages r and pp-1-r, DualPipeV's
// device d holds d and 2pp-1-d, interleaved rank r holds r, r+pp, ... A
// partition that balances stages one by one can leave one device with the
// embedding's dense layers plus the head plus the MTP module and another with
// two light stages. The search therefore works in three steps:
//  1. Candidates. The classic contiguous partition that minimises the largest
//     stage cost (dynamic programme, `partition_layers`) under two layer
//     costs: every operation's time added up (communication counted as if
//     exposed), and the time a one-layer chunk takes as the schedule runs it
//     (for schedules that overlap a forward with a backward, the overlapped
//     pair, so communication the overlap hides is not counted). Each is then
//     improved by a local search that balances DEVICES (`balance_devices`):
//     move one layer across one stage boundary while that lowers the most
//     loaded device's load (ties: the sum of squared device loads).
//  2. Estimate. Each distinct candidate is timed by executing the pipeline
//     schedule with the chunk times that candidate's stages take when
//     simulated on one GPU's two streams (and overlapped pairs simulated as
//     pairs), plus each rank's gradient synchronisation and optimizer timed
//     alone on the fabric (step.cpp).
//  3. Choice. The candidate with the smallest estimated step is simulated by
//     the cluster execution; the report lists every candidate with its
//     estimate, so a jump between two layer counts can be traced to the
//     partition.
//
// What it ignores
// ---------------
// Contention between GPUs and routing skew (the estimate runs one pipeline
// alone); non-contiguous partitions; partitions other local searches would
// reach (the search is a heuristic: optimal for one stage per device, where
// the dynamic programme is exact for the additive cost, otherwise a local
// optimum from two starts).
//
// Validation: tests/model/test_partition.cpp (exactness of the programme,
// device balance on DualPipe) and tests/app/test_cluster_sim.cpp (the
// DeepSeek-V3 layer-count sweep 53..64 is monotone with small steps).
#include <string>
#include <vector>

#include "trainsim/common/units.hpp"
#include "trainsim/model/schedule.hpp"

namespace trainsim::model {

// Contiguous partition of the layers into `stages` stages minimising the
// largest stage cost. `cost[i]` is the cost of layer i; throws
// std::invalid_argument if there are fewer layers than stages. Ties keep the
// earliest cut (deterministic).
std::vector<int> partition_layers(const std::vector<double>& cost, int stages);

// Load of every device of `schedule` under layer counts `counts`: the sum of
// the costs of the layers of every stage the device holds.
std::vector<double> device_loads(const std::vector<double>& cost, const std::vector<int>& counts,
                                 const Schedule& schedule);

// Local search from `counts`: moves one layer across one stage boundary (no
// stage left empty) while that lowers (largest device load, sum of squared
// device loads) lexicographically; returns the local optimum.
std::vector<int> balance_devices(const std::vector<double>& cost, std::vector<int> counts,
                                 const Schedule& schedule);

struct PartitionCandidate {
  std::string method;       // how it was found
  std::vector<int> counts;  // layers per stage
  Time estimate{};          // estimated step (pipeline + tail) with these stages
};

struct PartitionChoice {
  std::vector<PartitionCandidate> candidates;  // distinct, in the order found
  int chosen = 0;                              // index of the smallest estimate
  // Per device, the chosen partition's load per micro-batch under the
  // scheduled layer cost (seconds): its spread is the granularity a step
  // pays because layers are indivisible.
  std::vector<double> device_load_s;
};

}  // namespace trainsim::model
