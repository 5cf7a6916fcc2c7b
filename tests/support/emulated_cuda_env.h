// Included by one source of a tests/emulated_engine executable: before any
// CUDA call, the emulated backend is the CUDA device and fresh device memory
// is poisoned (NaN / 0xFF bytes), so unwritten elements show.
#pragma once
#include <gtest/gtest.h>

#include <cstdlib>

#include "engine/cuda_context.h"

namespace ofa::test {

class EmulatedCudaEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    setenv("OFA_CUDA_POISON", "1", 1);
    set_cuda_emulation(true);
  }
};
inline ::testing::Environment* const g_emulated_cuda_env =
    ::testing::AddGlobalTestEnvironment(new EmulatedCudaEnvironment);

}  // namespace ofa::test
