// Batch normalisation on [M, C] row-major blocks (NHWC activations or [N, C]
// inputs): batch statistics, their finish (invstd, running statistics),
// evaluation statistics, forward, backward. One source for nvcc and for the
// CPU emulation (cuda_compat.h). The formulas are the CPU kernel's
// (kernels/cpu/batch_norm.cpp, kernels/common/bn_math.h).
//
// The per-channel sums (statistics; gy and gy * (x - mean) for the backward)
// are deterministic: the M rows are cut into parts from M alone; block
// (channel tile of 32, part q) has 32 channel lanes (threadIdx.x, coalesced
// loads) and 8 row lanes (threadIdx.y) striding over the part's rows, sums in
// double, and adds the 8 row lanes in order into part q's partial sums; a
// second kernel adds the parts of each channel in part order. The grid size
// never changes which rows a thread sums or in which order.
//
// Forward and backward fuse an optional activation after the normalisation
// (a template parameter; Act::Identity is plain batch norm): the forward
// writes act(z) only, the backward recomputes z from x and uses gy * act'(z)
// where plain batch norm uses gy, so z and its gradient never go to memory.
#include "kernels/cuda/backend_impl.h"  // first: it picks the namespace

#include <algorithm>

#include "kernels/common/activation_math.h"
#include "kernels/common/bn_math.h"

namespace ofa::kernels::OFA_CUDA_NS {

namespace bn_detail {

constexpr int kTile = 32;  // channels per block of the partial-sum kernels
constexpr int kRows = 8;   // row lanes per block

// Rows per part: at least 256, and at most 1024 parts (M up to
// 64 * 112 * 112 gives 1024 parts of 784 rows).
inline void row_partition(int64_t M, int64_t* nparts, int64_t* part_len) {
  const int64_t len = std::max<int64_t>(256, ceil_div(M, 1024));
  *part_len = len;
  *nparts = ceil_div(M, len);  // 0 for M = 0
}

inline unsigned tile_grid(int64_t C, int64_t nparts) {
  const int64_t items = ceil_div(C, kTile) * nparts;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(items, max_blocks())));
}

// Adds the 8 row lanes of (a1, a2) in lane order into part[q * 2C + c] and
// part[q * 2C + C + c] (lane y = 0 writes).
__device__ __forceinline__ void store_partials(double (*s1)[kTile], double (*s2)[kTile], double a1, double a2,
                                               int64_t q, int64_t c, int64_t C, double* __restrict__ part) {
  s1[threadIdx.y][threadIdx.x] = a1;
  s2[threadIdx.y][threadIdx.x] = a2;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    double t1 = 0.0, t2 = 0.0;
    for (int y = 0; y < kRows; ++y) {
      t1 += s1[y][threadIdx.x];
      t2 += s2[y][threadIdx.x];
    }
    part[q * 2 * C + c] = t1;
    part[q * 2 * C + C + c] = t2;
  }
  __syncthreads();  // the shared sums are rewritten by the next item
}

