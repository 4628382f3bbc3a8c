#include <doctest/doctest.h>

#include "../support/skip.hpp"

#include <string>
#include <vector>

#include "trainsim/kernels/cuda_device.hpp"
#include "trainsim/kernels/nccl_bench.hpp"

using namespace trainsim::kernels;

TEST_SUITE("unit") {
TEST_CASE("nccl bus-bandwidth factors follow nccl-tests") {
  CHECK(nccl_all_reduce_bus_factor(1) == 0.0);
  CHECK(nccl_all_reduce_bus_factor(2) == doctest::Approx(1.0));
  CHECK(nccl_all_reduce_bus_factor(8) == doctest::Approx(1.75));
  CHECK(nccl_all_to_all_bus_factor(2) == doctest::Approx(0.5));
  CHECK(nccl_all_to_all_bus_factor(8) == doctest::Approx(0.875));
}

TEST_CASE("nccl_sweep refuses bad arguments with a reason") {
  const NcclSweepResult none = nccl_sweep(0, {}, 3);
  CHECK(!none.ran);
  CHECK(none.message.find("no sizes") != std::string::npos);
  const NcclSweepResult tiny = nccl_sweep(0, {2.0}, 3);
  CHECK(!tiny.ran);
  CHECK(tiny.message.find("unsupported") != std::string::npos);
  const NcclSweepResult reps = nccl_sweep(0, {1 << 20}, 0);
  CHECK(!reps.ran);
  CHECK(reps.message.find("repeats") != std::string::npos);
}

TEST_CASE("nccl_sweep says why it did not run with fewer than two GPUs") {
  const DeviceInfo info = query_cuda_devices();
  // max_gpus = 1 can never be enough, whatever the machine has.
  const NcclSweepResult one = nccl_sweep(1, {1 << 20}, 3);
  CHECK(!one.ran);
  CHECK(one.points.empty());
  if (info.count >= 2) {
    CHECK(one.message.find("at least 2") != std::string::npos);
    MESSAGE(info.count << " CUDA devices present; the gpu suite runs the sweep");
    return;
  }
  const NcclSweepResult r = nccl_sweep(0, {1 << 20, 1 << 24}, 3);
  CHECK(!r.ran);
  CHECK(r.points.empty());
  if (!built_with_cuda()) {
    CHECK(r.message.find("built without CUDA") != std::string::npos);
  } else if (r.message.find("built without NCCL") == std::string::npos) {
    // CUDA and NCCL built in: the reason is the device count (and why).
    CHECK(r.message.find("needs at least 2 CUDA devices") != std::string::npos);
    CHECK(r.message.find(info.message) != std::string::npos);
  }
  MESSAGE(r.message);
}
}

TEST_SUITE("multigpu") {
TEST_CASE("nccl_sweep measures all-reduce and all-to-all on every visible GPU") {
  const DeviceInfo info = query_cuda_devices();
  if (info.count < 2) {
    TRAINSIM_SKIP("nccl_sweep: needs >= 2 CUDA devices (" << info.message << ")");
  }
  const std::vector<double> sizes{1 << 16, 1 << 20, 1 << 24, 1 << 28};
  const NcclSweepResult r = nccl_sweep(0, sizes, 5);
  if (r.message.find("built without NCCL") != std::string::npos) {
    TRAINSIM_SKIP(r.message);
  }
  REQUIRE_MESSAGE(r.ran, r.message);
  MESSAGE(r.message);
  REQUIRE(r.points.size() == 2 * sizes.size());
  for (std::size_t i = 0; i < r.points.size(); ++i) {
    const NcclSweepPoint& p = r.points[i];
    CAPTURE(p.op);
    CAPTURE(p.bytes);
    CHECK(p.op == (i % 2 == 0 ? "all_reduce" : "all_to_all"));
    CHECK(p.bytes > 0.0);
    CHECK(p.bytes <= sizes[i / 2]);
    CHECK(p.seconds > 0.0);
    CHECK(p.algbw_GBps == doctest::Approx(p.bytes / p.seconds * 1e-9));
    CHECK(p.busbw_GBps > 0.0);
    MESSAGE(p.op << " " << p.bytes << " B: " << p.seconds * 1e6 << " us, algbw " << p.algbw_GBps << " GB/s, busbw "
                 << p.busbw_GBps << " GB/s");
  }
}
}
