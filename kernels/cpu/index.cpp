#include "kernels/cpu/index.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace ofa::kernels::cpu {

namespace {

template <class T>
bool is_nan(T v) {
  if constexpr (std::is_floating_point_v<T>) return std::isnan(v);
  else return false;
}

// Offsets of the first element of line `line` (all coordinates but `dim`, in
// row-major order over `shape`) in a row-major tensor and in a strided one.
inline void line_offsets(int64_t line, const std::vector<int64_t>& shape, int64_t dim,
                         const std::vector<int64_t>& rm_strides, const std::vector<int64_t>& other_strides,
                         int64_t* rm_off, int64_t* other_off) {
  int64_t a = 0, b = 0;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    if (d == dim) continue;
    const int64_t i = line % shape[d];
    line /= shape[d];
    a += i * rm_strides[d];
    b += i * other_strides[d];
  }
  *rm_off = a;
  *other_off = b;
}

std::vector<int64_t> row_major_strides(const std::vector<int64_t>& shape) {
  std::vector<int64_t> st(shape.size());
  int64_t s = 1;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    st[d] = s;
    s *= std::max<int64_t>(shape[d], 1);
  }
  return st;
}

}  // namespace

template <class T>
void index_select_forward(const T* x, int64_t outer, int64_t D, int64_t inner, const int64_t* index, int64_t K,
                          T* out) {
#pragma omp parallel for schedule(static) if (outer * K * inner > 32768)
  for (int64_t r = 0; r < outer * K; ++r) {
    const int64_t o = r / K, k = r % K;
    std::copy(x + (o * D + index[k]) * inner, x + (o * D + index[k] + 1) * inner, out + r * inner);
  }
}

template <class T>
void index_select_backward(const T* gy, int64_t outer, int64_t D, int64_t inner, const int64_t* index, int64_t K,
                           T* gx) {
  // For each destination d, the k that point at it, in increasing order (CSR).
  std::vector<int64_t> start(D + 1, 0), ks(K);
  for (int64_t k = 0; k < K; ++k) ++start[index[k] + 1];
  for (int64_t d = 0; d < D; ++d) start[d + 1] += start[d];
  std::vector<int64_t> fill(start.begin(), start.end() - 1);
  for (int64_t k = 0; k < K; ++k) ks[fill[index[k]]++] = k;
#pragma omp parallel for schedule(static) if (outer * D * inner > 32768)
  for (int64_t r = 0; r < outer * D; ++r) {
    const int64_t o = r / D, d = r % D;
    T* dst = gx + r * inner;
    std::fill(dst, dst + inner, T(0));
    for (int64_t j = start[d]; j < start[d + 1]; ++j) {
      const T* src = gy + (o * K + ks[j]) * inner;
      for (int64_t i = 0; i < inner; ++i) dst[i] += src[i];
    }
  }
}

template <class T>
void gather_forward(const T* x, const std::vector<int64_t>& xs, const int64_t* index, const std::vector<int64_t>& shape,
                    int64_t dim, T* out) {
  const std::vector<int64_t> rm = row_major_strides(shape);
  int64_t lines = 1;
  for (size_t d = 0; d < shape.size(); ++d)
    if (static_cast<int64_t>(d) != dim) lines *= shape[d];
  const int64_t J = shape[dim], js = rm[dim], xd = xs[dim];
#pragma omp parallel for schedule(static) if (lines * J > 32768)
  for (int64_t l = 0; l < lines; ++l) {
    int64_t o = 0, xo = 0;
    line_offsets(l, shape, dim, rm, xs, &o, &xo);
    for (int64_t j = 0; j < J; ++j) out[o + j * js] = x[xo + index[o + j * js] * xd];
  }
}

