// nccl_bench.hpp: NCCL all-reduce / all-to-all sweeps in one process. Host
// code only (no kernels of its own), compiled by the C++ compiler in every
// configuration. The NCCL part is compiled when kernels/CMakeLists.txt found
// NCCL (TRAINSIM_HAVE_NCCL=1 on this source file, CUDA build only);
// otherwise nccl_sweep validates its arguments and says what is missing.
#include "trainsim/kernels/nccl_bench.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "trainsim/kernels/cuda_device.hpp"

#ifndef TRAINSIM_HAVE_NCCL
#define TRAINSIM_HAVE_NCCL 0
#endif

#if TRAINSIM_HAVE_CUDA && TRAINSIM_HAVE_NCCL
#include <cuda_runtime.h>
#include <nccl.h>
#endif

namespace trainsim::kernels {

double nccl_all_reduce_bus_factor(int n) { return n < 2 ? 0.0 : 2.0 * (n - 1) / n; }
double nccl_all_to_all_bus_factor(int n) { return n < 2 ? 0.0 : static_cast<double>(n - 1) / n; }

namespace {

std::string check_args(const std::vector<double>& sizes_bytes, int repeats) {
  if (sizes_bytes.empty()) return "no sizes given";
  for (const double b : sizes_bytes) {
    if (!std::isfinite(b) || b < 4.0 || b > 1e12) {
      return fmt::format("size {} bytes unsupported: each size must be in [4, 1e12] bytes", b);
    }
  }
  if (repeats < 1) return fmt::format("repeats must be >= 1 (got {})", repeats);
  return {};
}

#if TRAINSIM_HAVE_CUDA && TRAINSIM_HAVE_NCCL

std::string cuda_error(const char* what, cudaError_t e) {
  return fmt::format("{} failed: CUDA error {} ({}: {})", what, static_cast<int>(e), cudaGetErrorName(e),
                     cudaGetErrorString(e));
}
std::string nccl_error(const char* what, ncclResult_t e) {
  return fmt::format("{} failed: NCCL error {} ({})", what, static_cast<int>(e), ncclGetErrorString(e));
}

// Everything one sweep allocates, released on every exit path.
struct Rig {
  std::vector<int> devices;
  std::vector<ncclComm_t> comms;
  std::vector<cudaStream_t> streams;
  std::vector<float*> send, recv;
  std::vector<cudaEvent_t> start, stop;
  bool comms_ok = false;

