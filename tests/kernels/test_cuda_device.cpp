#include <doctest/doctest.h>

#include "../support/skip.hpp"

#include "trainsim/kernels/cuda_device.hpp"

using namespace trainsim::kernels;

TEST_SUITE("unit") {
TEST_CASE("query_cuda_devices always explains itself") {
  const DeviceInfo info = query_cuda_devices();
  CHECK(!info.message.empty());
  CHECK(info.built_with_cuda == built_with_cuda());
  CHECK(built_with_cuda() == (TRAINSIM_HAVE_CUDA != 0));
  CHECK(info.count >= 0);
  CHECK(info.count == static_cast<int>(info.devices.size()));
  if (!info.built_with_cuda) {
    CHECK(info.count == 0);
    CHECK(info.message.find("built without CUDA") != std::string::npos);
  } else if (info.count == 0) {
    CHECK(info.message.find("no CUDA device") != std::string::npos);
  }
}
}

TEST_SUITE("gpu") {
TEST_CASE("CUDA devices are visible (skips when there are none)") {
  const DeviceInfo info = query_cuda_devices();
  if (info.count == 0) {
    TRAINSIM_SKIP("GPU checks: " << info.message);
  }
  MESSAGE(info.message);
  for (const CudaDevice& d : info.devices) {
    CHECK(!d.name.empty());
    CHECK(d.compute_major >= 1);
    CHECK(d.total_memory_bytes > 0);
  }
}
}
