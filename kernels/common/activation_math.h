// Activation formulas and their derivatives, shared by the CPU and CUDA kernels.
// Derivatives at the kinks follow PyTorch (relu'(0) = 0, relu6' = 0 at 0 and 6,
// hswish' = x/3 + 0.5 on [-3, 3], hsigmoid' = 1/6 on (-3, 3)).
#pragma once
#include "kernels/common/philox.h"  // OFA_HD

namespace ofa::kernels {

enum class Act : int { Relu = 0, Relu6 = 1, HSwish = 2, HSigmoid = 3 };

template <class T>
OFA_HD T act_forward(Act a, T x) {
  switch (a) {
    case Act::Relu: return x > T(0) ? x : T(0);
    case Act::Relu6: return x < T(0) ? T(0) : (x > T(6) ? T(6) : x);
    case Act::HSwish: {
      T r = x + T(3);
      r = r < T(0) ? T(0) : (r > T(6) ? T(6) : r);
      return x * r / T(6);
    }
    case Act::HSigmoid: {
      T r = x + T(3);
      r = r < T(0) ? T(0) : (r > T(6) ? T(6) : r);
      return r / T(6);
    }
  }
  return x;
}

// d act / dx at the input x.
template <class T>
OFA_HD T act_derivative(Act a, T x) {
  switch (a) {
    case Act::Relu: return x > T(0) ? T(1) : T(0);
    case Act::Relu6: return (x > T(0) && x < T(6)) ? T(1) : T(0);
    case Act::HSwish: return x < T(-3) ? T(0) : (x > T(3) ? T(1) : x / T(3) + T(0.5));
    case Act::HSigmoid: return (x > T(-3) && x < T(3)) ? T(1) / T(6) : T(0);
  }
  return T(0);
}

}  // namespace ofa::kernels
