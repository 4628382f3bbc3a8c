#pragma once
// Small dense FP32 matrix helpers shared by the CPU reference kernels (MoE,
// attention): three GEMM shapes over row-major matrices with leading
// dimensions, plus the SwiGLU activation.
//
// What it captures
//  * C (m x n) = A * B, A * B^T and A^T * B, optionally accumulating into C
//    (C += ...). Each operand has a leading dimension (row stride in floats),
//    so a head or an expert block inside a larger tensor can be used in place
//    (e.g. head h of a [seq, heads, d] tensor is data + h*d with ld heads*d).
//  * The loops are the CPU calibration target, so they are written to be
//    reasonably fast on one core: one i-k-j kernel blocked over k (128) and j
//    (256) so that a block of B stays in L2 and a strip of a C row in L1, four
//    rows of C per pass (each loaded B row feeds four FMA streams), and a
//    contiguous innermost loop the compiler vectorises. A * B^T and A^T * B
//    pack the transposed operand once (O(size) extra work) and reuse that
//    kernel.
//
// What it ignores
//  * Threads, explicit SIMD intrinsics, architecture-specific tuning, alpha /
//    beta other than 1 / {0, 1}: it is a clear reference, not a BLAS.
//  * Floating-point summation order differs from a naive dot product (sums
//    run in k-blocks); results agree with double references to FP32 rounding.
//
// Tested through the MoE and attention tests (which compare against naive
// double-precision loops) and directly in test_moe.cpp ("tensor helpers").
#include <cmath>

namespace trainsim::kernels {

// C (m x n, ldc) = [C +] A (m x k, lda) * B (k x n, ldb).
void gemm_nn(int m, int n, int k, const float* a, int lda, const float* b, int ldb, float* c, int ldc,
             bool accumulate = false);

// C (m x n, ldc) = [C +] A (m x k, lda) * B^T, B is n x k (ldb).
void gemm_nt(int m, int n, int k, const float* a, int lda, const float* b, int ldb, float* c, int ldc,
             bool accumulate = false);

// C (m x n, ldc) = [C +] A^T * B, A is k x m (lda), B is k x n (ldb).
void gemm_tn(int m, int n, int k, const float* a, int lda, const float* b, int ldb, float* c, int ldc,
             bool accumulate = false);

// SiLU (swish): x * sigmoid(x), and its derivative.
inline float silu(float x) { return x / (1.0f + std::exp(-x)); }
inline float silu_grad(float x) {
  const float s = 1.0f / (1.0f + std::exp(-x));
  return s * (1.0f + x * (1.0f - s));
}

}  // namespace trainsim::kernels
