// defines: activation_forward, activation_backward (dense arrays), act_derivative_flat
// (the derivative in a form that vectorises, for fused kernels too)
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/common/activation_math.h"

namespace ofa::kernels::cpu {

// c ? a : b as a bit blend. A plain ternary does not vectorise here: GCC
// sinks gy * d (and x / 3) into the branches and, under the default
// -ftrapping-math, will not if-convert a conditional FP operation.
template <class T>
inline T act_blend(bool c, T a, T b) {
  using U = std::conditional_t<sizeof(T) == 4, uint32_t, uint64_t>;
  const U m = U(0) - U(c);
  U ua, ub;
  std::memcpy(&ua, &a, sizeof(T));
  std::memcpy(&ub, &b, sizeof(T));
  const U r = (ua & m) | (ub & ~m);
  T out;
  std::memcpy(&out, &r, sizeof(T));
  return out;
}

// Exactly the values of act_derivative_t (kinks included), written with blends.
template <Act A, class T>
inline T act_derivative_flat(T x) {
  if constexpr (A == Act::Identity) {
    return T(1);
  } else if constexpr (A == Act::Relu) {
    return act_blend(x > T(0), T(1), T(0));
  } else if constexpr (A == Act::Relu6) {
    return act_blend((x > T(0)) & (x < T(6)), T(1), T(0));
  } else if constexpr (A == Act::HSwish) {
    const T mid = x / T(3) + T(0.5);
    return act_blend(x <= T(-3), T(0), act_blend(x >= T(3), T(1), mid));
  } else {
    return act_blend((x > T(-3)) & (x < T(3)), T(1) / T(6), T(0));
  }
}

template <class T>
void activation_forward(Act a, const T* x, T* y, int64_t n);
// gx = gy * act'(x)
template <class T>
void activation_backward(Act a, const T* x, const T* gy, T* gx, int64_t n);
}  // namespace ofa::kernels::cpu
