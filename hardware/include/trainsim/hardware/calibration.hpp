#pragma once
// Calibration profiles: how fast the kernels of a training step run on a GPU.
//
// What it captures. Every compute operation of the workload is timed by one of
// four fitted models, each with a documented functional form whose
// coefficients come from kernel measurements (never from an end-to-end
// training figure):
//
//  * GEMM (FP8 measured; BF16/FP16 derived). A tiled GEMM runs in waves of
//    output tiles over the SMs it is given. Each tile of tile_m x 128 outputs
//    costs a fixed epilogue/prologue part (alpha) plus a part proportional to
//    the reduction length K (beta per element of K for a 128-row tile), so
//      t = t0 + waves * (alpha + beta * K * tile_m / 128),
//      waves = ceil(groups * ceil(M / tile_m) * ceil(N / 128) / SMs),
//    bounded below by the HBM roofline t0 + bytes / (hbm_efficiency * HBM).
//    (For the CPU kernel, whose edge tiles do only their real work, the
//    K-proportional part is beta * K * M * N / (tile_m * tile_n) per group.)
//    The form reproduces wave quantisation (e.g. N=2112 leaves 4.1 waves -> 5)
//    and the poor efficiency of small K (epilogue-dominated), and it moves
//    correctly when SMs are reserved for communication (fewer SMs, more
//    waves). t0, alpha and beta are fitted by least squares (relative error)
//    to DeepGEMM's published H800 tables in the compute-bound regime; the fit
//    residuals are stored in the profile.
//    Weight-gradient GEMMs (K = tokens, accumulating into FP32 main
//    gradients) use a second fit of the same form to the published training
//    profile's weight-gradient kernels: DeepGEMM publishes forward-shaped
//    kernels only, and the training framework's weight-gradient kernels ran
//    at about half their rate. Its seven points all have K = 4096 tokens, so
//    they fix only alpha + 4096 beta: alpha is taken from the forward fit
//    (same tiles, same epilogue) and t0, beta refitted. Every fit checks its
//    rank and condition number and records them, with the parameters its
//    data cannot determine and the priors used, in its block's
//    "conditioning"; `trainsim calibrate` prints a warning for each.
//  * Attention core (BF16): executed FLOPs / (rate per SM * SMs), with a
//    forward rate (FlashMLA) and a backward rate (the published training
//    profile's FlashAttention backward).
//  * Memory-bound kernels: bytes / (hbm_efficiency * HBM peak) + t0.
//  * MoE all-to-all (dispatch/combine): logical bytes / bandwidth, with the
//    bandwidth interpolated (log of the EP degree) in DeepEP's published table,
//    scaled by the NIC (internode) or NVLink (intranode) bandwidth relative to
//    the measured system, and linearly below the SM count that saturates it.
//
// What it ignores. Clock throttling beyond what the measurements contain;
// interference between concurrent compute and communication kernels other
// than the SM split; cache effects between consecutive kernels; kernel-launch
// gaps beyond t0.
//
// Other GPUs. A profile is measured on one GPU. Applied to another GPU, the
// per-SM rates scale with the ratio of datasheet peaks per SM and the HBM
// bandwidth scales with the datasheet; the report says the profile was
// transferred, not measured.
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "trainsim/common/precision.hpp"
#include "trainsim/common/units.hpp"
#include "trainsim/hardware/gpu.hpp"

