#include "kernels/cpu/batch_norm.h"

#include <algorithm>
#include <vector>

#include "kernels/common/bn_math.h"
#include "kernels/cpu/activation.h"

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

namespace {

// The per-channel coefficients of the elementwise parts, formed in double and
// rounded to T: z = bn_apply(x, mu, scale, shift).
template <class T>
struct Affine {
  std::vector<T> mu, scale, shift;
  Affine(int64_t C, const double* mean, const double* invstd, const T* w, int64_t ws, const T* b, int64_t bs)
      : mu(C), scale(C), shift(C) {
    for (int64_t c = 0; c < C; ++c) {
      mu[c] = static_cast<T>(mean[c]);
      scale[c] = static_cast<T>(invstd[c] * (w ? static_cast<double>(w[c * ws]) : 1.0));
      shift[c] = b ? b[c * bs] : T(0);
    }
  }
};

template <Act A, class T>
void forward_rows(const T* x, int64_t M, int64_t C, const Affine<T>& f, T* y) {
  const T* pm = f.mu.data();
  const T* ps = f.scale.data();
  const T* pb = f.shift.data();
#pragma omp parallel for schedule(static) if (M * C > 32768)
  for (int64_t r = 0; r < M; ++r) {
    const T* xr = x + r * C;
    T* yr = y + r * C;
    for (int64_t c = 0; c < C; ++c) yr[c] = act_forward_t<A>(bn_apply(xr[c], pm[c], ps[c], pb[c]));
  }
}

// The gradient reaching the normalisation: gy * act'(z), z recomputed as the
// forward formed it (Identity: gy itself).
template <Act A, class T>
inline T pre_act_grad(T gy, T x, T mu, T scale, T shift) {
  if constexpr (A == Act::Identity) {
    return gy;
  } else {
    return gy * act_derivative_flat<A>(bn_apply(x, mu, scale, shift));
  }
}

template <Act A, class T>
void backward_rows(const T* x, const T* gy, int64_t M, int64_t C, const double* mean, const double* invstd,
                   const Affine<T>& f, bool training, T* gx, T* gw, T* gb) {
  const T *fm = f.mu.data(), *fs = f.scale.data(), *fb = f.shift.data();
  // sums[c] = sum g, sums[C + c] = sum g * (x - mean), g = pre_act_grad.
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
              const T x0 = xr[c], x1 = xr[C + c], x2 = xr[2 * C + c], x3 = xr[3 * C + c];
              const double g0 = static_cast<double>(pre_act_grad<A>(gr[c], x0, fm[c], fs[c], fb[c]));
              const double g1 = static_cast<double>(pre_act_grad<A>(gr[C + c], x1, fm[c], fs[c], fb[c]));
              const double g2 = static_cast<double>(pre_act_grad<A>(gr[2 * C + c], x2, fm[c], fs[c], fb[c]));
              const double g3 = static_cast<double>(pre_act_grad<A>(gr[3 * C + c], x3, fm[c], fs[c], fb[c]));
              a1[c] += (g0 + g1) + (g2 + g3);
              a2[c] += (g0 * (static_cast<double>(x0) - mu[c]) + g1 * (static_cast<double>(x1) - mu[c])) +
                       (g2 * (static_cast<double>(x2) - mu[c]) + g3 * (static_cast<double>(x3) - mu[c]));
            }
          }
          for (; r < r1; ++r) {
            const T* xr = x + r * C;
            const T* gr = gy + r * C;
#pragma omp simd
            for (int64_t c = 0; c < C; ++c) {
              const double g = static_cast<double>(pre_act_grad<A>(gr[c], xr[c], fm[c], fs[c], fb[c]));
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
  std::vector<T> gmean(C), k(C);
  for (int64_t c = 0; c < C; ++c) {
    gmean[c] = static_cast<T>(sums[c] / static_cast<double>(M));
    k[c] = static_cast<T>(sums[C + c] / static_cast<double>(M) * invstd[c] * invstd[c]);
  }
  const T *pg = gmean.data(), *pk = k.data();
#pragma omp parallel for schedule(static) if (M * C > 32768)
  for (int64_t r = 0; r < M; ++r) {
    const T* xr = x + r * C;
    const T* gr = gy + r * C;
    T* out = gx + r * C;
    if (training) {
      for (int64_t c = 0; c < C; ++c)
        out[c] = bn_backward_train(pre_act_grad<A>(gr[c], xr[c], fm[c], fs[c], fb[c]), xr[c], fm[c], pg[c], pk[c],
                                   fs[c]);
    } else {
      for (int64_t c = 0; c < C; ++c) out[c] = pre_act_grad<A>(gr[c], xr[c], fm[c], fs[c], fb[c]) * fs[c];
    }
  }
}

}  // namespace

template <class T>
void bn_forward(const T* x, int64_t M, int64_t C, const double* mean, const double* invstd, const T* w, int64_t ws,
                const T* b, int64_t bs, T* y, Act act) {
  const Affine<T> f(C, mean, invstd, w, ws, b, bs);
  dispatch_act(act, [&](auto A) { forward_rows<decltype(A)::value>(x, M, C, f, y); });
}

template <class T>
void bn_backward(const T* x, const T* gy, int64_t M, int64_t C, const double* mean, const double* invstd, const T* w,
                 int64_t ws, bool training, T* gx, T* gw, T* gb, Act act, const T* b, int64_t bs) {
  const Affine<T> f(C, mean, invstd, w, ws, b, bs);
  dispatch_act(act, [&](auto A) {
    backward_rows<decltype(A)::value>(x, gy, M, C, mean, invstd, f, training, gx, gw, gb);
  });
}

#define OFA_INSTANTIATE_BN(T)                                                                                   \
  template void bn_batch_stats<T>(const T*, int64_t, int64_t, double*, double*);                                \
  template void bn_update_running<T>(T*, int64_t, T*, int64_t, const double*, const double*, int64_t, int64_t,  \
                                     double);                                                                   \
  template void bn_forward<T>(const T*, int64_t, int64_t, const double*, const double*, const T*, int64_t,     \
                              const T*, int64_t, T*, Act);                                                      \
  template void bn_backward<T>(const T*, const T*, int64_t, int64_t, const double*, const double*, const T*,   \
                               int64_t, bool, T*, T*, T*, Act, const T*, int64_t);
OFA_INSTANTIATE_BN(float)
OFA_INSTANTIATE_BN(double)
#undef OFA_INSTANTIATE_BN

}  // namespace ofa::kernels::cpu
