// Checks every CUDA runtime call: file, line and the runtime's own message.
#pragma once
#ifdef OFA_WITH_CUDA
#include <cuda_runtime.h>

#include "engine/common.h"

#define OFA_CUDA_CHECK(call)                                                                          \
  do {                                                                                                \
    cudaError_t ofa_err_ = (call);                                                                    \
    if (ofa_err_ != cudaSuccess)                                                                      \
      throw ::ofa::Error(::ofa::str_cat(__FILE__, ":", __LINE__, ": ", #call, " failed: ",           \
                                        cudaGetErrorName(ofa_err_), " (", cudaGetErrorString(ofa_err_), ")")); \
  } while (0)
#endif