  Rig() = default;
  Rig(const Rig&) = delete;
  Rig& operator=(const Rig&) = delete;
  ~Rig() {
    for (std::size_t i = 0; i < devices.size(); ++i) {
      (void)cudaSetDevice(devices[i]);
      if (i < streams.size() && streams[i] != nullptr) (void)cudaStreamSynchronize(streams[i]);
      if (comms_ok && comms[i] != nullptr) (void)ncclCommDestroy(comms[i]);
      if (i < send.size() && send[i] != nullptr) (void)cudaFree(send[i]);
      if (i < recv.size() && recv[i] != nullptr) (void)cudaFree(recv[i]);
      if (i < start.size() && start[i] != nullptr) (void)cudaEventDestroy(start[i]);
      if (i < stop.size() && stop[i] != nullptr) (void)cudaEventDestroy(stop[i]);
      if (i < streams.size() && streams[i] != nullptr) (void)cudaStreamDestroy(streams[i]);
    }
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// One collective on every rank (elements: FP32 elements per rank and buffer
// for all-reduce; per peer for all-to-all), enqueued in one NCCL group.
std::string enqueue(Rig& rig, bool all_to_all, std::size_t elements) {
  const int n = static_cast<int>(rig.devices.size());
  ncclResult_t r = ncclGroupStart();
  if (r != ncclSuccess) return nccl_error("ncclGroupStart", r);
  std::string err;
  for (int i = 0; i < n && err.empty(); ++i) {
    if (!all_to_all) {
      r = ncclAllReduce(rig.send[i], rig.recv[i], elements, ncclFloat, ncclSum, rig.comms[i], rig.streams[i]);
      if (r != ncclSuccess) err = nccl_error("ncclAllReduce", r);
      continue;
    }
    for (int peer = 0; peer < n && err.empty(); ++peer) {
      const std::size_t off = static_cast<std::size_t>(peer) * elements;
      if ((r = ncclSend(rig.send[i] + off, elements, ncclFloat, peer, rig.comms[i], rig.streams[i])) != ncclSuccess) {
        err = nccl_error("ncclSend", r);
      } else if ((r = ncclRecv(rig.recv[i] + off, elements, ncclFloat, peer, rig.comms[i], rig.streams[i])) !=
                 ncclSuccess) {
        err = nccl_error("ncclRecv", r);
      }
    }
  }
  r = ncclGroupEnd();
  if (err.empty() && r != ncclSuccess) err = nccl_error("ncclGroupEnd", r);
  return err;
}

// Median over `repeats` of the slowest rank's event time for one collective.
std::string time_op(Rig& rig, bool all_to_all, std::size_t elements, int repeats, double& seconds) {
  const std::size_t n = rig.devices.size();
  cudaError_t e = cudaSuccess;
  if (std::string err = enqueue(rig, all_to_all, elements); !err.empty()) return "warm-up: " + err;
  for (std::size_t i = 0; i < n; ++i) {
    if ((e = cudaSetDevice(rig.devices[i])) != cudaSuccess) return cuda_error("cudaSetDevice", e);
    if ((e = cudaStreamSynchronize(rig.streams[i])) != cudaSuccess) return cuda_error("warm-up run", e);
  }
  std::vector<double> times;
  for (int rep = 0; rep < repeats; ++rep) {
    for (std::size_t i = 0; i < n; ++i) {
      if ((e = cudaSetDevice(rig.devices[i])) != cudaSuccess) return cuda_error("cudaSetDevice", e);
      if ((e = cudaEventRecord(rig.start[i], rig.streams[i])) != cudaSuccess) return cuda_error("cudaEventRecord", e);
    }
    if (std::string err = enqueue(rig, all_to_all, elements); !err.empty()) return err;
    double slowest = 0.0;
    for (std::size_t i = 0; i < n; ++i) {
      if ((e = cudaSetDevice(rig.devices[i])) != cudaSuccess) return cuda_error("cudaSetDevice", e);
      if ((e = cudaEventRecord(rig.stop[i], rig.streams[i])) != cudaSuccess) return cuda_error("cudaEventRecord", e);
    }
    for (std::size_t i = 0; i < n; ++i) {
      if ((e = cudaSetDevice(rig.devices[i])) != cudaSuccess) return cuda_error("cudaSetDevice", e);
      if ((e = cudaEventSynchronize(rig.stop[i])) != cudaSuccess) return cuda_error("collective run", e);
      float ms = 0.0f;
      if ((e = cudaEventElapsedTime(&ms, rig.start[i], rig.stop[i])) != cudaSuccess) {
        return cuda_error("cudaEventElapsedTime", e);
      }
      slowest = std::max(slowest, static_cast<double>(ms) * 1e-3);
    }
    times.push_back(slowest);
  }
  seconds = median(times);
  return {};
}

std::string sweep(const std::vector<int>& devices, const std::vector<double>& sizes_bytes, int repeats,
                  std::vector<NcclSweepPoint>& points) {
  const int n = static_cast<int>(devices.size());
  Rig rig;
  rig.devices = devices;
  rig.comms.assign(devices.size(), nullptr);
  rig.streams.assign(devices.size(), nullptr);
  rig.send.assign(devices.size(), nullptr);
  rig.recv.assign(devices.size(), nullptr);
  rig.start.assign(devices.size(), nullptr);
  rig.stop.assign(devices.size(), nullptr);

  double max_bytes = 0.0;
  for (const double b : sizes_bytes) max_bytes = std::max(max_bytes, b);
  const std::size_t buffer_bytes = static_cast<std::size_t>(max_bytes) / sizeof(float) * sizeof(float) +
                                   static_cast<std::size_t>(n) * sizeof(float);  // room for >= 1 element per peer
  cudaError_t e = cudaSuccess;
  for (int i = 0; i < n; ++i) {
    if ((e = cudaSetDevice(devices[i])) != cudaSuccess) return cuda_error("cudaSetDevice", e);
    if ((e = cudaStreamCreateWithFlags(&rig.streams[i], cudaStreamNonBlocking)) != cudaSuccess) {
      return cuda_error("cudaStreamCreate", e);
    }
    if ((e = cudaMalloc(reinterpret_cast<void**>(&rig.send[i]), buffer_bytes)) != cudaSuccess) {
      return cuda_error("cudaMalloc(send)", e);
    }
    if ((e = cudaMalloc(reinterpret_cast<void**>(&rig.recv[i]), buffer_bytes)) != cudaSuccess) {
      return cuda_error("cudaMalloc(recv)", e);
    }
    if ((e = cudaMemset(rig.send[i], 0, buffer_bytes)) != cudaSuccess) return cuda_error("cudaMemset", e);
    if ((e = cudaEventCreate(&rig.start[i])) != cudaSuccess) return cuda_error("cudaEventCreate", e);
    if ((e = cudaEventCreate(&rig.stop[i])) != cudaSuccess) return cuda_error("cudaEventCreate", e);
  }
  if (const ncclResult_t r = ncclCommInitAll(rig.comms.data(), n, devices.data()); r != ncclSuccess) {
    return nccl_error("ncclCommInitAll", r);
  }
  rig.comms_ok = true;

  for (const double size : sizes_bytes) {
    const std::size_t ar_elems = std::max<std::size_t>(1, static_cast<std::size_t>(size) / sizeof(float));
    const std::size_t a2a_elems =
        std::max<std::size_t>(1, static_cast<std::size_t>(size) / sizeof(float) / static_cast<std::size_t>(n));
    for (const bool all_to_all : {false, true}) {
      const std::size_t elements = all_to_all ? a2a_elems : ar_elems;
      NcclSweepPoint pt;
      pt.op = all_to_all ? "all_to_all" : "all_reduce";
      pt.bytes = static_cast<double>(elements * sizeof(float) * (all_to_all ? static_cast<std::size_t>(n) : 1u));
      if (std::string err = time_op(rig, all_to_all, elements, repeats, pt.seconds); !err.empty()) {
        return fmt::format("{} of {} bytes: {}", pt.op, pt.bytes, err);
      }
      pt.algbw_GBps = pt.seconds > 0.0 ? pt.bytes / pt.seconds * 1e-9 : 0.0;
      pt.busbw_GBps = pt.algbw_GBps * (all_to_all ? nccl_all_to_all_bus_factor(n) : nccl_all_reduce_bus_factor(n));
      points.push_back(pt);
    }
  }
  return {};
}

#endif

}  // namespace

#if TRAINSIM_HAVE_CUDA && TRAINSIM_HAVE_NCCL
NcclSweepResult nccl_sweep(int max_gpus, const std::vector<double>& sizes_bytes, int repeats) {
  NcclSweepResult res;
  if (const std::string why = check_args(sizes_bytes, repeats); !why.empty()) {
    res.message = "nccl_sweep: " + why;
    return res;
  }
  const DeviceInfo info = query_cuda_devices();
  const int n = max_gpus > 0 ? std::min(max_gpus, info.count) : info.count;
  if (n < 2) {
    res.message = fmt::format("nccl_sweep: needs at least 2 CUDA devices, {} usable (max_gpus {}; {})", n, max_gpus,
                              info.message);
    return res;
  }
  std::vector<int> devices;
  for (int i = 0; i < n; ++i) devices.push_back(info.devices[static_cast<std::size_t>(i)].index);
  int version = 0;
  (void)ncclGetVersion(&version);
  int previous = 0;
  const bool restore = cudaGetDevice(&previous) == cudaSuccess;
  const std::string err = sweep(devices, sizes_bytes, repeats, res.points);
  if (restore) (void)cudaSetDevice(previous);
  if (!err.empty()) {
    (void)cudaGetLastError();
    res.points.clear();
    res.message = "nccl_sweep: " + err;
    return res;
  }
  res.ran = true;
  res.message = fmt::format("nccl_sweep: NCCL {} over {} GPUs ({}), {} sizes x 2 ops, median of {} runs", version, n,
                            info.devices.front().name, sizes_bytes.size(), repeats);
  return res;
}
#else
NcclSweepResult nccl_sweep(int, const std::vector<double>& sizes_bytes, int repeats) {
  NcclSweepResult res;
  if (const std::string why = check_args(sizes_bytes, repeats); !why.empty()) {
    res.message = "nccl_sweep: " + why;
    return res;
  }
#if TRAINSIM_HAVE_CUDA
  res.message = "nccl_sweep: built without NCCL (nccl.h / libnccl not found next to the CUDA toolkit at configure time)";
#else
  res.message = "nccl_sweep: built without CUDA (TRAINSIM_CUDA=OFF or no nvcc found at configure time)";
#endif
  return res;
}
#endif

}  // namespace trainsim::kernels