template <class T>
void gather_backward(const T* gy, const int64_t* index, const std::vector<int64_t>& shape, int64_t dim, T* gx,
                     const std::vector<int64_t>& gs) {
  const std::vector<int64_t> rm = row_major_strides(shape);
  int64_t lines = 1;
  for (size_t d = 0; d < shape.size(); ++d)
    if (static_cast<int64_t>(d) != dim) lines *= shape[d];
  const int64_t J = shape[dim], js = rm[dim], gd = gs[dim];
#pragma omp parallel for schedule(static) if (lines * J > 32768)
  for (int64_t l = 0; l < lines; ++l) {
    int64_t o = 0, go = 0;
    line_offsets(l, shape, dim, rm, gs, &o, &go);
    for (int64_t j = 0; j < J; ++j) gx[go + index[o + j * js] * gd] += gy[o + j * js];
  }
}

template <class T>
void argsort(const T* x, int64_t outer, int64_t K, int64_t inner, bool descending, int64_t* out) {
#pragma omp parallel for schedule(static) if (outer * inner > 1 && outer * K * inner > 32768)
  for (int64_t line = 0; line < outer * inner; ++line) {
    const int64_t base = (line / inner) * K * inner + line % inner;
    const T* xl = x + base;
    std::vector<int64_t> perm(K);
    std::iota(perm.begin(), perm.end(), int64_t(0));
    // NaN is the largest value (PyTorch's order); stable_sort keeps ties in input order.
    if (descending) {
      std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) {
        const T va = xl[a * inner], vb = xl[b * inner];
        return va > vb || (is_nan(va) && !is_nan(vb));
      });
    } else {
      std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) {
        const T va = xl[a * inner], vb = xl[b * inner];
        return va < vb || (!is_nan(va) && is_nan(vb));
      });
    }
    for (int64_t k = 0; k < K; ++k) out[base + k * inner] = perm[k];
  }
}

template <class T>
void topk_correct(const T* x, const int64_t* target, int64_t N, int64_t K, const std::vector<int64_t>& ks,
                  std::vector<int64_t>& correct) {
  std::vector<int64_t> rank(N);
#pragma omp parallel for schedule(static) if (N * K > 32768)
  for (int64_t n = 0; n < N; ++n) {
    const T* xr = x + n * K;
    const int64_t t = target[n];
    const T v = xr[t];
    int64_t r = 0;
    for (int64_t k = 0; k < K; ++k) r += (xr[k] > v || (xr[k] == v && k < t)) ? 1 : 0;
    rank[n] = r;
  }
  correct.assign(ks.size(), 0);
  for (size_t i = 0; i < ks.size(); ++i)
    for (int64_t n = 0; n < N; ++n) correct[i] += rank[n] < ks[i] ? 1 : 0;
}

#define OFA_INSTANTIATE_INDEX_ALL(T)                                                                               \
  template void index_select_forward<T>(const T*, int64_t, int64_t, int64_t, const int64_t*, int64_t, T*);        \
  template void gather_forward<T>(const T*, const std::vector<int64_t>&, const int64_t*,                          \
                                  const std::vector<int64_t>&, int64_t, T*);                                       \
  template void argsort<T>(const T*, int64_t, int64_t, int64_t, bool, int64_t*);
#define OFA_INSTANTIATE_INDEX_FLOAT(T)                                                                             \
  template void index_select_backward<T>(const T*, int64_t, int64_t, int64_t, const int64_t*, int64_t, T*);       \
  template void gather_backward<T>(const T*, const int64_t*, const std::vector<int64_t>&, int64_t, T*,            \
                                   const std::vector<int64_t>&);                                                   \
  template void topk_correct<T>(const T*, const int64_t*, int64_t, int64_t, const std::vector<int64_t>&,          \
                                std::vector<int64_t>&);
OFA_INSTANTIATE_INDEX_ALL(float)
OFA_INSTANTIATE_INDEX_ALL(double)
OFA_INSTANTIATE_INDEX_ALL(int64_t)
OFA_INSTANTIATE_INDEX_FLOAT(float)
OFA_INSTANTIATE_INDEX_FLOAT(double)
#undef OFA_INSTANTIATE_INDEX_ALL
#undef OFA_INSTANTIATE_INDEX_FLOAT

}  // namespace ofa::kernels::cpu
