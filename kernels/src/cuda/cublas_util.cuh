#pragma once
// cuBLAS / cuBLASLt error messages and the TS_BLAS macro (returns the message
// from a function returning std::string on failure). Internal to
// kernels/src/cuda; cuBLASLt reports the same cublasStatus_t values.
#include <cublas_v2.h>

#include <string>

namespace trainsim::kernels::cuda_util {

inline std::string describe(const char* what, cublasStatus_t s) {
  return std::string(what) + " failed: cuBLAS status " + std::to_string(static_cast<int>(s)) + " (" +
         cublasGetStatusName(s) + ")";
}

}  // namespace trainsim::kernels::cuda_util

#define TS_BLAS(call, what)                                                                     \
  do {                                                                                          \
    const cublasStatus_t ts_status_ = (call);                                                   \
    if (ts_status_ != CUBLAS_STATUS_SUCCESS)                                                    \
      return ::trainsim::kernels::cuda_util::describe((what), ts_status_);                      \
  } while (0)
