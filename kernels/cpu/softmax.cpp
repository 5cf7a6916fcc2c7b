#include "kernels/cpu/softmax.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace ofa::kernels::cpu {

namespace {

// exp(t) for t <= 0 in double, branch-free so that row loops vectorise
// (std::exp is a scalar libm call). Cody-Waite reduction t = n ln2 + r with
// |r| <= ln2/2, a degree-13 Taylor polynomial (truncation < 1e-17) and an exact
// 2^n scale: within ~1 ulp of std::exp. t < -708 (where exp is below the
// smallest normal double) gives 0; NaN stays NaN.
inline double exp_nonpos(double t) {
  // Clamp and mask by bit blends: a ternary here is turned into a branch and
  // the loop stays scalar.
  const bool under = t < -708.0;                         // false for NaN, which then propagates
  const int64_t keep = static_cast<int64_t>(under) - 1;  // all ones unless underflow
  const double lim = -708.0;
  int64_t tb, lb;
  std::memcpy(&tb, &t, sizeof tb);
  std::memcpy(&lb, &lim, sizeof lb);
  tb = (tb & keep) | (lb & ~keep);
  double tc;
  std::memcpy(&tc, &tb, sizeof tc);
  const double kShift = 0x1.8p52;  // adding it rounds to an integer kept in the low mantissa bits
  const double z = tc * 1.4426950408889634 + kShift;
  const double n = z - kShift;
  double r = tc - n * 6.93147180369123816490e-01;  // ln2 high part: n * hi is exact
  r = r - n * 1.90821492927058770002e-10;          // ln2 low part
  double p = 1.0 / 6227020800.0;                   // 1/13!
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  int64_t zi;
  std::memcpy(&zi, &z, sizeof zi);
  // Low 12 bits of zi are n: 2^n as a double. Unsigned, so that shifting
  // out the high bits is defined (UBSan flagged the signed shift).
  const uint64_t bits = (static_cast<uint64_t>(zi) + 1023u) << 52;
  double scale;
  std::memcpy(&scale, &bits, sizeof scale);
  const double e = p * scale;
  int64_t eb;
  std::memcpy(&eb, &e, sizeof eb);
  eb &= keep;
  double out;
  std::memcpy(&out, &eb, sizeof out);
  return out;
}

// log(sum_k exp(x_k)) over a dense row of K values, shifted by the max.
// The max keeps std::max's NaN handling (a NaN never becomes the max); the
// sum is in double (simd lanes, then lanes in a fixed order: thread-independent).
template <class T>
double log_sum_exp(const T* x, int64_t K) {
  T mt = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : mt)
  for (int64_t k = 0; k < K; ++k) mt = x[k] > mt ? x[k] : mt;
  const double m = static_cast<double>(mt);
  if (std::isinf(m)) return m;  // all -inf (or a +inf): nothing finite to shift by
  double sum = 0.0;
#pragma omp simd reduction(+ : sum)
  for (int64_t k = 0; k < K; ++k) sum += exp_nonpos(static_cast<double>(x[k]) - m);
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
    const double l = log_sum_exp(xr, K);
    lse[n] = l;
    double loss = (1.0 - ls) * (l - static_cast<double>(xr[target[n]]));
    if (ls != 0.0) {
      double s = 0.0;  // sum_k (lse - x_k) = -sum_k log_softmax_k
#pragma omp simd reduction(+ : s)
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
    const double l = lse[n];
#pragma omp simd
    for (int64_t k = 0; k < K; ++k) gr[k] = static_cast<T>(scale * (exp_nonpos(static_cast<double>(xr[k]) - l) - off));
    const int64_t t = target[n];  // the target's extra 1 - ls, from the same double value as the loop
    gr[t] = static_cast<T>(scale * (exp_nonpos(static_cast<double>(xr[t]) - l) - (off + (1.0 - ls))));
  }
}

template <class T>
double cross_entropy_soft_forward(const T* x, const T* soft, int64_t N, int64_t K, double* lse) {
  std::vector<double> row(N);
#pragma omp parallel for schedule(static) if (N * K > 32768)
  for (int64_t n = 0; n < N; ++n) {
    const T* xr = x + n * K;
    const T* sr = soft + n * K;
    const double l = log_sum_exp(xr, K);
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
