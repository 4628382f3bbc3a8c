#pragma once
// Which CUDA devices this process can use, without needing CUDA headers.
//
// What it captures
//  * Whether trainsim was built with the CUDA part (TRAINSIM_HAVE_CUDA, set by
//    kernels/CMakeLists.txt to 1 or 0 for trainsim::kernels and everything that
//    links it) and, if so, what cudaGetDeviceCount / cudaGetDeviceProperties
//    report at run time: count, name, compute capability, memory.
//  * Any CUDA error (typically 35, cudaErrorInsufficientDriver, on a machine
//    with the toolkit but no driver; 100, cudaErrorNoDevice, with a driver but
//    no GPU) means "no GPU": count is 0 and `message` says why, so tests and
//    tools can skip GPU work with an explanation instead of failing.
//
// What it ignores
//  * MIG instances, device visibility rules beyond what the runtime applies
//    (CUDA_VISIBLE_DEVICES), peer access / topology, driver versions beyond
//    the error message. The binary links only the CUDA runtime (never the
//    driver library), so it starts on machines without a driver.
#include <cstddef>
#include <string>
#include <vector>

#ifndef TRAINSIM_HAVE_CUDA
#define TRAINSIM_HAVE_CUDA 0
#endif

namespace trainsim::kernels {

struct CudaDevice {
  int index = 0;
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  std::size_t total_memory_bytes = 0;
  int multiprocessors = 0;
};

struct DeviceInfo {
  bool built_with_cuda = false;
  int count = 0;                    // usable devices; 0 on any error
  std::vector<CudaDevice> devices;  // count entries
  std::string message;              // always non-empty: what was found, or why nothing
};

// True when this build contains the CUDA part.
bool built_with_cuda();

// Never throws for CUDA errors; they end up in DeviceInfo::message.
DeviceInfo query_cuda_devices();

}  // namespace trainsim::kernels
