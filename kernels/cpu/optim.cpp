#include "kernels/cpu/optim.h"

namespace ofa::kernels::cpu {

template <class T>
void sgd_step(const SgdCoeffs<T>& c, bool first_step, T* p, const T* g, T* buf, int64_t n) {
  if (c.momentum == T(0)) {
    // No momentum buffer: hand the update a throwaway one.
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; ++i) {
      T unused = T(0);
      sgd_update(c, false, p[i], g[i], unused);
    }
    return;
  }
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) sgd_update(c, first_step, p[i], g[i], buf[i]);
}

template <class T>
void adam_step(const AdamCoeffs<T>& c, T* p, const T* g, T* exp_avg, T* exp_avg_sq, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) adam_update(c, p[i], g[i], exp_avg[i], exp_avg_sq[i]);
}

template void sgd_step<float>(const SgdCoeffs<float>&, bool, float*, const float*, float*, int64_t);
template void sgd_step<double>(const SgdCoeffs<double>&, bool, double*, const double*, double*, int64_t);
template void adam_step<float>(const AdamCoeffs<float>&, float*, const float*, float*, float*, int64_t);
template void adam_step<double>(const AdamCoeffs<double>&, double*, const double*, double*, double*, int64_t);

}  // namespace ofa::kernels::cpu
