// Built instead of cuda/cuda_device.cu when CUDA is off or not found.
#include "trainsim/kernels/cuda_device.hpp"

namespace trainsim::kernels {

bool built_with_cuda() { return false; }

DeviceInfo query_cuda_devices() {
  DeviceInfo info;
  info.built_with_cuda = false;
  info.count = 0;
  info.message =
      "built without CUDA (TRAINSIM_CUDA=OFF or no nvcc found at configure time): no GPU code available";
  return info;
}

}  // namespace trainsim::kernels
