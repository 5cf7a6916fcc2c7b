#include "kernels/cpu/batch_norm.h"

#include <algorithm>
#include <vector>

#include "kernels/common/bn_math.h"

namespace ofa::kernels::cpu {

namespace {

// At most this many row blocks; the blocking depends on M only, never on the
// thread count, which keeps the reductions deterministic.
constexpr int64_t kMaxBlocks = 128;

// out[j] = sum over row blocks (in block order) of the block's partial sums;
// block_fn(r0, r1, part) adds rows [r0, r1) into part[0 .. width).
template <class F>
void blocked_channel_sums(int64_t M, int64_t C, int64_t width, F&& block_fn, double* out) {
  const int64_t rows_per = std::max<int64_t>(1, (M + kMaxBlocks - 1) / kMaxBlocks);
  const int64_t nb = (M + rows_per - 1) / rows_per;
  std::vector<double> part(static_cast<size_t>(nb * width), 0.0);
#pragma omp parallel for schedule(static) if (M * C > 32768)
  for (int64_t b = 0; b < nb; ++b) block_fn(b * rows_per, std::min(M, (b + 1) * rows_per), part.data() + b * width);
  for (int64_t j = 0; j < width; ++j) {
    double s = 0.0;
    for (int64_t b = 0; b < nb; ++b) s += part[b * width + j];
    out[j] = s;
  }
}

}  // namespace

template <class T>
void bn_batch_stats(const T* x, int64_t M, int64_t C, double* mean, double* var) {
  blocked_channel_sums(
      M, C, C,
      [&](int64_t r0, int64_t r1, double* acc) {
        for (int64_t r = r0; r < r1; ++r) {
          const T* p = x + r * C;
          for (int64_t c = 0; c < C; ++c) acc[c] += static_cast<double>(p[c]);
        }
      },
      mean);
  for (int64_t c = 0; c < C; ++c) mean[c] /= static_cast<double>(M);
  // Second pass around the mean: no cancellation of large squares.
  blocked_channel_sums(
      M, C, C,
      [&](int64_t r0, int64_t r1, double* acc) {
        for (int64_t r = r0; r < r1; ++r) {
          const T* p = x + r * C;
          for (int64_t c = 0; c < C; ++c) {
            const double d = static_cast<double>(p[c]) - mean[c];
            acc[c] += d * d;
          }
        }
      },
      var);
  for (int64_t c = 0; c < C; ++c) var[c] /= static_cast<double>(M);
}

template <class T>
void bn_update_running(T* rm, int64_t rms, T* rv, int64_t rvs, const double* mean, const double* var, int64_t C,
                       int64_t n, double momentum) {
  for (int64_t c = 0; c < C; ++c) {
    rm[c * rms] = static_cast<T>(bn_running_mean(static_cast<double>(rm[c * rms]), mean[c], momentum));
    rv[c * rvs] = static_cast<T>(bn_running_var(static_cast<double>(rv[c * rvs]), var[c], n, momentum));
  }
}

template <class T>
void bn_forward(const T* x, int64_t M, int64_t C, const double* mean, const double* invstd, const T* w, int64_t ws,
                const T* b, int64_t bs, T* y) {
  std::vector<T> mu(C), scale(C), shift(C);
  for (int64_t c = 0; c < C; ++c) {
    mu[c] = static_cast<T>(mean[c]);
    scale[c] = static_cast<T>(invstd[c] * (w ? static_cast<double>(w[c * ws]) : 1.0));
    shift[c] = b ? b[c * bs] : T(0);
  }
  const T* pm = mu.data();
  const T* ps = scale.data();
  const T* pb = shift.data();
#pragma omp parallel for schedule(static) if (M * C > 32768)
  for (int64_t r = 0; r < M; ++r) {
    const T* xr = x + r * C;
    T* yr = y + r * C;
    for (int64_t c = 0; c < C; ++c) yr[c] = bn_apply(xr[c], pm[c], ps[c], pb[c]);
  }
}

template <class T>
void bn_backward(const T* x, const T* gy, int64_t M, int64_t C, const double* mean, const double* invstd, const T* w,
                 int64_t ws, bool training, T* gx, T* gw, T* gb) {
  // sums[c] = sum gy, sums[C + c] = sum gy * (x - mean).
  std::vector<double> sums(2 * C, 0.0);
  if (training || gw || gb) {
    blocked_channel_sums(
        M, C, 2 * C,
        [&](int64_t r0, int64_t r1, double* acc) {
          for (int64_t r = r0; r < r1; ++r) {
            const T* xr = x + r * C;
            const T* gr = gy + r * C;
            for (int64_t c = 0; c < C; ++c) {
              const double g = static_cast<double>(gr[c]);
              acc[c] += g;
              acc[C + c] += g * (static_cast<double>(xr[c]) - mean[c]);
            }
          }
        },
        sums.data());
  }
  for (int64_t c = 0; c < C; ++c) {
    if (gb) gb[c] = static_cast<T>(sums[c]);
    if (gw) gw[c] = static_cast<T>(sums[C + c] * invstd[c]);
  }
  if (!gx) return;
  std::vector<T> mu(C), scale(C), gmean(C), k(C);
  for (int64_t c = 0; c < C; ++c) {
    mu[c] = static_cast<T>(mean[c]);
    scale[c] = static_cast<T>(invstd[c] * (w ? static_cast<double>(w[c * ws]) : 1.0));
    gmean[c] = static_cast<T>(sums[c] / static_cast<double>(M));
    k[c] = static_cast<T>(sums[C + c] / static_cast<double>(M) * invstd[c] * invstd[c]);
  }
  const T *pm = mu.data(), *ps = scale.data(), *pg = gmean.data(), *pk = k.data();
#pragma omp parallel for schedule(static) if (M * C > 32768)
  for (int64_t r = 0; r < M; ++r) {
    const T* xr = x + r * C;
    const T* gr = gy + r * C;
    T* out = gx + r * C;
    if (training) {
      for (int64_t c = 0; c < C; ++c) out[c] = bn_backward_train(gr[c], xr[c], pm[c], pg[c], pk[c], ps[c]);
    } else {
      for (int64_t c = 0; c < C; ++c) out[c] = gr[c] * ps[c];
    }
  }
}

#define OFA_INSTANTIATE_BN(T)                                                                                   \
  template void bn_batch_stats<T>(const T*, int64_t, int64_t, double*, double*);                                \
  template void bn_update_running<T>(T*, int64_t, T*, int64_t, const double*, const double*, int64_t, int64_t,  \
                                     double);                                                                   \
  template void bn_forward<T>(const T*, int64_t, int64_t, const double*, const double*, const T*, int64_t,     \
                              const T*, int64_t, T*);                                                           \
  template void bn_backward<T>(const T*, const T*, int64_t, int64_t, const double*, const double*, const T*,   \
                               int64_t, bool, T*, T*, T*);
OFA_INSTANTIATE_BN(float)
OFA_INSTANTIATE_BN(double)
#undef OFA_INSTANTIATE_BN

}  // namespace ofa::kernels::cpu
