// Activation formulas and their derivatives, shared by the CPU and CUDA kernels.
// Derivatives at the kinks are those PyTorch's autograd gives the OFA
// reference's own formulas (Hswish: x * relu6(x + 3) / 6, Hsigmoid:
// relu6(x + 3) / 6, where relu6' is 0 at 0 and 6): relu'(0) = 0,
// hswish' = 0 at -3 and 1 at 3, hsigmoid' = 0 at -3 and 3. (F.hardswish would
// give -0.5 and 1.5 there; the reference does not use it.)
//
// Identity (y = x) is the "no activation" of a fused op such as batch norm +
// activation: its instantiation is the unfused kernel.
#pragma once
#include <type_traits>

#include "engine/common.h"
#include "kernels/common/philox.h"  // OFA_HD

namespace ofa::kernels {

enum class Act : int { Relu = 0, Relu6 = 1, HSwish = 2, HSigmoid = 3, Identity = 4 };

// Compile-time activation, so that the CPU loops vectorise: one branch-free
// select per element, no switch inside the loop.
template <Act A, class T>
OFA_HD T act_forward_t(T x) {
  if constexpr (A == Act::Identity) {
    return x;
  } else if constexpr (A == Act::Relu) {
    return x > T(0) ? x : T(0);
  } else if constexpr (A == Act::Relu6) {
    const T r = x < T(0) ? T(0) : x;
    return r > T(6) ? T(6) : r;
  } else {
    T r = x + T(3);
    r = r < T(0) ? T(0) : r;
    r = r > T(6) ? T(6) : r;
    if constexpr (A == Act::HSwish) return x * r / T(6);
    else return r / T(6);
  }
}

// d act / dx at the input x.
template <Act A, class T>
OFA_HD T act_derivative_t(T x) {
  if constexpr (A == Act::Identity) {
    return T(1);
  } else if constexpr (A == Act::Relu) {
    return x > T(0) ? T(1) : T(0);
  } else if constexpr (A == Act::Relu6) {
    return (x > T(0) && x < T(6)) ? T(1) : T(0);
  } else if constexpr (A == Act::HSwish) {
    const T mid = x / T(3) + T(0.5);
    return x <= T(-3) ? T(0) : (x >= T(3) ? T(1) : mid);
  } else {
    return (x > T(-3) && x < T(3)) ? T(1) / T(6) : T(0);
  }
}

template <class T>
OFA_HD T act_forward(Act a, T x) {
  switch (a) {
    case Act::Relu: return act_forward_t<Act::Relu>(x);
    case Act::Relu6: return act_forward_t<Act::Relu6>(x);
    case Act::HSwish: return act_forward_t<Act::HSwish>(x);
    case Act::HSigmoid: return act_forward_t<Act::HSigmoid>(x);
    case Act::Identity: return x;
  }
  return x;
}

template <class T>
OFA_HD T act_derivative(Act a, T x) {
  switch (a) {
    case Act::Relu: return act_derivative_t<Act::Relu>(x);
    case Act::Relu6: return act_derivative_t<Act::Relu6>(x);
    case Act::HSwish: return act_derivative_t<Act::HSwish>(x);
    case Act::HSigmoid: return act_derivative_t<Act::HSigmoid>(x);
    case Act::Identity: return T(1);
  }
  return T(0);
}

inline const char* act_name(Act a) {
  switch (a) {
    case Act::Relu: return "relu";
    case Act::Relu6: return "relu6";
    case Act::HSwish: return "hswish";
    case Act::HSigmoid: return "hsigmoid";
    case Act::Identity: return "identity";
  }
  return "?";
}

// f(std::integral_constant<Act, A>()) for the run-time a: host code picks the
// compile-time instantiation of a kernel or loop.
template <class F>
decltype(auto) dispatch_act(Act a, F&& f) {
  switch (a) {
    case Act::Relu: return f(std::integral_constant<Act, Act::Relu>());
    case Act::Relu6: return f(std::integral_constant<Act, Act::Relu6>());
    case Act::HSwish: return f(std::integral_constant<Act, Act::HSwish>());
    case Act::HSigmoid: return f(std::integral_constant<Act, Act::HSigmoid>());
    case Act::Identity: return f(std::integral_constant<Act, Act::Identity>());
  }
  throw Error(str_cat("unknown activation ", static_cast<int>(a)));
}

}  // namespace ofa::kernels
