#pragma once
// `trainsim plan` over MPI ranks (app/mpi/plan_mpi.cpp); built only with MPI.
#include <optional>

#include <nlohmann/json.hpp>

#include "trainsim/app/plan.hpp"

namespace trainsim::app {

// True when this process was started by mpirun (Open MPI or a PMI launcher).
bool mpi_launched();
// Initialises and finalises MPI; the plan on rank 0, nothing on the others.
std::optional<nlohmann::json> run_plan_mpi(const Scenario& base, const PlanOptions& opt, Progress* progress);

}  // namespace trainsim::app
