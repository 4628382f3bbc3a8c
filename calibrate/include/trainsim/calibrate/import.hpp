#pragma once
// Building a calibration profile from kernel measurements taken elsewhere
// (`trainsim calibrate --import TABLES.json`). The shipped H800 profile
// (data/calibration/h800.json) is produced this way from
// data/calibration/h800-published-tables.json, DeepSeek's published DeepGEMM,
// DeepEP and FlashMLA figures; a test re-runs the import and checks that the
// shipped profile is exactly what it produces.
//
// Procedure (after SimGrid's calibration method): take the measured points,
// keep the regime the model is for, fit, store the fit with its residuals and
// where every number came from.
//  * GEMM: the model of hw::KernelTimer::gemm,
//      t = t0 + waves * (alpha + beta * K * tile_m / 128),
//    is linear in (t0, alpha, beta) for known waves, so it is fitted by
//    weighted linear least squares minimising relative error (weights 1/t).
//    Only compute-bound points are fitted: dense and contiguous-grouped GEMMs
//    with at least `min_rows_fitted` rows in total (the shapes of training);
//    masked-grouped and small-M (decode) points are memory-bound and are
//    reported as out-of-sample residuals against the HBM roofline.
//  * Attention: the published forward rate over the SMs it used gives a rate
//    per SM; the backward rate is the forward rate times the published
//    backward/forward ratio.
//  * All-to-all: DeepEP's points are copied with their link type.
#include <string>

#include <nlohmann/json.hpp>

namespace trainsim::calibrate {

struct ImportOptions {
  long long min_rows_fitted = 4096;  // M * groups of the compute-bound regime
};

// Returns the profile JSON (parseable by hw::parse_profile). Throws InputError
// naming `file` and the JSON path on malformed tables.
nlohmann::json import_published_tables(const nlohmann::json& tables, const std::string& file,
                                       const ImportOptions& options = {});

}  // namespace trainsim::calibrate
