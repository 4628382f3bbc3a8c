#pragma once
// CPU kernels used as the calibration and replay target on machines without a
// GPU (`trainsim calibrate --device cpu`, `trainsim replay --device cpu`).
//
// What they capture. gemm_tiled computes C = A B (row-major FP32) the way a
// GPU GEMM is organised: the output is cut into kTile x kTile tiles, each
// tile's accumulator stays in cache while the whole K dimension streams
// through it, and tiles are processed one after another by the single
// thread (one "wave" per tile). Its time therefore follows the same wave
// model the simulator uses for GPUs (t0 + tiles * (alpha + beta * K)), with
// one "SM". stream_triad is the memory-bound kernel (a = b + s * c), the
// CPU's counterpart of the elementwise, cast and norm kernels.
//
// What they ignore. Multithreading (one thread: the calibration describes a
// single CPU core, and the replay runs on one), SIMD beyond what the
// compiler auto-vectorises, and FP8/BF16 arithmetic (every format runs in
// FP32 here; the CPU profile says so).
#include <cstddef>

namespace trainsim::kernels {

inline constexpr int kCpuGemmTile = 64;

// C (m x n) = A (m x k) * B (k x n), all row-major, C overwritten.
void gemm_tiled(int m, int n, int k, const float* a, const float* b, float* c);

// a[i] = b[i] + s * c[i] for i < n: reads 8 and writes 4 bytes per element.
void stream_triad(float* a, const float* b, const float* c, float s, std::size_t n);

}  // namespace trainsim::kernels
