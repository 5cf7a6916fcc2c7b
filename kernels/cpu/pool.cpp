#include "kernels/cpu/pool.h"

#include <algorithm>
#include <vector>

namespace ofa::kernels::cpu {

namespace {
// Channel block handled by one task: lets a batch of one still use threads.
constexpr int64_t kChannelBlock = 64;
}  // namespace

template <class T>
void global_avg_pool_forward(const T* x, int64_t N, int64_t HW, int64_t C, T* out) {
  const int64_t ncb = (C + kChannelBlock - 1) / kChannelBlock;
#pragma omp parallel for schedule(static) if (N * HW * C > 32768)
  for (int64_t t = 0; t < N * ncb; ++t) {
    const int64_t n = t / ncb, c0 = (t % ncb) * kChannelBlock, c1 = std::min(C, c0 + kChannelBlock);
    double acc[kChannelBlock] = {};
    const T* xn = x + n * HW * C;
    // Four pixels per sweep (fixed pairing): the double sums are loaded and
    // stored once per four pixels.
    const int64_t w = c1 - c0;
    int64_t p = 0;
    for (; p + 4 <= HW; p += 4) {
      const T* xp = xn + p * C + c0;
#pragma omp simd
      for (int64_t c = 0; c < w; ++c)
        acc[c] += (static_cast<double>(xp[c]) + static_cast<double>(xp[C + c])) +
                  (static_cast<double>(xp[2 * C + c]) + static_cast<double>(xp[3 * C + c]));
    }
    for (; p < HW; ++p) {
      const T* xp = xn + p * C + c0;
#pragma omp simd
      for (int64_t c = 0; c < w; ++c) acc[c] += static_cast<double>(xp[c]);
    }
    for (int64_t c = c0; c < c1; ++c) out[n * C + c] = static_cast<T>(acc[c - c0] / static_cast<double>(HW));
  }
}

template <class T>
void global_avg_pool_backward(const T* gy, int64_t N, int64_t HW, int64_t C, T* gx) {
  const T hw = static_cast<T>(HW);
#pragma omp parallel for schedule(static) if (N * HW * C > 32768)
  for (int64_t r = 0; r < N * HW; ++r) {
    const T* g = gy + (r / HW) * C;
    T* o = gx + r * C;
    for (int64_t c = 0; c < C; ++c) o[c] = g[c] / hw;
  }
}

template <class T>
void dropout_apply(const T* x, const T* mask, T* y, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * mask[i];
}

template void global_avg_pool_forward<float>(const float*, int64_t, int64_t, int64_t, float*);
template void global_avg_pool_forward<double>(const double*, int64_t, int64_t, int64_t, double*);
template void global_avg_pool_backward<float>(const float*, int64_t, int64_t, int64_t, float*);
template void global_avg_pool_backward<double>(const double*, int64_t, int64_t, int64_t, double*);
template void dropout_apply<float>(const float*, const float*, float*, int64_t);
template void dropout_apply<double>(const double*, const double*, double*, int64_t);

}  // namespace ofa::kernels::cpu
