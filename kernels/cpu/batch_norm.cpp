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
  // One pass over x: sums of d = x - K and d * d in double, shifted by a
  // sample K of each channel (the first row) so that the squares stay of the
  // order of the spread: var = E[d^2] - E[d]^2 has no catastrophic
  // cancellation even when |mean| is large against the spread.
  std::vector<double> shift(static_cast<size_t>(C), 0.0), sums(static_cast<size_t>(2 * C));
  if (M > 0)
    for (int64_t c = 0; c < C; ++c) shift[c] = static_cast<double>(x[c]);
  const double* k = shift.data();
  blocked_channel_sums(
      M, C, 2 * C,
      [&](int64_t r0, int64_t r1, double* acc) {
        double* a1 = acc;
        double* a2 = acc + C;
        // Four rows per sweep: the partial sums are loaded and stored once
        // per four rows (the pairing order is fixed, so still deterministic).
        int64_t r = r0;
        for (; r + 4 <= r1; r += 4) {
          const T* p = x + r * C;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) {
            const double d0 = static_cast<double>(p[c]) - k[c], d1 = static_cast<double>(p[C + c]) - k[c];
            const double d2 = static_cast<double>(p[2 * C + c]) - k[c], d3 = static_cast<double>(p[3 * C + c]) - k[c];
            a1[c] += (d0 + d1) + (d2 + d3);
            a2[c] += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3);
          }
        }
        for (; r < r1; ++r) {
          const T* p = x + r * C;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) {
            const double d = static_cast<double>(p[c]) - k[c];
            a1[c] += d;
            a2[c] += d * d;
          }
        }
      },
      sums.data());
  const double inv_m = 1.0 / static_cast<double>(M);
  for (int64_t c = 0; c < C; ++c) {
    const double m1 = sums[c] * inv_m;
    mean[c] = k[c] + m1;
    var[c] = std::max(0.0, sums[C + c] * inv_m - m1 * m1);
  }
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
          double* a1 = acc;
          double* a2 = acc + C;
          const double* mu = mean;
          int64_t r = r0;
          // Four rows per sweep, as in bn_batch_stats.
          for (; r + 4 <= r1; r += 4) {
            const T* xr = x + r * C;
            const T* gr = gy + r * C;
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) {
              const double g0 = static_cast<double>(gr[c]), g1 = static_cast<double>(gr[C + c]);
              const double g2 = static_cast<double>(gr[2 * C + c]), g3 = static_cast<double>(gr[3 * C + c]);
              a1[c] += (g0 + g1) + (g2 + g3);
              a2[c] += (g0 * (static_cast<double>(xr[c]) - mu[c]) + g1 * (static_cast<double>(xr[C + c]) - mu[c])) +
                       (g2 * (static_cast<double>(xr[2 * C + c]) - mu[c]) +
                        g3 * (static_cast<double>(xr[3 * C + c]) - mu[c]));
            }
          }
          for (; r < r1; ++r) {
            const T* xr = x + r * C;
            const T* gr = gy + r * C;
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) {
              const double g = static_cast<double>(gr[c]);
              a1[c] += g;
              a2[c] += g * (static_cast<double>(xr[c]) - mu[c]);
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
