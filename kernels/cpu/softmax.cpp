#include "kernels/cpu/softmax.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace ofa::kernels::cpu {

namespace {

// log(sum_k exp(x_k)) over K values at stride s, shifted by the max.
template <class T>
double log_sum_exp(const T* x, int64_t K, int64_t s) {
  double m = -INFINITY;
  for (int64_t k = 0; k < K; ++k) m = std::max(m, static_cast<double>(x[k * s]));
  if (std::isinf(m)) return m;  // all -inf (or a +inf): nothing finite to shift by
  double sum = 0.0;
  for (int64_t k = 0; k < K; ++k) sum += std::exp(static_cast<double>(x[k * s]) - m);
  return m + std::log(sum);
}

// Sum of per-row values in row order (the thread-count-independent mean).
double ordered_sum(const std::vector<double>& v) {
  double s = 0.0;
  for (double x : v) s += x;
  return s;
}

}  // namespace

template <class T>
void softmax_forward(const T* x, T* y, int64_t outer, int64_t K, int64_t inner, bool log) {
#pragma omp parallel for schedule(static) if (outer * K * inner > 32768)
  for (int64_t line = 0; line < outer * inner; ++line) {
    const int64_t base = (line / inner) * K * inner + line % inner;
    const T* xl = x + base;
    T* yl = y + base;
    double m = -INFINITY;
    for (int64_t k = 0; k < K; ++k) m = std::max(m, static_cast<double>(xl[k * inner]));
    double sum = 0.0;
    for (int64_t k = 0; k < K; ++k) sum += std::exp(static_cast<double>(xl[k * inner]) - m);
    if (log) {
      const double ls = std::log(sum);
      for (int64_t k = 0; k < K; ++k) yl[k * inner] = static_cast<T>(static_cast<double>(xl[k * inner]) - m - ls);
    } else {
      for (int64_t k = 0; k < K; ++k) yl[k * inner] = static_cast<T>(std::exp(static_cast<double>(xl[k * inner]) - m) / sum);
    }
  }
}

template <class T>
void softmax_backward(const T* y, const T* gy, T* gx, int64_t outer, int64_t K, int64_t inner, bool log) {
#pragma omp parallel for schedule(static) if (outer * K * inner > 32768)
  for (int64_t line = 0; line < outer * inner; ++line) {
    const int64_t base = (line / inner) * K * inner + line % inner;
    const T* yl = y + base;
    const T* gl = gy + base;
    T* ol = gx + base;
    double s = 0.0;
    if (log) {
      for (int64_t k = 0; k < K; ++k) s += static_cast<double>(gl[k * inner]);
      for (int64_t k = 0; k < K; ++k) {
        const int64_t i = k * inner;
        ol[i] = static_cast<T>(static_cast<double>(gl[i]) - std::exp(static_cast<double>(yl[i])) * s);
      }
    } else {
      for (int64_t k = 0; k < K; ++k) s += static_cast<double>(gl[k * inner]) * static_cast<double>(yl[k * inner]);
      for (int64_t k = 0; k < K; ++k) {
        const int64_t i = k * inner;
        ol[i] = static_cast<T>(static_cast<double>(yl[i]) * (static_cast<double>(gl[i]) - s));
      }
    }
  }
}

template <class T>
double cross_entropy_forward(const T* x, const int64_t* target, int64_t N, int64_t K, double ls, double* lse) {
  std::vector<double> row(N);
#pragma omp parallel for schedule(static) if (N * K > 32768)
  for (int64_t n = 0; n < N; ++n) {
    const T* xr = x + n * K;
    const double l = log_sum_exp(xr, K, 1);
    lse[n] = l;
    double loss = (1.0 - ls) * (l - static_cast<double>(xr[target[n]]));
    if (ls != 0.0) {
      double s = 0.0;  // sum_k (lse - x_k) = -sum_k log_softmax_k
      for (int64_t k = 0; k < K; ++k) s += l - static_cast<double>(xr[k]);
      loss += ls / static_cast<double>(K) * s;
    }
    row[n] = loss;
  }
  return N > 0 ? ordered_sum(row) / static_cast<double>(N) : 0.0;
}

