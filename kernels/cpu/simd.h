// Fixed-width SIMD vectors for the CPU kernels through GCC's vector
// extension: 32 bytes (one AVX2 register), so the same code serves float
// (8 lanes) and double (4 lanes), and degrades to narrower registers when AVX
// is not enabled.
#pragma once
#include <cstdint>

namespace ofa::kernels::cpu {

template <class T>
struct Vec;
template <>
struct Vec<float> {
  typedef float type __attribute__((vector_size(32)));
  static constexpr int64_t n = 8;
};
template <>
struct Vec<double> {
  typedef double type __attribute__((vector_size(32)));
  static constexpr int64_t n = 4;
};

}  // namespace ofa::kernels::cpu
