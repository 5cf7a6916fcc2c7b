// Softmax, log-softmax and the losses: cross entropy with hard labels (label
// smoothing) and with soft targets, mean squared error. One source for nvcc
// and for the CPU emulation (cuda_compat.h). Formulas, NaN handling and the
// double precision of every row sum are the CPU kernels'
// (kernels/cpu/softmax.cpp).
//
// Rows: along a contiguous K (inner = 1, and the [N, K] losses) one warp owns
// a row: lanes stride over it, the max and the sums combine by xor shuffles
// (every lane ends with the same value), so a row's result is fixed whatever
// the grid. Along a strided K (inner > 1) one thread owns a line and walks K
// in order (consecutive threads read consecutive addresses).
//
// Losses: the per-row losses (or, for the MSE, the sums of fixed 4096-element
// chunks) go to scratch, and one block adds them in a fixed order (thread j
// takes rows j, j + 256, ..., then a shared-memory tree) and writes the batch
// mean into the device scalar `loss`. That block also records the first
// (lowest) row whose label lies outside [0, K) in the DeviceError record.
#include "kernels/cuda/backend_impl.h"  // first: it picks the namespace

#include <cmath>

namespace ofa::kernels::OFA_CUDA_NS {

namespace softmax_detail {

constexpr int kWarps = kThreads / 32;  // rows per block of the warp-per-row kernels
constexpr int64_t kMseChunk = 4096;    // elements per partial sum of the MSE

__device__ __forceinline__ double warp_sum(double v) {
  for (int m = 16; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
  return v;
}

// The max that ignores NaN (std::max(m, v) of the CPU loops), over the warp;
// lane 0's value is broadcast so every lane shifts by the very same number.
template <class T>
__device__ __forceinline__ T warp_max(T m) {
  for (int o = 16; o > 0; o >>= 1) {
    const T v = __shfl_xor_sync(0xffffffffu, m, o);
    m = m < v ? v : m;
  }
  return __shfl_sync(0xffffffffu, m, 0);
}

__device__ __forceinline__ bool is_inf(double v) { return v == INFINITY || v == -INFINITY; }

// The sum of v over the block (kThreads threads) in a fixed tree order; sh
// holds kThreads doubles. Every thread gets the result.
__device__ __forceinline__ double block_sum(double v, double* sh) {
  const int tid = threadIdx.x;
  __syncthreads();  // sh may still be read from a previous call
  sh[tid] = v;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (tid < s) sh[tid] += sh[tid + s];
    __syncthreads();
  }
  return sh[0];
}

// ---------------------------------------------------------------- softmax

template <class T>
__global__ void __launch_bounds__(kThreads)
    softmax_rows_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t rows, int64_t K, bool log) {
  const int lane = threadIdx.x % 32;
  for (int64_t row = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32; row < rows; row += int64_t(gridDim.x) * kWarps) {
    const T* xr = x + row * K;
    T* yr = y + row * K;
    double m = -INFINITY;
    for (int64_t k = lane; k < K; k += 32) {
      const double v = static_cast<double>(xr[k]);
      m = m < v ? v : m;
    }
    m = warp_max(m);
    double sum = 0.0;
    for (int64_t k = lane; k < K; k += 32) sum += exp(static_cast<double>(xr[k]) - m);
    sum = warp_sum(sum);
    if (log) {
      const double ls = ::log(sum);
      for (int64_t k = lane; k < K; k += 32) yr[k] = static_cast<T>(static_cast<double>(xr[k]) - m - ls);
    } else {
      for (int64_t k = lane; k < K; k += 32) yr[k] = static_cast<T>(exp(static_cast<double>(xr[k]) - m) / sum);
    }
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    softmax_lines_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t outer, int64_t K, int64_t inner,
                         bool log) {
  OFA_GRID_STRIDE(line, outer * inner) {
    const int64_t base = (line / inner) * K * inner + line % inner;
    const T* xl = x + base;
    T* yl = y + base;
    double m = -INFINITY;
    for (int64_t k = 0; k < K; ++k) {
      const double v = static_cast<double>(xl[k * inner]);
      m = m < v ? v : m;
    }
    double sum = 0.0;
    for (int64_t k = 0; k < K; ++k) sum += exp(static_cast<double>(xl[k * inner]) - m);
    if (log) {
      const double ls = ::log(sum);
      for (int64_t k = 0; k < K; ++k) yl[k * inner] = static_cast<T>(static_cast<double>(xl[k * inner]) - m - ls);
    } else {
      for (int64_t k = 0; k < K; ++k) yl[k * inner] = static_cast<T>(exp(static_cast<double>(xl[k * inner]) - m) / sum);
    }
  }
}

// log: gx = gy - exp(y) * sum(gy); else gx = y * (gy - sum(gy * y)).
template <class T>
__global__ void __launch_bounds__(kThreads)
    softmax_backward_rows_kernel(const T* __restrict__ y, const T* __restrict__ gy, T* __restrict__ gx, int64_t rows,
                                 int64_t K, bool log) {
  const int lane = threadIdx.x % 32;
  for (int64_t row = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32; row < rows; row += int64_t(gridDim.x) * kWarps) {
    const T* yr = y + row * K;
    const T* gr = gy + row * K;
    T* o = gx + row * K;
    double s = 0.0;
    for (int64_t k = lane; k < K; k += 32)
      s += log ? static_cast<double>(gr[k]) : static_cast<double>(gr[k]) * static_cast<double>(yr[k]);
    s = warp_sum(s);
    for (int64_t k = lane; k < K; k += 32) {
      const double g = static_cast<double>(gr[k]), yv = static_cast<double>(yr[k]);
      o[k] = static_cast<T>(log ? g - exp(yv) * s : yv * (g - s));
    }
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    softmax_backward_lines_kernel(const T* __restrict__ y, const T* __restrict__ gy, T* __restrict__ gx,
                                  int64_t outer, int64_t K, int64_t inner, bool log) {
  OFA_GRID_STRIDE(line, outer * inner) {
    const int64_t base = (line / inner) * K * inner + line % inner;
    const T* yl = y + base;
    const T* gl = gy + base;
    T* ol = gx + base;
    double s = 0.0;
    for (int64_t k = 0; k < K; ++k) {
      const double g = static_cast<double>(gl[k * inner]);
      s += log ? g : g * static_cast<double>(yl[k * inner]);
    }
    for (int64_t k = 0; k < K; ++k) {
      const double g = static_cast<double>(gl[k * inner]), yv = static_cast<double>(yl[k * inner]);
      ol[k * inner] = static_cast<T>(log ? g - exp(yv) * s : yv * (g - s));
    }
  }
}

// ---------------------------------------------------------------- cross entropy

// log(sum_k exp(x_k)) of a row held by a warp: the max in T ignoring NaN,
// returned as is when infinite (nothing finite to shift by), as the CPU.
template <class T>
__device__ __forceinline__ double warp_log_sum_exp(const T* xr, int64_t K, int lane) {
  T mt = static_cast<T>(-INFINITY);
  for (int64_t k = lane; k < K; k += 32) mt = xr[k] > mt ? xr[k] : mt;
  const double m = static_cast<double>(warp_max(mt));
  if (is_inf(m)) return m;
  double sum = 0.0;
  for (int64_t k = lane; k < K; k += 32) sum += exp(static_cast<double>(xr[k]) - m);
  return m + ::log(warp_sum(sum));
}

// Row losses (1 - ls) * (lse - x_t) + ls / K * sum_k (lse - x_k); a row with
// an invalid label gets NaN (the finish kernel records the label).
template <class T>
__global__ void __launch_bounds__(kThreads)
    ce_rows_kernel(const T* __restrict__ x, const int64_t* __restrict__ target, int64_t N, int64_t K, double ls,
                   double* __restrict__ lse, double* __restrict__ row_loss) {
  const int lane = threadIdx.x % 32;
  for (int64_t n = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32; n < N; n += int64_t(gridDim.x) * kWarps) {
    const T* xr = x + n * K;
    const double l = warp_log_sum_exp(xr, K, lane);
    double s = 0.0;
    if (ls != 0.0) {
      for (int64_t k = lane; k < K; k += 32) s += l - static_cast<double>(xr[k]);
      s = warp_sum(s);
    }
    if (lane == 0) {
      lse[n] = l;
      const int64_t t = target[n];
      double loss = NAN;
      if (t >= 0 && t < K) {
        loss = (1.0 - ls) * (l - static_cast<double>(xr[t]));
        if (ls != 0.0) loss += ls / static_cast<double>(K) * s;
      }
      row_loss[n] = loss;
    }
  }
}

// Soft targets: row loss sum_k soft_k * (lse - x_k).
template <class T>
__global__ void __launch_bounds__(kThreads)
    ce_soft_rows_kernel(const T* __restrict__ x, const T* __restrict__ soft, int64_t N, int64_t K,
                        double* __restrict__ lse, double* __restrict__ row_loss) {
  const int lane = threadIdx.x % 32;
  for (int64_t n = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32; n < N; n += int64_t(gridDim.x) * kWarps) {
    const T* xr = x + n * K;
    const T* sr = soft + n * K;
    const double l = warp_log_sum_exp(xr, K, lane);
    double s = 0.0;
    for (int64_t k = lane; k < K; k += 32) s += static_cast<double>(sr[k]) * (l - static_cast<double>(xr[k]));
    s = warp_sum(s);
    if (lane == 0) {
      lse[n] = l;
      row_loss[n] = s;
    }
  }
}

// One block: loss = (sum of the n values in a fixed order) / denom (0 when
// denom is 0); with `target`, the lowest row whose label lies outside [0, K)
// goes into `err` (unless it already holds an error).
template <class T>
__global__ void __launch_bounds__(kThreads)
    mean_finish_kernel(const double* __restrict__ v, int64_t n, double denom, T* __restrict__ loss,
                       const int64_t* __restrict__ target, int64_t K, DeviceError* err) {
  __shared__ double sh[kThreads];
  __shared__ int64_t bad[kThreads];
  double s = 0.0;
  for (int64_t i = threadIdx.x; i < n; i += kThreads) s += v[i];
  s = block_sum(s, sh);
  if (target != nullptr) {
    int64_t first = n;
    for (int64_t i = threadIdx.x; i < n; i += kThreads)
      if (target[i] < 0 || target[i] >= K) {
        first = i;
        break;  // this thread's rows only grow
      }
    const int tid = threadIdx.x;
    bad[tid] = first;
    __syncthreads();
    for (int st = kThreads / 2; st > 0; st >>= 1) {
      if (tid < st && bad[tid + st] < bad[tid]) bad[tid] = bad[tid + st];
      __syncthreads();
    }
    if (threadIdx.x == 0 && bad[0] < n && err != nullptr && atomicCAS(&err->code, 0, int(kErrTarget)) == 0) {
      err->value = target[bad[0]];
      err->position = bad[0];
      err->limit = K;
    }
  }
  if (threadIdx.x == 0) *loss = static_cast<T>(denom > 0.0 ? s / denom : 0.0);
}

// gx = sc * (softmax(x) - t), t = (1 - ls) * onehot + ls / K, sc = *gloss * scale.
template <class T>
__global__ void __launch_bounds__(kThreads)
    ce_backward_kernel(const T* __restrict__ x, const int64_t* __restrict__ target, const double* __restrict__ lse,
                       int64_t N, int64_t K, double ls, const T* __restrict__ gloss, double scale, T* __restrict__ gx) {
  const double sc = static_cast<double>(*gloss) * scale, off = ls / static_cast<double>(K);
  OFA_GRID_STRIDE(i, N * K) {
    const int64_t n = i / K, k = i % K;
    const double p = exp(static_cast<double>(x[i]) - lse[n]);
    gx[i] = static_cast<T>(sc * (p - (k == target[n] ? off + (1.0 - ls) : off)));
  }
}

// gx = sc * (softmax(x) * sum_k soft - soft), gsoft = -sc * log_softmax(x); a warp per row.
template <class T>
__global__ void __launch_bounds__(kThreads)
    ce_soft_backward_kernel(const T* __restrict__ x, const T* __restrict__ soft, const double* __restrict__ lse,
                            int64_t N, int64_t K, const T* __restrict__ gloss, double scale, T* __restrict__ gx,
                            T* __restrict__ gsoft) {
  const int lane = threadIdx.x % 32;
  const double sc = static_cast<double>(*gloss) * scale;
  for (int64_t n = int64_t(blockIdx.x) * kWarps + threadIdx.x / 32; n < N; n += int64_t(gridDim.x) * kWarps) {
    const T* xr = x + n * K;
    const T* sr = soft + n * K;
    double ssum = 0.0;
    if (gx) {
      for (int64_t k = lane; k < K; k += 32) ssum += static_cast<double>(sr[k]);
      ssum = warp_sum(ssum);
    }
    for (int64_t k = lane; k < K; k += 32) {
      const double logp = static_cast<double>(xr[k]) - lse[n];
      if (gx) gx[n * K + k] = static_cast<T>(sc * (exp(logp) * ssum - static_cast<double>(sr[k])));
      if (gsoft) gsoft[n * K + k] = static_cast<T>(-sc * logp);
    }
  }
}

// ---------------------------------------------------------------- mse

// part[c] = sum over chunk c of (double)(a - b)^2, the difference taken in T as the CPU.
template <class T>
__global__ void __launch_bounds__(kThreads)
    mse_partial_kernel(const T* __restrict__ a, const T* __restrict__ b, int64_t n, int64_t nchunks,
                       double* __restrict__ part) {
  __shared__ double sh[kThreads];
  for (int64_t c = blockIdx.x; c < nchunks; c += gridDim.x) {
    const int64_t e = (c + 1) * kMseChunk < n ? (c + 1) * kMseChunk : n;
    double s = 0.0;
    for (int64_t i = c * kMseChunk + threadIdx.x; i < e; i += kThreads) {
      const double d = static_cast<double>(a[i] - b[i]);
      s += d * d;
    }
    s = block_sum(s, sh);
    if (threadIdx.x == 0) part[c] = s;
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    mse_backward_kernel(const T* __restrict__ a, const T* __restrict__ b, int64_t n, const T* __restrict__ gloss,
                        double scale, T* __restrict__ ga, T* __restrict__ gb) {
  const T s = static_cast<T>(static_cast<double>(*gloss) * scale);
  OFA_GRID_STRIDE(i, n) {
    const T g = s * (a[i] - b[i]);
    if (ga) ga[i] = g;
    if (gb) gb[i] = -g;
  }
}

inline void check_sizes(int64_t N, int64_t K, const char* op) {
  OFA_CHECK(N >= 0 && K >= 0, op, ": bad sizes (", N, " rows, ", K, " classes)");
}

// Grid of a warp-per-row kernel.
inline unsigned row_grid(int64_t rows) { return grid_for(rows, kWarps); }

template <class T>
void finish_mean(const double* v, int64_t n, double denom, void* loss, const int64_t* target, int64_t K,
                 DeviceError* err, cudaStream_t s) {
  OFA_LAUNCH((mean_finish_kernel<T>), 1, kThreads, 0, s)(v, n, denom, static_cast<T*>(loss), target, K, err);
  OFA_CHECK_LAUNCH("mean_finish_kernel");
}

}  // namespace softmax_detail

using namespace softmax_detail;

void Backend::softmax_forward(DType t, const void* x, void* y, int64_t outer, int64_t K, int64_t inner, bool log,
                              Stream s) {
  OFA_CHECK(outer >= 0 && K >= 0 && inner >= 0, "softmax_forward (CUDA): bad sizes outer ", outer, ", K ", K,
            ", inner ", inner);
  OFA_CUDA_FLOATING(t, "softmax_forward (CUDA)", [&] {
    if (outer * K * inner == 0) return;
    const auto* px = static_cast<const scalar_t*>(x);
    auto* py = static_cast<scalar_t*>(y);
    if (inner == 1) {
      OFA_LAUNCH((softmax_rows_kernel<scalar_t>), row_grid(outer), kThreads, 0, s)(px, py, outer, K, log);
      OFA_CHECK_LAUNCH("softmax_rows_kernel");
    } else {
      OFA_LAUNCH((softmax_lines_kernel<scalar_t>), grid_for(outer * inner), kThreads, 0, s)
      (px, py, outer, K, inner, log);
      OFA_CHECK_LAUNCH("softmax_lines_kernel");
    }
  });
}

void Backend::softmax_backward(DType t, const void* y, const void* gy, void* gx, int64_t outer, int64_t K,
                               int64_t inner, bool log, Stream s) {
  OFA_CHECK(outer >= 0 && K >= 0 && inner >= 0, "softmax_backward (CUDA): bad sizes outer ", outer, ", K ", K,
            ", inner ", inner);
  OFA_CUDA_FLOATING(t, "softmax_backward (CUDA)", [&] {
    if (outer * K * inner == 0) return;
    const auto* py = static_cast<const scalar_t*>(y);
    const auto* pg = static_cast<const scalar_t*>(gy);
    auto* po = static_cast<scalar_t*>(gx);
    if (inner == 1) {
      OFA_LAUNCH((softmax_backward_rows_kernel<scalar_t>), row_grid(outer), kThreads, 0, s)(py, pg, po, outer, K, log);
      OFA_CHECK_LAUNCH("softmax_backward_rows_kernel");
    } else {
      OFA_LAUNCH((softmax_backward_lines_kernel<scalar_t>), grid_for(outer * inner), kThreads, 0, s)
      (py, pg, po, outer, K, inner, log);
      OFA_CHECK_LAUNCH("softmax_backward_lines_kernel");
    }
  });
}

void Backend::cross_entropy_forward(DType t, const void* x, const int64_t* target, int64_t N, int64_t K, double ls,
                                    double* lse, void* loss, DeviceError* err, Scratch& scratch, Stream s) {
  check_sizes(N, K, "cross_entropy_forward (CUDA)");
  OFA_CUDA_FLOATING(t, "cross_entropy_forward (CUDA)", [&] {
    double* rows = N > 0 ? static_cast<double*>(scratch.get(static_cast<size_t>(N) * sizeof(double))) : nullptr;
    if (N > 0) {
      OFA_LAUNCH((ce_rows_kernel<scalar_t>), row_grid(N), kThreads, 0, s)
      (static_cast<const scalar_t*>(x), target, N, K, ls, lse, rows);
      OFA_CHECK_LAUNCH("ce_rows_kernel");
    }
    finish_mean<scalar_t>(rows, N, static_cast<double>(N), loss, target, K, err, s);
  });
}

void Backend::cross_entropy_backward(DType t, const void* x, const int64_t* target, const double* lse, int64_t N,
                                     int64_t K, double ls, const void* gloss, double scale, void* gx, Stream s) {
  check_sizes(N, K, "cross_entropy_backward (CUDA)");
  OFA_CUDA_FLOATING(t, "cross_entropy_backward (CUDA)", [&] {
    if (N * K == 0) return;
    OFA_LAUNCH((ce_backward_kernel<scalar_t>), grid_for(N * K), kThreads, 0, s)
    (static_cast<const scalar_t*>(x), target, lse, N, K, ls, static_cast<const scalar_t*>(gloss), scale,
     static_cast<scalar_t*>(gx));
    OFA_CHECK_LAUNCH("ce_backward_kernel");
  });
}

void Backend::cross_entropy_soft_forward(DType t, const void* x, const void* soft, int64_t N, int64_t K, double* lse,
                                         void* loss, Scratch& scratch, Stream s) {
  check_sizes(N, K, "cross_entropy_soft_forward (CUDA)");
  OFA_CUDA_FLOATING(t, "cross_entropy_soft_forward (CUDA)", [&] {
    double* rows = N > 0 ? static_cast<double*>(scratch.get(static_cast<size_t>(N) * sizeof(double))) : nullptr;
    if (N > 0) {
      OFA_LAUNCH((ce_soft_rows_kernel<scalar_t>), row_grid(N), kThreads, 0, s)
      (static_cast<const scalar_t*>(x), static_cast<const scalar_t*>(soft), N, K, lse, rows);
      OFA_CHECK_LAUNCH("ce_soft_rows_kernel");
    }
    finish_mean<scalar_t>(rows, N, static_cast<double>(N), loss, nullptr, K, nullptr, s);
  });
}

void Backend::cross_entropy_soft_backward(DType t, const void* x, const void* soft, const double* lse, int64_t N,
                                          int64_t K, const void* gloss, double scale, void* gx, void* gsoft,
                                          Stream s) {
  check_sizes(N, K, "cross_entropy_soft_backward (CUDA)");
  OFA_CUDA_FLOATING(t, "cross_entropy_soft_backward (CUDA)", [&] {
    if (N * K == 0 || (!gx && !gsoft)) return;
    OFA_LAUNCH((ce_soft_backward_kernel<scalar_t>), row_grid(N), kThreads, 0, s)
    (static_cast<const scalar_t*>(x), static_cast<const scalar_t*>(soft), lse, N, K,
     static_cast<const scalar_t*>(gloss), scale, static_cast<scalar_t*>(gx), static_cast<scalar_t*>(gsoft));
    OFA_CHECK_LAUNCH("ce_soft_backward_kernel");
  });
}

void Backend::mse_forward(DType t, const void* a, const void* b, int64_t n, void* loss, Scratch& scratch, Stream s) {
  OFA_CHECK(n >= 0, "mse_forward (CUDA): bad size ", n);
  OFA_CUDA_FLOATING(t, "mse_forward (CUDA)", [&] {
    const int64_t nchunks = ceil_div(n, kMseChunk);
    double* part =
        nchunks > 0 ? static_cast<double*>(scratch.get(static_cast<size_t>(nchunks) * sizeof(double))) : nullptr;
    if (nchunks > 0) {
      const unsigned grid = static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>(nchunks, max_blocks())));
      OFA_LAUNCH((mse_partial_kernel<scalar_t>), grid, kThreads, 0, s)
      (static_cast<const scalar_t*>(a), static_cast<const scalar_t*>(b), n, nchunks, part);
      OFA_CHECK_LAUNCH("mse_partial_kernel");
    }
    finish_mean<scalar_t>(part, nchunks, static_cast<double>(n), loss, nullptr, 0, nullptr, s);
  });
}

void Backend::mse_backward(DType t, const void* a, const void* b, int64_t n, const void* gloss, double scale, void* ga,
                           void* gb, Stream s) {
  OFA_CHECK(n >= 0, "mse_backward (CUDA): bad size ", n);
  OFA_CUDA_FLOATING(t, "mse_backward (CUDA)", [&] {
    if (n == 0 || (!ga && !gb)) return;
    OFA_LAUNCH((mse_backward_kernel<scalar_t>), grid_for(n), kThreads, 0, s)
    (static_cast<const scalar_t*>(a), static_cast<const scalar_t*>(b), n, static_cast<const scalar_t*>(gloss), scale,
     static_cast<scalar_t*>(ga), static_cast<scalar_t*>(gb));
    OFA_CHECK_LAUNCH("mse_backward_kernel");
  });
}

}  // namespace ofa::kernels::OFA_CUDA_NS