namespace trainsim::hw {

struct GemmFit {
  double t0_s = 0;        // fixed launch/setup time
  double alpha_s = 0;     // per-wave fixed cost (prologue/epilogue)
  double beta_s = 0;      // per-wave cost per element of K (128-row tile)
  int tile_n = 128;
  int small_tile_m = 64;  // tile height used when M <= small_tile_m
  int tile_m = 128;
  // false (GPUs): an edge tile costs a whole tile (the hardware computes the
  // padded tile) and tiles run in waves over the SMs. true (the CPU kernel):
  // the K-proportional work of a tile scales with how full it is, and
  // beta is per element of K of a full tile_m x tile_n tile.
  bool partial_tiles = false;
  double mean_abs_rel_error = 0;  // over the fitted points
  double max_abs_rel_error = 0;
  int points_fitted = 0;
};

struct EpPoint {
  int ep = 0;
  bool nvlink = false;      // intranode (NVLink) vs internode (RDMA)
  double dispatch_Bps = 0;  // logical bytes / s
  double combine_Bps = 0;
};

struct CalibrationProfile {
  std::string name;
  std::string gpu;          // preset name of the GPU it was measured on
  std::string origin;       // how it was produced (import, measurement)
  // Reference hardware the measurements were taken on.
  int ref_sms = 132;                 // SMs (GPU) or threads (CPU) the kernels ran on
  Precision ref_gemm_precision = Precision::FP8;  // format the GEMMs were measured in
  double ref_peak_gemm_flops = 0;    // datasheet peak of the measured device in that format
  double ref_peak_attention_flops = 0;  // datasheet peak in the attention kernels' format (BF16; FP32 on CPU)
  double ref_hbm_Bps = 0;
  // The measured device itself, when it is not a preset (a CPU calibrated
  // locally); empty name otherwise.
  GpuSpec device;
  GemmFit gemm_fp8;        // forward and input-gradient GEMMs
  GemmFit gemm_fp8_wgrad;  // weight-gradient GEMMs (K = tokens, FP32 accumulation)
  double attn_fwd_flops_per_sm = 0;  // FLOP/s per SM, forward
  double attn_bwd_flops_per_sm = 0;  // FLOP/s per SM, backward
  double attn_t0_s = 0;              // fixed time per attention kernel
  double hbm_efficiency = 0.9;
  double memory_t0_s = 2e-6;
  std::vector<EpPoint> ep_points;
  int ep_saturating_sms = 20;
  double ep_ref_nic_Bps = 50e9;
  double ep_ref_nvlink_Bps = 200e9;  // nominal per direction, like the scenario's nvlink_unidir it is compared with
  std::vector<std::string> sources;
};

// Times for one GPU with a given number of SMs available to compute kernels.
class KernelTimer {
 public:
  KernelTimer(const CalibrationProfile& profile, const GpuSpec& gpu, int compute_sms);
  // weight_gradient selects the weight-gradient fit (dW = dY^T X).
  Time gemm(std::int64_t m, std::int64_t n, std::int64_t k, std::int64_t groups,
            Precision precision, bool weight_gradient = false) const;
  Time attention(double executed_flops, bool backward) const;
  Time memory(ByteCount bytes) const;
  // All-to-all: logical bytes sent by one GPU. nic/nvlink are this system's
  // per-GPU bandwidths; comm_sms the SMs the communication kernels get.
  Time ep_dispatch(ByteCount bytes, int ep, int gpus_per_node, BytesPerSecond nic,
                   BytesPerSecond nvlink, int comm_sms) const;
  Time ep_combine(ByteCount bytes, int ep, int gpus_per_node, BytesPerSecond nic,
                  BytesPerSecond nvlink, int comm_sms) const;
  // Bandwidth the EP table gives for `ep` (exposed for reports and tests).
  double ep_bandwidth(int ep, int gpus_per_node, bool dispatch, BytesPerSecond nic,
                      BytesPerSecond nvlink, int comm_sms) const;
  int compute_sms() const { return sms_; }
  bool transferred() const { return transferred_; }

 private:
  const CalibrationProfile* p_;
  const GpuSpec* gpu_;
  int sms_;
  double per_sm_scale_;  // this GPU's FP8 peak per SM over the reference's
  double hbm_Bps_;
  bool transferred_;
};

CalibrationProfile parse_profile(const nlohmann::json& j, const std::string& file);
nlohmann::json to_json(const CalibrationProfile& p);
// Loads data/calibration/<name>.json from the embedded data, or a file path.
CalibrationProfile load_profile(const std::string& name_or_path);

}  // namespace trainsim::hw
