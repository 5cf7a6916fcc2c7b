// Shared by the emulated tests (include from exactly one .cpp per test
// executable): compiles the CPU emulation of CUDA into the test itself and
// prints, once per run, what the emulation cannot run.
#pragma once
#include <gtest/gtest.h>

#include <cstdio>

#include "kernels/cuda/emu/emu.cpp"  // the emulator is no part of ofa_core

namespace ofa_emu_test {

class EmulationLimits : public ::testing::Environment {
 public:
  void SetUp() override {
    std::printf("[emulated] CUDA kernels run on the CPU emulation (kernels/cuda/emu). Not emulated:\n");
    for (const std::string& s : ::ofa::emu::unsupported_features()) std::printf("[emulated]   - %s\n", s.c_str());
    std::fflush(stdout);
  }
};

inline ::testing::Environment* const g_limits = ::testing::AddGlobalTestEnvironment(new EmulationLimits);

// "what" is in the message of the ofa::Error that f throws.
template <class F>
std::string emu_error_of(F f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "<no error>";
}

}  // namespace ofa_emu_test