template <class T>
void cross_entropy_backward(const T* x, const int64_t* target, const double* lse, int64_t N, int64_t K, double ls,
                            double scale, T* gx) {
  const double off = ls / static_cast<double>(K);
#pragma omp parallel for schedule(static) if (N * K > 32768)
  for (int64_t n = 0; n < N; ++n) {
    const T* xr = x + n * K;
    T* gr = gx + n * K;
    for (int64_t k = 0; k < K; ++k) {
      const double t = off + (k == target[n] ? 1.0 - ls : 0.0);
      gr[k] = static_cast<T>(scale * (std::exp(static_cast<double>(xr[k]) - lse[n]) - t));
    }
  }
}

template <class T>
double cross_entropy_soft_forward(const T* x, const T* soft, int64_t N, int64_t K, double* lse) {
  std::vector<double> row(N);
#pragma omp parallel for schedule(static) if (N * K > 32768)
  for (int64_t n = 0; n < N; ++n) {
    const T* xr = x + n * K;
    const T* sr = soft + n * K;
    const double l = log_sum_exp(xr, K, 1);
    lse[n] = l;
    double loss = 0.0;
    for (int64_t k = 0; k < K; ++k) loss += static_cast<double>(sr[k]) * (l - static_cast<double>(xr[k]));
    row[n] = loss;
  }
  return N > 0 ? ordered_sum(row) / static_cast<double>(N) : 0.0;
}

template <class T>
void cross_entropy_soft_backward(const T* x, const T* soft, const double* lse, int64_t N, int64_t K, double scale,
                                 T* gx, T* gsoft) {
#pragma omp parallel for schedule(static) if (N * K > 32768)
  for (int64_t n = 0; n < N; ++n) {
    const T* xr = x + n * K;
    const T* sr = soft + n * K;
    double ssum = 0.0;
    for (int64_t k = 0; k < K; ++k) ssum += static_cast<double>(sr[k]);
    for (int64_t k = 0; k < K; ++k) {
      const double logp = static_cast<double>(xr[k]) - lse[n];
      if (gx) gx[n * K + k] = static_cast<T>(scale * (std::exp(logp) * ssum - static_cast<double>(sr[k])));
      if (gsoft) gsoft[n * K + k] = static_cast<T>(-scale * logp);
    }
  }
}

template <class T>
double mse_forward(const T* a, const T* b, int64_t n) {
  // Fixed-size blocks: the partition depends on n only.
  constexpr int64_t kBlock = 4096;
  const int64_t nb = (n + kBlock - 1) / kBlock;
  std::vector<double> part(nb, 0.0);
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t blk = 0; blk < nb; ++blk) {
    double s = 0.0;
    for (int64_t i = blk * kBlock, e = std::min(n, (blk + 1) * kBlock); i < e; ++i) {
      const double d = static_cast<double>(a[i] - b[i]);
      s += d * d;
    }
    part[blk] = s;
  }
  return n > 0 ? ordered_sum(part) / static_cast<double>(n) : 0.0;
}

template <class T>
void mse_backward(const T* a, const T* b, int64_t n, double scale, T* ga, T* gb) {
  const T s = static_cast<T>(scale);
#pragma omp parallel for schedule(static) if (n > 65536)
  for (int64_t i = 0; i < n; ++i) {
    const T g = s * (a[i] - b[i]);
    if (ga) ga[i] = g;
    if (gb) gb[i] = -g;
  }
}

#define OFA_INSTANTIATE_SOFTMAX(T)                                                                                 \
  template void softmax_forward<T>(const T*, T*, int64_t, int64_t, int64_t, bool);                                 \
  template void softmax_backward<T>(const T*, const T*, T*, int64_t, int64_t, int64_t, bool);                      \
  template double cross_entropy_forward<T>(const T*, const int64_t*, int64_t, int64_t, double, double*);           \
  template void cross_entropy_backward<T>(const T*, const int64_t*, const double*, int64_t, int64_t, double,       \
                                          double, T*);                                                             \
  template double cross_entropy_soft_forward<T>(const T*, const T*, int64_t, int64_t, double*);                    \
  template void cross_entropy_soft_backward<T>(const T*, const T*, const double*, int64_t, int64_t, double, T*,   \
                                               T*);                                                                \
  template double mse_forward<T>(const T*, const T*, int64_t);                                                     \
  template void mse_backward<T>(const T*, const T*, int64_t, double, T*, T*);
OFA_INSTANTIATE_SOFTMAX(float)
OFA_INSTANTIATE_SOFTMAX(double)
#undef OFA_INSTANTIATE_SOFTMAX

}  // namespace ofa::kernels::cpu
