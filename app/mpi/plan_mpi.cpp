// `mpirun -n N trainsim plan ...`: the jobs of a plan spread over MPI ranks
// with dynamic load balancing. Rank 0 enumerates (so do the workers: the
// enumeration is deterministic), hands out one job index at a time to
// whichever worker asks, and collects each result (as the JSON a shard part
// holds) into the job's slot; the exact re-runs of the best K go out the same
// way. Rank 0 then finalizes exactly as a single process does, so the plan is
// byte-identical to the unsharded one. Built only when CMake finds MPI.
#include "plan_mpi.hpp"

#include <mpi.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "trainsim/common/progress.hpp"

namespace trainsim::app {

namespace {

constexpr int kTagWork = 1, kTagResult = 2, kTagStop = 3;

// Rank 0: send jobs to workers as they ask, return results in job order.
std::vector<JobResult> farm_out(const std::vector<int>& jobs, EvalLevel level, int ranks, Progress* progress) {
  std::vector<JobResult> out(jobs.size());
  std::size_t next = 0, done = 0;
  auto send = [&](int worker) {
    int msg[2] = {static_cast<int>(next), static_cast<int>(level)};
    MPI_Send(msg, 2, MPI_INT, worker, kTagWork, MPI_COMM_WORLD);
    msg[0] = jobs[next++];
    MPI_Send(msg, 2, MPI_INT, worker, kTagWork, MPI_COMM_WORLD);
  };
  for (int w = 1; w < ranks && next < jobs.size(); ++w) send(w);
  while (done < jobs.size()) {
    MPI_Status st;
    MPI_Probe(MPI_ANY_SOURCE, kTagResult, MPI_COMM_WORLD, &st);
    int len = 0;
    MPI_Get_count(&st, MPI_CHAR, &len);
    std::string text(static_cast<std::size_t>(len), '\0');
    MPI_Recv(text.data(), len, MPI_CHAR, st.MPI_SOURCE, kTagResult, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    const auto j = nlohmann::json::parse(text);
    out[j.at("slot").get<std::size_t>()] = job_result_from_json(j.at("result"));
    ++done;
    if (progress) progress->advance();
    if (next < jobs.size()) send(st.MPI_SOURCE);
  }
  return out;
}

void serve(const PlanSpace& space) {
  for (;;) {
    int head[2];
    MPI_Status st;
    MPI_Recv(head, 2, MPI_INT, 0, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
    if (st.MPI_TAG == kTagStop) return;
    int job[2];
    MPI_Recv(job, 2, MPI_INT, 0, kTagWork, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    const nlohmann::json j = {{"slot", head[0]}, {"result", to_json(evaluate_job(space, job[0], static_cast<EvalLevel>(head[1])))}};
    const std::string text = j.dump();
    MPI_Send(text.data(), static_cast<int>(text.size()), MPI_CHAR, 0, kTagResult, MPI_COMM_WORLD);
  }
}

}  // namespace

bool mpi_launched() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMI_SIZE") != nullptr;
}

std::optional<nlohmann::json> run_plan_mpi(const Scenario& base, const PlanOptions& opt, Progress* progress) {
  MPI_Init(nullptr, nullptr);
  int rank = 0, ranks = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &ranks);
  std::optional<nlohmann::json> plan;
  if (ranks == 1) {
    plan = run_plan(base, opt, progress);
  } else {
    const PlanSpace space = enumerate_plan(base, opt);
    if (rank == 0) {
      std::vector<int> all(space.jobs.size());
      for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
      if (progress) progress->set_total(all.size());
      const auto estimated = by_job(space, farm_out(all, EvalLevel::Estimate, ranks, progress));
      const std::vector<int> screen = screen_jobs(opt, space, estimated);
      if (progress) progress->set_total(all.size() + screen.size() + static_cast<std::size_t>(opt.top) + 1);
      const auto screened = by_job(space, farm_out(screen, EvalLevel::Screen, ranks, progress));
      plan = finalize_plan(base, opt, space, estimated, screened, [&](const std::vector<int>& jobs) {
        return farm_out(jobs, EvalLevel::Exact, ranks, progress);
      });
      int stop[2] = {0, 0};
      for (int w = 1; w < ranks; ++w) MPI_Send(stop, 2, MPI_INT, w, kTagStop, MPI_COMM_WORLD);
    } else {
      serve(space);
    }
  }
  MPI_Finalize();
  return plan;
}

}  // namespace trainsim::app
