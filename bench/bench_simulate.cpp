// Benchmark: wall time to simulate one scenario (load + step simulation +
// report), as a sweep over layouts would pay it per layout.
//
//   build/bench_simulate [SCENARIO] [REPEATS]
//
// Prints the median, minimum and maximum over REPEATS runs (default 20) of
// each phase, and the number of pipeline and chunk-level events.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "trainsim/app/report.hpp"
#include "trainsim/app/scenario.hpp"

namespace {
using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}
struct Stats {
  std::vector<double> v;
  void add(double x) { v.push_back(x); }
  std::string str() {
    std::sort(v.begin(), v.end());
    return fmt::format("median {:8.2f} ms   min {:8.2f}   max {:8.2f}", v[v.size() / 2], v.front(), v.back());
  }
};
}  // namespace

int main(int argc, char** argv) {
  const std::string file = argc > 1 ? argv[1] : std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/deepseek-v3-pretrain.json";
  const int repeats = argc > 2 ? std::max(1, std::stoi(argv[2])) : 20;
  Stats load, simulate, report, total;
  std::size_t chunk_ops = 0;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = Clock::now();
    const auto scenario = trainsim::app::load_scenario(file);
    const double t_load = ms_since(t0);
    const auto t1 = Clock::now();
    const auto sim = trainsim::app::simulate(scenario);
    const double t_sim = ms_since(t1);
    const auto t2 = Clock::now();
    const auto r = trainsim::app::make_report(sim);
    const double t_rep = ms_since(t2);
    load.add(t_load);
    simulate.add(t_sim);
    report.add(t_rep);
    total.add(ms_since(t0));
    chunk_ops = 0;
    for (const auto& ops : sim.step.schedule.per_rank) chunk_ops += ops.size();
  }
  fmt::print("scenario: {}\nrepeats: {}\npipeline chunk ops per step: {}\n", file, repeats, chunk_ops);
  fmt::print("load scenario   {}\n", load.str());
  fmt::print("simulate step   {}\n", simulate.str());
  fmt::print("build report    {}\n", report.str());
  fmt::print("total           {}\n", total.str());
  return 0;
}