// Sums of d = x - x[0, c] and d * d over each part's rows: the CPU's shifted
// one-pass statistics.
template <class T>
__global__ void __launch_bounds__(kTile * kRows)
    stats_partial_kernel(const T* __restrict__ x, int64_t M, int64_t C, int64_t nparts, int64_t part_len,
                         double* __restrict__ part) {
  __shared__ double s1[kRows][kTile];
  __shared__ double s2[kRows][kTile];
  const int64_t ctiles = (C + kTile - 1) / kTile, items = ctiles * nparts;
  for (int64_t it = blockIdx.x; it < items; it += gridDim.x) {
    const int64_t q = it % nparts, c = (it / nparts) * kTile + threadIdx.x;
    double a1 = 0.0, a2 = 0.0;
    if (c < C) {
      const double k = static_cast<double>(x[c]);
      const int64_t r1 = (q + 1) * part_len < M ? (q + 1) * part_len : M;
      for (int64_t r = q * part_len + threadIdx.y; r < r1; r += kRows) {
        const double d = static_cast<double>(x[r * C + c]) - k;
        a1 += d;
        a2 += d * d;
      }
    }
    store_partials(s1, s2, a1, a2, q, c, C, part);
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    stats_finish_kernel(const T* __restrict__ x, int64_t M, int64_t C, int64_t nparts,
                        const double* __restrict__ part, double* __restrict__ mean, double* __restrict__ var) {
  const double inv_m = 1.0 / static_cast<double>(M);
  OFA_GRID_STRIDE(c, C) {
    double t1 = 0.0, t2 = 0.0;
    for (int64_t q = 0; q < nparts; ++q) {
      t1 += part[q * 2 * C + c];
      t2 += part[q * 2 * C + C + c];
    }
    const double k = M > 0 ? static_cast<double>(x[c]) : 0.0;
    const double m1 = t1 * inv_m, v = t2 * inv_m - m1 * m1;
    mean[c] = k + m1;
    var[c] = 0.0 < v ? v : 0.0;  // std::max(0.0, v) as the CPU: NaN gives 0
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    finish_stats_kernel(const double* __restrict__ mean, const double* __restrict__ var, int64_t C, int64_t M,
                        double eps, T* running_mean, int64_t rms, T* running_var, int64_t rvs, double momentum,
                        double* __restrict__ invstd) {
  OFA_GRID_STRIDE(c, C) {
    invstd[c] = bn_invstd(var[c], eps);
    if (running_mean)
      running_mean[c * rms] =
          static_cast<T>(bn_running_mean(static_cast<double>(running_mean[c * rms]), mean[c], momentum));
    if (running_var)
      running_var[c * rvs] =
          static_cast<T>(bn_running_var(static_cast<double>(running_var[c * rvs]), var[c], M, momentum));
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    eval_stats_kernel(const T* __restrict__ rm, int64_t rms, const T* __restrict__ rv, int64_t rvs, int64_t C,
                      double eps, double* __restrict__ mean, double* __restrict__ invstd) {
  OFA_GRID_STRIDE(c, C) {
    mean[c] = static_cast<double>(rm[c * rms]);
    invstd[c] = bn_invstd(static_cast<double>(rv[c * rvs]), eps);
  }
}

// The CPU's per-channel coefficients, formed in double and rounded to T.
template <class T>
__device__ __forceinline__ T channel_scale(const double* invstd, const T* w, int64_t ws, int64_t c) {
  return static_cast<T>(invstd[c] * (w ? static_cast<double>(w[c * ws]) : 1.0));
}

template <Act A, class T>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(const T* __restrict__ x, int64_t M, int64_t C, const double* __restrict__ mean,
                   const double* __restrict__ invstd, const T* __restrict__ w, int64_t ws, const T* __restrict__ b,
                   int64_t bs, T* __restrict__ y) {
  const int64_t total = M * C;
  OFA_GRID_STRIDE(i, total) {
    const int64_t c = i % C;
    y[i] = act_forward_t<A>(
        bn_apply(x[i], static_cast<T>(mean[c]), channel_scale(invstd, w, ws, c), b ? b[c * bs] : T(0)));
  }
}

// The gradient reaching the normalisation: gy * act'(z), z recomputed as the
// forward formed it (Identity: gy itself).
template <Act A, class T>
__device__ __forceinline__ T pre_act_grad(T gy, T x, T mu, T scale, T shift) {
  if constexpr (A == Act::Identity) {
    return gy;
  } else {
    return gy * act_derivative_t<A>(bn_apply(x, mu, scale, shift));
  }
}

// Sums of g and g * (x - mean) over each part's rows, g = pre_act_grad.
template <Act A, class T>
__global__ void __launch_bounds__(kTile * kRows)
    grad_partial_kernel(const T* __restrict__ x, const T* __restrict__ gy, int64_t M, int64_t C,
                        const double* __restrict__ mean, const double* __restrict__ invstd, const T* __restrict__ w,
                        int64_t ws, const T* __restrict__ b, int64_t bs, int64_t nparts, int64_t part_len,
                        double* __restrict__ part) {
  __shared__ double s1[kRows][kTile];
  __shared__ double s2[kRows][kTile];
  const int64_t ctiles = (C + kTile - 1) / kTile, items = ctiles * nparts;
  for (int64_t it = blockIdx.x; it < items; it += gridDim.x) {
    const int64_t q = it % nparts, c = (it / nparts) * kTile + threadIdx.x;
    double a1 = 0.0, a2 = 0.0;
    if (c < C) {
      const double mu = mean[c];
      const T mu_t = static_cast<T>(mu), scale = channel_scale(invstd, w, ws, c), shift = b ? b[c * bs] : T(0);
      const int64_t r1 = (q + 1) * part_len < M ? (q + 1) * part_len : M;
      for (int64_t r = q * part_len + threadIdx.y; r < r1; r += kRows) {
        const T xv = x[r * C + c];
        const double g = static_cast<double>(pre_act_grad<A>(gy[r * C + c], xv, mu_t, scale, shift));
        a1 += g;
        a2 += g * (static_cast<double>(xv) - mu);
      }
    }
    store_partials(s1, s2, a1, a2, q, c, C, part);
  }
}

// Per channel: gb, gw (when asked for) and the coefficients of gx:
// coef [5][C] = mean, scale, mean(g), k, shift (as T), as the CPU kernel forms them.
// nparts = 0: the sums are zero (evaluation gx needs only the scale).
template <class T>
__global__ void __launch_bounds__(kThreads)
    grad_finish_kernel(int64_t M, int64_t C, int64_t nparts, const double* __restrict__ part,
                       const double* __restrict__ mean, const double* __restrict__ invstd, const T* __restrict__ w,
                       int64_t ws, const T* __restrict__ b, int64_t bs, T* __restrict__ gw, T* __restrict__ gb,
                       T* __restrict__ coef) {
  OFA_GRID_STRIDE(c, C) {
    double t1 = 0.0, t2 = 0.0;
    for (int64_t q = 0; q < nparts; ++q) {
      t1 += part[q * 2 * C + c];
      t2 += part[q * 2 * C + C + c];
    }
    if (gb) gb[c] = static_cast<T>(t1);
    if (gw) gw[c] = static_cast<T>(t2 * invstd[c]);
    if (coef) {
      coef[c] = static_cast<T>(mean[c]);
      coef[C + c] = channel_scale(invstd, w, ws, c);
      coef[2 * C + c] = static_cast<T>(t1 / static_cast<double>(M));
      coef[3 * C + c] = static_cast<T>(t2 / static_cast<double>(M) * invstd[c] * invstd[c]);
      coef[4 * C + c] = b ? b[c * bs] : T(0);
    }
  }
}

template <Act A, class T>
__global__ void __launch_bounds__(kThreads)
    grad_input_kernel(const T* __restrict__ x, const T* __restrict__ gy, int64_t M, int64_t C, bool training,
                      const T* __restrict__ coef, T* __restrict__ gx) {
  const int64_t total = M * C;
  OFA_GRID_STRIDE(i, total) {
    const int64_t c = i % C;
    const T mu = coef[c], scale = coef[C + c];
    const T g = pre_act_grad<A>(gy[i], x[i], mu, scale, coef[4 * C + c]);
    if (training)
      gx[i] = bn_backward_train(g, x[i], mu, coef[2 * C + c], coef[3 * C + c], scale);
    else
      gx[i] = g * scale;
  }
}

inline void check_sizes(int64_t M, int64_t C, const char* op) {
  OFA_CHECK(M >= 0 && C >= 0, op, ": bad sizes M ", M, ", C ", C);
}

}  // namespace bn_detail

void Backend::bn_batch_stats(DType t, const void* x, int64_t M, int64_t C, double* mean, double* var,
                             Scratch& scratch, Stream s) {
  bn_detail::check_sizes(M, C, "bn_batch_stats (CUDA)");
  OFA_CUDA_FLOATING(t, "bn_batch_stats (CUDA)", [&] {
    if (C == 0) return;
    const auto* px = static_cast<const scalar_t*>(x);
    int64_t nparts, part_len;
    bn_detail::row_partition(M, &nparts, &part_len);
    double* part = nullptr;
    if (nparts > 0) {
      part = static_cast<double*>(scratch.get(static_cast<size_t>(nparts * 2 * C) * sizeof(double)));
      OFA_LAUNCH((bn_detail::stats_partial_kernel<scalar_t>), bn_detail::tile_grid(C, nparts),
                 dim3(bn_detail::kTile, bn_detail::kRows), 0, s)
      (px, M, C, nparts, part_len, part);
      OFA_CHECK_LAUNCH("stats_partial_kernel");
    }
    OFA_LAUNCH((bn_detail::stats_finish_kernel<scalar_t>), grid_for(C), kThreads, 0, s)
    (px, M, C, nparts, part, mean, var);
    OFA_CHECK_LAUNCH("stats_finish_kernel");
  });
}

void Backend::bn_finish_stats(DType t, const double* mean, const double* var, int64_t C, int64_t M, double eps,
                              void* running_mean, int64_t rm_stride, void* running_var, int64_t rv_stride,
                              double momentum, double* invstd, Stream s) {
  bn_detail::check_sizes(M, C, "bn_finish_stats (CUDA)");
  OFA_CUDA_FLOATING(t, "bn_finish_stats (CUDA)", [&] {
    if (C == 0) return;
    OFA_LAUNCH((bn_detail::finish_stats_kernel<scalar_t>), grid_for(C), kThreads, 0, s)
    (mean, var, C, M, eps, static_cast<scalar_t*>(running_mean), rm_stride, static_cast<scalar_t*>(running_var),
     rv_stride, momentum, invstd);
    OFA_CHECK_LAUNCH("finish_stats_kernel");
  });
}

void Backend::bn_eval_stats(DType t, const void* running_mean, int64_t rm_stride, const void* running_var,
                            int64_t rv_stride, int64_t C, double eps, double* mean, double* invstd, Stream s) {
  bn_detail::check_sizes(0, C, "bn_eval_stats (CUDA)");
  OFA_CUDA_FLOATING(t, "bn_eval_stats (CUDA)", [&] {
    if (C == 0) return;
    OFA_LAUNCH((bn_detail::eval_stats_kernel<scalar_t>), grid_for(C), kThreads, 0, s)
    (static_cast<const scalar_t*>(running_mean), rm_stride, static_cast<const scalar_t*>(running_var), rv_stride, C,
     eps, mean, invstd);
    OFA_CHECK_LAUNCH("eval_stats_kernel");
  });
}

void Backend::bn_forward(DType t, const void* x, int64_t M, int64_t C, const double* mean, const double* invstd,
                         const void* w, int64_t w_stride, const void* b, int64_t b_stride, void* y, Act act,
                         Stream s) {
  bn_detail::check_sizes(M, C, "bn_forward (CUDA)");
  OFA_CUDA_FLOATING(t, "bn_forward (CUDA)", [&] {
    if (M * C == 0) return;
    dispatch_act(act, [&](auto a) {
      OFA_LAUNCH((bn_detail::forward_kernel<decltype(a)::value, scalar_t>), grid_for(M * C), kThreads, 0, s)
      (static_cast<const scalar_t*>(x), M, C, mean, invstd, static_cast<const scalar_t*>(w), w_stride,
       static_cast<const scalar_t*>(b), b_stride, static_cast<scalar_t*>(y));
      OFA_CHECK_LAUNCH("bn_forward_kernel");
    });
  });
}

void Backend::bn_backward(DType t, const void* x, const void* gy, int64_t M, int64_t C, const double* mean,
                          const double* invstd, const void* w, int64_t w_stride, bool training, void* gx, void* gw,
                          void* gb, Act act, const void* b, int64_t b_stride, Scratch& scratch, Stream s) {
  bn_detail::check_sizes(M, C, "bn_backward (CUDA)");
  OFA_CUDA_FLOATING(t, "bn_backward (CUDA)", [&] {
    if (C == 0 || (!gx && !gw && !gb)) return;
    using T = scalar_t;
    const auto* px = static_cast<const T*>(x);
    const auto* pg = static_cast<const T*>(gy);
    // The sums are needed for the training gx and for gw, gb (as the CPU).
    int64_t nparts = 0, part_len = 1;
    if (training || gw || gb) bn_detail::row_partition(M, &nparts, &part_len);
    const size_t part_bytes = static_cast<size_t>(nparts * 2 * C) * sizeof(double);
    const size_t coef_bytes = gx ? static_cast<size_t>(5 * C) * sizeof(T) : 0;
    char* ws = static_cast<char*>(scratch.get(part_bytes + coef_bytes));
    double* part = nparts > 0 ? reinterpret_cast<double*>(ws) : nullptr;
    T* coef = gx ? reinterpret_cast<T*>(ws + part_bytes) : nullptr;
    const auto* pw = static_cast<const T*>(w);
    const auto* pb = static_cast<const T*>(b);
    dispatch_act(act, [&](auto a) {
      constexpr Act A = decltype(a)::value;
      if (nparts > 0) {
        OFA_LAUNCH((bn_detail::grad_partial_kernel<A, T>), bn_detail::tile_grid(C, nparts),
                   dim3(bn_detail::kTile, bn_detail::kRows), 0, s)
        (px, pg, M, C, mean, invstd, pw, w_stride, pb, b_stride, nparts, part_len, part);
        OFA_CHECK_LAUNCH("grad_partial_kernel");
      }
      OFA_LAUNCH((bn_detail::grad_finish_kernel<T>), grid_for(C), kThreads, 0, s)
      (M, C, nparts, part, mean, invstd, pw, w_stride, pb, b_stride, static_cast<T*>(gw), static_cast<T*>(gb), coef);
      OFA_CHECK_LAUNCH("grad_finish_kernel");
      if (gx && M > 0) {
        OFA_LAUNCH((bn_detail::grad_input_kernel<A, T>), grid_for(M * C), kThreads, 0, s)
        (px, pg, M, C, training, coef, static_cast<T*>(gx));
        OFA_CHECK_LAUNCH("grad_input_kernel");
      }
    });
  });
}

}  // namespace ofa::kernels::OFA_CUDA_NS
