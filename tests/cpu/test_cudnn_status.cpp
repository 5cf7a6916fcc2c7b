// The cuDNN statuses that send a convolution geometry to the direct kernels
// (kernels/cuda/cudnn_status.h): the whole "not supported" category of
// cuDNN 9, and nothing else. Host code: runs wherever the GPU build is made.
#include <gtest/gtest.h>

#ifdef OFA_WITH_CUDA
#include "kernels/cuda/cudnn_status.h"
#endif

namespace {

TEST(CudnnStatus, EveryNotSupportedSubCodeFallsBackAndNothingElse) {
#ifndef OFA_WITH_CUDA
  GTEST_SKIP() << "SKIPPED: built without CUDA (no cuDNN headers)";
#else
  using ofa::kernels::cudnn_refuses_as_not_supported;
  EXPECT_TRUE(cudnn_refuses_as_not_supported(CUDNN_STATUS_NOT_SUPPORTED));
  EXPECT_TRUE(cudnn_refuses_as_not_supported(CUDNN_STATUS_NOT_SUPPORTED_SHAPE));
  EXPECT_TRUE(cudnn_refuses_as_not_supported(CUDNN_STATUS_NOT_SUPPORTED_LAYOUT));
#if CUDNN_MAJOR >= 9
  // The sub-codes a plain list of four missed.
  EXPECT_TRUE(cudnn_refuses_as_not_supported(CUDNN_STATUS_NOT_SUPPORTED_GRAPH_PATTERN));
  EXPECT_TRUE(cudnn_refuses_as_not_supported(CUDNN_STATUS_NOT_SUPPORTED_SHARED_MEMORY_INSUFFICIENT));
  EXPECT_TRUE(cudnn_refuses_as_not_supported(CUDNN_STATUS_NOT_SUPPORTED_PADDING));
  EXPECT_TRUE(cudnn_refuses_as_not_supported(CUDNN_STATUS_NOT_SUPPORTED_BAD_LAUNCH_PARAM));
  EXPECT_FALSE(cudnn_refuses_as_not_supported(CUDNN_STATUS_BAD_PARAM_NULL_POINTER));
  EXPECT_FALSE(cudnn_refuses_as_not_supported(CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED));
  EXPECT_FALSE(cudnn_refuses_as_not_supported(CUDNN_STATUS_EXECUTION_FAILED_CUDA_DRIVER));
#endif
  EXPECT_FALSE(cudnn_refuses_as_not_supported(CUDNN_STATUS_SUCCESS));
  EXPECT_FALSE(cudnn_refuses_as_not_supported(CUDNN_STATUS_BAD_PARAM));
  EXPECT_FALSE(cudnn_refuses_as_not_supported(CUDNN_STATUS_EXECUTION_FAILED));
#endif
}

}  // namespace
