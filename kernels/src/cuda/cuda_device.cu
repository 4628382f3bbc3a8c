// CUDA runtime device query. Links CUDA::cudart only (never the driver
// library), so binaries start and report "no device" on driver-less machines.
#include <cuda_runtime.h>

#include <string>

#include "trainsim/kernels/cuda_device.hpp"

namespace trainsim::kernels {
namespace {

std::string describe(cudaError_t err) {
  return "error " + std::to_string(static_cast<int>(err)) + " (" + cudaGetErrorName(err) + ": " +
         cudaGetErrorString(err) + ")";
}

}  // namespace

bool built_with_cuda() { return true; }

DeviceInfo query_cuda_devices() {
  DeviceInfo info;
  info.built_with_cuda = true;
  int n = 0;  // cudaGetDeviceCount leaves it unwritten on error (e.g. no driver)
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky-free error state
    info.count = 0;
    info.message = "no CUDA device: cudaGetDeviceCount returned " + describe(err);
    if (err == cudaErrorInsufficientDriver) info.message += "; no usable NVIDIA driver on this machine";
    return info;
  }
  if (n <= 0) {
    info.count = 0;
    info.message = "no CUDA device: cudaGetDeviceCount returned 0 devices";
    return info;
  }
  for (int d = 0; d < n; ++d) {
    cudaDeviceProp p{};
    const cudaError_t e = cudaGetDeviceProperties(&p, d);
    if (e != cudaSuccess) {
      (void)cudaGetLastError();
      info.devices.clear();
      info.count = 0;
      info.message = "no CUDA device: cudaGetDeviceProperties(" + std::to_string(d) + ") returned " + describe(e);
      return info;
    }
    CudaDevice dev;
    dev.index = d;
    dev.name = p.name;
    dev.compute_major = p.major;
    dev.compute_minor = p.minor;
    dev.total_memory_bytes = p.totalGlobalMem;
    dev.multiprocessors = p.multiProcessorCount;
    info.devices.push_back(dev);
  }
  info.count = static_cast<int>(info.devices.size());
  info.message = std::to_string(info.count) + " CUDA device(s):";
  for (const CudaDevice& d : info.devices) {
    info.message += " [" + std::to_string(d.index) + "] " + d.name + " (sm_" + std::to_string(d.compute_major) +
                    std::to_string(d.compute_minor) + ", " +
                    std::to_string(d.total_memory_bytes / (1024 * 1024)) + " MiB)";
  }
  return info;
}

}  // namespace trainsim::kernels
