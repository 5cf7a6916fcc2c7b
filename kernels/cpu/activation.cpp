#include "kernels/cpu/activation.h"

namespace ofa::kernels::cpu {

template <class T>
void activation_forward(Act a, const T* x, T* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = act_forward(a, x[i]);
}

template <class T>
void activation_backward(Act a, const T* x, const T* gy, T* gx, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) gx[i] = gy[i] * act_derivative(a, x[i]);
}

template void activation_forward<float>(Act, const float*, float*, int64_t);
template void activation_forward<double>(Act, const double*, double*, int64_t);
template void activation_backward<float>(Act, const float*, const float*, float*, int64_t);
template void activation_backward<double>(Act, const double*, const double*, double*, int64_t);

}  // namespace ofa::kernels::cpu
