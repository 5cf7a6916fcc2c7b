#include "kernels/cpu/activation.h"

#include <cstdint>

namespace ofa::kernels::cpu {

namespace {
template <Act A, class T>
void forward_loop(const T* x, T* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = act_forward_t<A>(x[i]);
}

template <Act A, class T>
void backward_loop(const T* x, const T* gy, T* gx, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) gx[i] = gy[i] * act_derivative_flat<A>(x[i]);
}
}  // namespace

template <class T>
void activation_forward(Act a, const T* x, T* y, int64_t n) {
  dispatch_act(a, [&](auto A) { forward_loop<decltype(A)::value>(x, y, n); });
}

template <class T>
void activation_backward(Act a, const T* x, const T* gy, T* gx, int64_t n) {
  dispatch_act(a, [&](auto A) { backward_loop<decltype(A)::value>(x, gy, gx, n); });
}

template void activation_forward<float>(Act, const float*, float*, int64_t);
template void activation_forward<double>(Act, const double*, double*, int64_t);
template void activation_backward<float>(Act, const float*, const float*, float*, int64_t);
template void activation_backward<double>(Act, const double*, const double*, double*, int64_t);

}  // namespace ofa::kernels::cpu
