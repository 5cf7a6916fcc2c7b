#include "kernels/cpu/activation.h"

#include <cstdint>
#include <cstring>
#include <type_traits>

namespace ofa::kernels::cpu {

namespace {
template <Act A, class T>
void forward_loop(const T* x, T* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = act_forward_t<A>(x[i]);
}

// c ? a : b as a bit blend. A plain ternary does not vectorise here: GCC
// sinks gy * d (and x / 3) into the branches and, under the default
// -ftrapping-math, will not if-convert a conditional FP operation.
template <class T>
inline T blend(bool c, T a, T b) {
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
inline T derivative_flat(T x) {
  if constexpr (A == Act::Relu) {
    return blend(x > T(0), T(1), T(0));
  } else if constexpr (A == Act::Relu6) {
    return blend((x > T(0)) & (x < T(6)), T(1), T(0));
  } else if constexpr (A == Act::HSwish) {
    const T mid = x / T(3) + T(0.5);
    return blend(x <= T(-3), T(0), blend(x >= T(3), T(1), mid));
  } else {
    return blend((x > T(-3)) & (x < T(3)), T(1) / T(6), T(0));
  }
}

template <Act A, class T>
void backward_loop(const T* x, const T* gy, T* gx, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) gx[i] = gy[i] * derivative_flat<A>(x[i]);
}
}  // namespace

template <class T>
void activation_forward(Act a, const T* x, T* y, int64_t n) {
  switch (a) {
    case Act::Relu: return forward_loop<Act::Relu>(x, y, n);
    case Act::Relu6: return forward_loop<Act::Relu6>(x, y, n);
    case Act::HSwish: return forward_loop<Act::HSwish>(x, y, n);
    case Act::HSigmoid: return forward_loop<Act::HSigmoid>(x, y, n);
  }
}

template <class T>
void activation_backward(Act a, const T* x, const T* gy, T* gx, int64_t n) {
  switch (a) {
    case Act::Relu: return backward_loop<Act::Relu>(x, gy, gx, n);
    case Act::Relu6: return backward_loop<Act::Relu6>(x, gy, gx, n);
    case Act::HSwish: return backward_loop<Act::HSwish>(x, gy, gx, n);
    case Act::HSigmoid: return backward_loop<Act::HSigmoid>(x, gy, gx, n);
  }
}

template void activation_forward<float>(Act, const float*, float*, int64_t);
template void activation_forward<double>(Act, const double*, double*, int64_t);
template void activation_backward<float>(Act, const float*, const float*, float*, int64_t);
template void activation_backward<double>(Act, const double*, const double*, double*, int64_t);

}  // namespace ofa::kernels::cpu
