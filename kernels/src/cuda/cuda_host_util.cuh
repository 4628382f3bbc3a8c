#pragma once
// Host-side helpers shared by the CUDA translation units: error messages,
// owning handles for device memory, events and the current device, and the
// TS_CUDA macro that returns an error message from a function returning
// std::string on failure. Internal to kernels/src/cuda.
#include <cuda_runtime.h>

#include <string>

namespace trainsim::kernels::cuda_util {

inline std::string describe(const char* what, cudaError_t e) {
  return std::string(what) + " failed: CUDA error " + std::to_string(static_cast<int>(e)) + " (" +
         cudaGetErrorName(e) + ": " + cudaGetErrorString(e) + ")";
}

struct DeviceBuffer {
  void* p = nullptr;
  DeviceBuffer() = default;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() {
    if (p != nullptr) (void)cudaFree(p);
  }
  template <typename T>
  T* as() const {
    return static_cast<T*>(p);
  }
};

struct Event {
  cudaEvent_t e = nullptr;
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event() {
    if (e != nullptr) (void)cudaEventDestroy(e);
  }
};

// Restores the caller's current device when it goes out of scope.
struct CurrentDevice {
  int previous = -1;
  CurrentDevice() = default;
  CurrentDevice(const CurrentDevice&) = delete;
  CurrentDevice& operator=(const CurrentDevice&) = delete;
  ~CurrentDevice() {
    if (previous >= 0) (void)cudaSetDevice(previous);
  }
};

}  // namespace trainsim::kernels::cuda_util

#define TS_CUDA(call, what)                                                             \
  do {                                                                                  \
    const cudaError_t ts_err_ = (call);                                                 \
    if (ts_err_ != cudaSuccess) return ::trainsim::kernels::cuda_util::describe((what), ts_err_); \
  } while (0)
