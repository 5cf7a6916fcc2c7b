// Which cuDNN statuses hand a convolution geometry to the direct kernels
// (kernels/cuda/conv2d.cu) instead of raising. Host code only, GPU build
// only (needs <cudnn.h>); a header of its own so the CPU tests check it.
#pragma once
#include <cudnn.h>

namespace ofa::kernels {

// True for every status of cuDNN's "not supported" category. cuDNN 9
// returns sub-codes (3000-3999: shape, layout, padding, shared memory
// insufficient, bad launch parameter, ...) where cuDNN 8 returned
// CUDNN_STATUS_NOT_SUPPORTED alone; any of them means "not this way", and
// the direct kernels compute the same numbers. Every other failure is an
// error.
inline bool cudnn_refuses_as_not_supported(cudnnStatus_t st) {
#ifdef CUDNN_STATUS_CATEGORY
  return CUDNN_STATUS_CATEGORY(st) == CUDNN_STATUS_NOT_SUPPORTED;
#else
  return st == CUDNN_STATUS_NOT_SUPPORTED;
#endif
}

}  // namespace ofa::kernels
