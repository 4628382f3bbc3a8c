// Benchmark: wall time to simulate one scenario (load + step simulation +
// report), as a sweep over layouts would pay it per layout.
//
//   build/bench_simulate [SCENARIO] [REPEATS] [--fidelity auto|full|collapsed]
//
// Prints the median, minimum and maximum over REPEATS runs (default 20) of
// each phase, the number of pipeline chunk operations, the cluster-wide
// execution's size (simulated GPUs, events, flows, collectives), events per
// second of the median step simulation, and the process's peak resident set
// size. The fidelity defaults to auto, as for `trainsim simulate`.
#include <fmt/format.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstring>
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
  double median() {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  }
  std::string str() {
    std::sort(v.begin(), v.end());
    return fmt::format("median {:8.2f} ms   min {:8.2f}   max {:8.2f}", v[v.size() / 2], v.front(), v.back());
  }
};

int usage(const char* argv0) {
  fmt::print(stderr, "usage: {} [SCENARIO] [REPEATS] [--fidelity auto|full|collapsed]\n", argv0);
  return 2;
}
}  // namespace

int main(int argc, char** argv) {
  namespace app = trainsim::app;
  std::vector<std::string> positional;
  app::SimulateOptions options;
  std::string fidelity_name = "auto";
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--fidelity") == 0) {
      if (i + 1 >= argc) return usage(argv[0]);
      fidelity_name = argv[++i];
      if (fidelity_name == "auto") options.fidelity = app::FidelityChoice::Auto;
      else if (fidelity_name == "full") options.fidelity = app::FidelityChoice::Full;
      else if (fidelity_name == "collapsed") options.fidelity = app::FidelityChoice::Collapsed;
      else return usage(argv[0]);
    } else if (std::strcmp(argv[i], "-h") == 0 || std::strcmp(argv[i], "--help") == 0) {
      usage(argv[0]);
      return 0;
    } else {
      positional.emplace_back(argv[i]);
    }
  }
  if (positional.size() > 2) return usage(argv[0]);
  const std::string file = !positional.empty() ? positional[0]
                                               : std::string(TRAINSIM_SOURCE_DIR) + "/scenarios/deepseek-v3-pretrain.json";
  const int repeats = positional.size() > 1 ? std::max(1, std::stoi(positional[1])) : 20;
  Stats load, simulate, report, total;
  std::size_t chunk_ops = 0;
  trainsim::model::StepResult last;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = Clock::now();
    const auto scenario = app::load_scenario(file);
    const double t_load = ms_since(t0);
    const auto t1 = Clock::now();
    const auto sim = app::simulate(scenario, options);
    const double t_sim = ms_since(t1);
    const auto t2 = Clock::now();
    const auto r = app::make_report(sim);
    const double t_rep = ms_since(t2);
    load.add(t_load);
    simulate.add(t_sim);
    report.add(t_rep);
    total.add(ms_since(t0));
    chunk_ops = 0;
    for (const auto& ops : sim.step.schedule.per_rank) chunk_ops += ops.size();
    last = sim.step;
  }
  fmt::print("scenario: {}\nrepeats: {}\npipeline chunk ops per step: {}\n", file, repeats, chunk_ops);
  fmt::print("fidelity: {} (asked: {}), simulated GPUs {}\n", trainsim::model::to_string(last.fidelity),
             fidelity_name, last.simulated_gpus);
  fmt::print("cluster execution: {} events, {} flows, {} collectives\n", last.events, last.flows, last.collectives);
  fmt::print("load scenario   {}\n", load.str());
  const double sim_ms = simulate.median();
  fmt::print("simulate step   {}\n", simulate.str());
  fmt::print("build report    {}\n", report.str());
  fmt::print("total           {}\n", total.str());
  if (sim_ms > 0) fmt::print("events/s        {:.3g} (events / median simulate step)\n", double(last.events) / (sim_ms / 1e3));
  rusage ru{};
  if (getrusage(RUSAGE_SELF, &ru) == 0) fmt::print("max RSS         {:.1f} MiB\n", double(ru.ru_maxrss) / 1024.0);
  return 0;
}
