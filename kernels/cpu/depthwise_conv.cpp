#include "kernels/cpu/depthwise_conv.h"

#include <algorithm>
#include <cstring>
#ifdef __AVX__
#include <immintrin.h>
#endif
#include <vector>

#include "kernels/common/conv_math.h"
#include "kernels/cpu/simd.h"

namespace ofa::kernels::cpu {

namespace {


template <class T>
inline typename Vec<T>::type vload(const T* p) {
  typename Vec<T>::type v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <class T>
inline void vstore(T* p, typename Vec<T>::type v) {
  std::memcpy(p, &v, sizeof(v));
}

// Output pixels computed together by the generic-k kernels: their sums stay
// in registers across all k * k taps, and each weight vector is loaded once
// per block (k = 3, 5, 7 use the fixed-size kernels below).
constexpr int64_t kPix = 4;

// wt[(i * k + j) * C + c]: the taps transposed so that channels are
// contiguous like the NHWC activations (k * k * C values, per call).
template <class T>
std::vector<T> transpose_taps(const DwGeom& g, const T* w, int64_t ws_c, int64_t ws_i, int64_t ws_j) {
  std::vector<T> wt(static_cast<size_t>(g.k * g.k * g.C));
  for (int64_t i = 0; i < g.k; ++i)
    for (int64_t j = 0; j < g.k; ++j)
      for (int64_t c = 0; c < g.C; ++c) wt[(i * g.k + j) * g.C + c] = w[c * ws_c + i * ws_i + j * ws_j];
  return wt;
}

// Forward for P output pixels ow, ow + 1, .. of row (n, oh): taps i in
// [i0, i1), j in [j0, j1), valid for every one of the P pixels. xn is image
// n, out the first pixel. Per channel the sum runs over taps in (i, j) order.
template <class T, int64_t P>
void fwd_pixels(const DwGeom& g, const T* xn, const T* wt, int64_t oh, int64_t ow, int64_t i0, int64_t i1,
                int64_t j0, int64_t j1, T* out) {
  using V = typename Vec<T>::type;
  constexpr int64_t L = Vec<T>::n;
  const int64_t C = g.C, k = g.k, s = g.stride, sC = s * C;
  const T* xb = xn + ((oh * s - g.pad) * g.W + (ow * s - g.pad)) * C;  // tap (0, 0) of the first pixel
  int64_t c = 0;
  for (; c + L <= C; c += L) {
    V acc[P];
    for (int64_t p = 0; p < P; ++p) acc[p] = V{};
    for (int64_t i = i0; i < i1; ++i) {
      const T* xr = xb + i * g.W * C + c;
      const T* wr = wt + i * k * C + c;
      for (int64_t j = j0; j < j1; ++j) {
        const V wv = vload(wr + j * C);
        const T* xp = xr + j * C;
        for (int64_t p = 0; p < P; ++p) acc[p] += vload(xp + p * sC) * wv;
      }
    }
    for (int64_t p = 0; p < P; ++p) vstore(out + p * C + c, acc[p]);
  }
  for (; c < C; ++c) {
    T acc[P] = {};
    for (int64_t i = i0; i < i1; ++i)
      for (int64_t j = j0; j < j1; ++j) {
        const T wv = wt[(i * k + j) * C + c];
        const T* xp = xb + (i * g.W + j) * C + c;
        for (int64_t p = 0; p < P; ++p) acc[p] += xp[p * sC] * wv;
      }
    for (int64_t p = 0; p < P; ++p) out[p * C + c] = acc[p];
  }
}

// Forward for P output pixels ow, ow + 1, .. of row (n, oh) with K and S
// fixed: per tap row, the K weight vectors and each input vector are loaded
// once and shared by all P pixels (input column q feeds pixel p with tap
// q - p * S). Masked: input columns outside the image are skipped, which
// drops exactly the padding taps (border pixels). Per pixel the sum runs
// over the valid taps in (i, j) order.
template <class T, int K, int S, int P, bool Masked>
void fwd_block(const DwGeom& g, const T* xn, const T* wt, int64_t oh, int64_t ow, int64_t i0, int64_t i1, T* out) {
  using V = typename Vec<T>::type;
  constexpr int64_t L = Vec<T>::n;
  constexpr int Q = (P - 1) * S + K;
  const int64_t C = g.C, col0 = ow * S - g.pad;  // input column of q = 0
  const T* xb = xn + (oh * S - g.pad) * g.W * C + col0 * C;
  auto inside = [&](int q) { return !Masked || (col0 + q >= 0 && col0 + q < g.W); };
  int64_t c = 0;
  for (; c + L <= C; c += L) {
    V acc[P];
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) acc[p] = V{};
    for (int64_t i = i0; i < i1; ++i) {
      const T* xr = xb + i * g.W * C + c;
      const T* wr = wt + i * K * C + c;
      V w[K];
#pragma GCC unroll 16
      for (int j = 0; j < K; ++j) w[j] = vload(wr + j * C);
#pragma GCC unroll 32
      for (int q = 0; q < Q; ++q) {
        if (!inside(q)) continue;
        const V xv = vload(xr + q * C);
#pragma GCC unroll 16
        for (int p = 0; p < P; ++p) {
          const int j = q - p * S;
          if (j >= 0 && j < K) acc[p] += xv * w[j];
        }
      }
    }
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) vstore(out + p * C + c, acc[p]);
  }
  for (; c < C; ++c) {
    T acc[P] = {};
    for (int64_t i = i0; i < i1; ++i)
      for (int q = 0; q < Q; ++q) {
        if (!inside(q)) continue;
        const T xv = xb[(i * g.W + q) * C + c];
        for (int p = 0; p < P; ++p) {
          const int j = q - p * S;
          if (j >= 0 && j < K) acc[p] += xv * wt[(i * K + j) * C + c];
        }
      }
    for (int p = 0; p < P; ++p) out[p * C + c] = acc[p];
  }
}

// One output row (n, oh) of the forward, P columns at a time; blocks that
// touch the left or right padding take the masked kernel. K == 0: any k
// (generic kernel, columns one at a time at the borders).
template <class T, int K, int S, int P>
void fwd_row(const DwGeom& g, const T* xn, const T* wt, int64_t oh, int64_t lo, int64_t hi, T* yr) {
  int64_t i0, i1;
  conv_valid_taps(oh, g.H, g.k, g.stride, g.pad, &i0, &i1);
  if constexpr (K == 0) {
    auto single = [&](int64_t ow) {
      int64_t j0, j1;
      conv_valid_taps(ow, g.W, g.k, g.stride, g.pad, &j0, &j1);
      fwd_pixels<T, 1>(g, xn, wt, oh, ow, i0, i1, j0, j1, yr + ow * g.C);
    };
    for (int64_t ow = 0; ow < lo; ++ow) single(ow);
    int64_t ow = lo;
    for (; ow + kPix <= hi; ow += kPix) fwd_pixels<T, kPix>(g, xn, wt, oh, ow, i0, i1, 0, g.k, yr + ow * g.C);
    for (; ow < g.Wo; ++ow) single(ow);
  } else {
    int64_t ow = 0;
    for (; ow + P <= g.Wo; ow += P) {
      if (ow >= lo && ow + P <= hi) {
        fwd_block<T, K, S, P, false>(g, xn, wt, oh, ow, i0, i1, yr + ow * g.C);
      } else {
        fwd_block<T, K, S, P, true>(g, xn, wt, oh, ow, i0, i1, yr + ow * g.C);
      }
    }
    for (; ow < g.Wo; ++ow) fwd_block<T, K, S, 1, true>(g, xn, wt, oh, ow, i0, i1, yr + ow * g.C);
  }
}

// The forward over all rows (threads own disjoint output rows).
template <class T>
void forward_rows(const DwGeom& g, const T* x, const T* wt, T* y) {
  const int64_t C = g.C, k = g.k, s = g.stride;
  // Output columns whose k horizontal taps all fall inside the image.
  const int64_t lo = std::min(g.Wo, (g.pad + s - 1) / s);
  const int64_t hi = std::max(lo, std::min(g.Wo, g.W - k + g.pad >= 0 ? (g.W - k + g.pad) / s + 1 : 0));
#pragma omp parallel for schedule(static) if (g.N * g.Ho * g.Wo * C * k * k > 32768)
  for (int64_t r = 0; r < g.N * g.Ho; ++r) {
    const int64_t n = r / g.Ho, oh = r % g.Ho;
    const T* xn = x + n * g.H * g.W * C;
    T* yr = y + r * g.Wo * C;
    if (s == 1 && k == 3) fwd_row<T, 3, 1, 8>(g, xn, wt, oh, lo, hi, yr);
    else if (s == 1 && k == 5) fwd_row<T, 5, 1, 6>(g, xn, wt, oh, lo, hi, yr);
    else if (s == 1 && k == 7) fwd_row<T, 7, 1, 6>(g, xn, wt, oh, lo, hi, yr);
    else if (s == 2 && k == 3) fwd_row<T, 3, 2, 6>(g, xn, wt, oh, lo, hi, yr);
    else if (s == 2 && k == 5) fwd_row<T, 5, 2, 4>(g, xn, wt, oh, lo, hi, yr);
    else if (s == 2 && k == 7) fwd_row<T, 7, 2, 4>(g, xn, wt, oh, lo, hi, yr);
    else fwd_row<T, 0, 1, 1>(g, xn, wt, oh, lo, hi, yr);
  }
}

// Backward-input (gather form) for P input pixels iw, iw + s, .. of one row:
// vertical pairs (oh, i) start at (oh0, ia0), horizontal ones at (ow0 + p,
// j0) for pixel p, stepping oh/ow down and i/j up by s. For P > 1 the caller
// guarantees that every pixel has the same full list of horizontal taps.
template <class T, int64_t P>
void bwd_in_pixels(const DwGeom& g, const T* dyn, const T* wt, int64_t oh0, int64_t ia0, int64_t ow0, int64_t j0,
                   T* out) {
  using V = typename Vec<T>::type;
  constexpr int64_t L = Vec<T>::n;
  const int64_t C = g.C, k = g.k, s = g.stride, sC = s * C;
  int64_t c = 0;
  for (; c + L <= C; c += L) {
    V acc[P];
    for (int64_t p = 0; p < P; ++p) acc[p] = V{};
    for (int64_t oh = oh0, i = ia0; oh >= 0 && i < k; --oh, i += s) {
      const T* dr = dyn + oh * g.Wo * C + c;
      const T* wr = wt + i * k * C + c;
      for (int64_t ow = ow0, j = j0; ow >= 0 && j < k; --ow, j += s) {
        const V wv = vload(wr + j * C);
        const T* dp = dr + ow * C;
        for (int64_t p = 0; p < P; ++p) acc[p] += vload(dp + p * C) * wv;
      }
    }
    for (int64_t p = 0; p < P; ++p) vstore(out + p * sC + c, acc[p]);
  }
  for (; c < C; ++c) {
    T acc[P] = {};
    for (int64_t oh = oh0, i = ia0; oh >= 0 && i < k; --oh, i += s)
      for (int64_t ow = ow0, j = j0; ow >= 0 && j < k; --ow, j += s) {
        const T wv = wt[(i * k + j) * C + c];
        const T* dp = dyn + (oh * g.Wo + ow) * C + c;
        for (int64_t p = 0; p < P; ++p) acc[p] += dp[p * C] * wv;
      }
    for (int64_t p = 0; p < P; ++p) out[p * sC + c] = acc[p];
  }
}

// d[0 .. Vec<T>::n) += v, widened to double.
inline void add_to_double(double* d, Vec<double>::type v) { vstore(d, vload(d) + v); }
inline void add_to_double(double* d, Vec<float>::type v) {
#ifdef __AVX__
  const __m256 f = reinterpret_cast<const __m256&>(v);
  _mm256_storeu_pd(d, _mm256_add_pd(_mm256_loadu_pd(d), _mm256_cvtps_pd(_mm256_castps256_ps128(f))));
  _mm256_storeu_pd(d + 4, _mm256_add_pd(_mm256_loadu_pd(d + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(f, 1))));
#else
  for (int l = 0; l < 8; ++l) d[l] += static_cast<double>(v[l]);
#endif
}

// Weight gradient of one output row (dy row go) against one input row xr for
// all K horizontal taps: at[j * C + c] += sum over output columns (in order)
// of go[ow, c] * xr[ow * s - pad + j, c], the row sum taken in T. Columns in
// [lo, hi) have all K taps inside the row. K is fixed so that the K sums of a
// channel block stay in registers.
template <class T, int K>
void bwd_w_row(const DwGeom& g, const T* go, const T* xr, int64_t lo, int64_t hi, double* at) {
  using V = typename Vec<T>::type;
  constexpr int64_t L = Vec<T>::n;
  const int64_t C = g.C, s = g.stride, pad = g.pad;
  int64_t c = 0;
  for (; c + L <= C; c += L) {
    V a[K];
    for (int j = 0; j < K; ++j) a[j] = V{};
    auto partial = [&](int64_t ow) {
      int64_t j0, j1;
      conv_valid_taps(ow, g.W, K, s, pad, &j0, &j1);
      const V gv = vload(go + ow * C + c);
      const T* xp = xr + (ow * s - pad) * C + c;
      for (int j = 0; j < K; ++j)
        if (j >= j0 && j < j1) a[j] += gv * vload(xp + j * C);
    };
    for (int64_t ow = 0; ow < lo; ++ow) partial(ow);
    for (int64_t ow = lo; ow < hi; ++ow) {
      const V gv = vload(go + ow * C + c);
      const T* xp = xr + (ow * s - pad) * C + c;
      for (int j = 0; j < K; ++j) a[j] += gv * vload(xp + j * C);
    }
    for (int64_t ow = hi; ow < g.Wo; ++ow) partial(ow);
    for (int j = 0; j < K; ++j) add_to_double(at + j * C + c, a[j]);
  }
  for (; c < C; ++c) {
    T a[K] = {};
    for (int64_t ow = 0; ow < g.Wo; ++ow) {
      int64_t j0, j1;
      conv_valid_taps(ow, g.W, K, s, pad, &j0, &j1);
      for (int64_t j = j0; j < j1; ++j) a[j] += go[ow * C + c] * xr[(ow * s - pad + j) * C + c];
    }
    for (int j = 0; j < K; ++j) at[j * C + c] += static_cast<double>(a[j]);
  }
}

// The same for any k (unusual kernel sizes): one tap at a time.
template <class T>
void bwd_w_row_any(const DwGeom& g, const T* go, const T* xr, double* at) {
  const int64_t C = g.C, k = g.k, s = g.stride;
  for (int64_t j = 0; j < k; ++j)
    for (int64_t c = 0; c < C; ++c) {
      T a = T(0);
      for (int64_t ow = 0; ow < g.Wo; ++ow) {
        const int64_t iw = conv_in_index(ow, j, s, g.pad);
        if (iw >= 0 && iw < g.W) a += go[ow * C + c] * xr[iw * C + c];
      }
      at[j * C + c] += static_cast<double>(a);
    }
}

// Backward-input for stride 2, P input columns iw, iw + 2, .. of one input
// row (one residue class mod 2): pixel p gets sum over taps t < NT of
// dy[u0 + p - t] * w[j0 + 2 t] (then over the vertical pairs (oh, i) from
// (oh0, ia0)), i.e. a stride-1 correlation over dy columns, so each dy
// vector is loaded once for all P pixels. Masked: dy columns outside
// [0, Wo) are skipped, exactly the pairs the gather form never visits. Per
// pixel the order matches the gather form (t ascending).
template <class T, int NT, int P, bool Masked>
void bwd2_block(const DwGeom& g, const T* dyn, const T* wt, int64_t oh0, int64_t ia0, int64_t j0, int64_t u0,
                T* out) {
  using V = typename Vec<T>::type;
  constexpr int64_t L = Vec<T>::n;
  constexpr int Q = P + NT - 1;
  const int64_t C = g.C, k = g.k, ub = u0 - (NT - 1);  // q = 0 reads dy column ub
  auto inside = [&](int q) { return !Masked || (ub + q >= 0 && ub + q < g.Wo); };
  int64_t c = 0;
  for (; c + L <= C; c += L) {
    V acc[P];
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) acc[p] = V{};
    for (int64_t oh = oh0, i = ia0; oh >= 0 && i < k; --oh, i += 2) {
      const T* dr = dyn + (oh * g.Wo + ub) * C + c;
      const T* wr = wt + (i * k + j0) * C + c;
      V w[NT];
#pragma GCC unroll 16
      for (int t = 0; t < NT; ++t) w[t] = vload(wr + 2 * t * C);
#pragma GCC unroll 32
      for (int q = Q - 1; q >= 0; --q) {
        if (!inside(q)) continue;
        const V dv = vload(dr + q * C);
#pragma GCC unroll 16
        for (int p = 0; p < P; ++p) {
          const int t = NT - 1 + p - q;
          if (t >= 0 && t < NT) acc[p] += dv * w[t];
        }
      }
    }
#pragma GCC unroll 16
    for (int p = 0; p < P; ++p) vstore(out + 2 * p * C + c, acc[p]);
  }
  for (; c < C; ++c) {
    T acc[P] = {};
    for (int64_t oh = oh0, i = ia0; oh >= 0 && i < k; --oh, i += 2)
      for (int q = Q - 1; q >= 0; --q) {
        if (!inside(q)) continue;
        const T dv = dyn[(oh * g.Wo + ub + q) * C + c];
        for (int p = 0; p < P; ++p) {
          const int t = NT - 1 + p - q;
          if (t >= 0 && t < NT) acc[p] += dv * wt[(i * k + j0 + 2 * t) * C + c];
        }
      }
    for (int p = 0; p < P; ++p) out[2 * p * C + c] = acc[p];
  }
}

// One residue class rho of input row (n, ih) for stride 2, NT horizontal
// taps per column: columns P at a time, masked near the borders.
template <class T, int NT>
void bwd2_class(const DwGeom& g, const T* dyn, const T* wt, int64_t oh0, int64_t ia0, int64_t rho, T* xr) {
  constexpr int P = 4;
  const int64_t j0 = (rho + g.pad) % 2, base = (rho + g.pad) / 2, cols = (g.W - rho + 1) / 2;
  int64_t m = 0;
  for (; m + P <= cols; m += P) {
    const int64_t u0 = m + base;
    T* out = xr + (rho + 2 * m) * g.C;
    if (u0 - (NT - 1) >= 0 && u0 + P - 1 < g.Wo) {
      bwd2_block<T, NT, P, false>(g, dyn, wt, oh0, ia0, j0, u0, out);
    } else {
      bwd2_block<T, NT, P, true>(g, dyn, wt, oh0, ia0, j0, u0, out);
    }
  }
  for (; m < cols; ++m) bwd2_block<T, NT, 1, true>(g, dyn, wt, oh0, ia0, j0, m + base, xr + (rho + 2 * m) * g.C);
}

}  // namespace

template <class T>
void depthwise_forward(const DwGeom& g, const T* x, const T* w, int64_t ws_c, int64_t ws_i, int64_t ws_j, T* y) {
  if (g.N * g.Ho * g.Wo * g.C == 0) return;
  const std::vector<T> wt = transpose_taps(g, w, ws_c, ws_i, ws_j);
  forward_rows(g, x, wt.data(), y);
}

template <class T>
void depthwise_backward_input(const DwGeom& g, const T* dy, const T* w, int64_t ws_c, int64_t ws_i, int64_t ws_j,
                              T* dx) {
  const int64_t C = g.C, k = g.k, s = g.stride;
  if (g.N * g.H * g.W * C == 0) return;
  const std::vector<T> wt = transpose_taps(g, w, ws_c, ws_i, ws_j);
  if (s == 1 && g.pad <= k - 1) {
    // Stride 1: the input gradient is the forward convolution of dy with the
    // flipped kernel and padding k - 1 - pad.
    std::vector<T> wf(wt.size());
    for (int64_t t = 0; t < k * k; ++t)
      std::copy(wt.begin() + (k * k - 1 - t) * C, wt.begin() + (k * k - t) * C, wf.begin() + t * C);
    DwGeom f = g;
    f.H = g.Ho, f.W = g.Wo, f.Ho = g.H, f.Wo = g.W, f.pad = k - 1 - g.pad;
    forward_rows(f, dy, wf.data(), dx);
    return;
  }
  if (s == 2 && (k == 3 || k == 5 || k == 7)) {
    // Each residue class of input columns is a stride-1 correlation with
    // the taps of one parity (NT of them).
#pragma omp parallel for schedule(static) if (g.N * g.H * g.W * C * k * k > 32768 * s * s)
    for (int64_t r = 0; r < g.N * g.H; ++r) {
      const int64_t n = r / g.H, ih = r % g.H;
      const T* dyn = dy + n * g.Ho * g.Wo * C;
      T* xr = dx + r * g.W * C;
      int64_t oh0, ia0;
      conv_first_tap(ih, g.Ho, s, g.pad, &oh0, &ia0);
      for (int64_t rho = 0; rho < std::min<int64_t>(2, g.W); ++rho) {
        const int64_t nt = (k - (rho + g.pad) % 2 + 1) / 2;
        switch (nt) {
          case 1: bwd2_class<T, 1>(g, dyn, wt.data(), oh0, ia0, rho, xr); break;
          case 2: bwd2_class<T, 2>(g, dyn, wt.data(), oh0, ia0, rho, xr); break;
          case 3: bwd2_class<T, 3>(g, dyn, wt.data(), oh0, ia0, rho, xr); break;
          default: bwd2_class<T, 4>(g, dyn, wt.data(), oh0, ia0, rho, xr); break;
        }
      }
    }
    return;
  }
  // Gather form: each input pixel sums, in a fixed order, the outputs that
  // read it; threads own disjoint input rows.
#pragma omp parallel for schedule(static) if (g.N * g.H * g.W * C * k * k > 32768 * s * s)
  for (int64_t r = 0; r < g.N * g.H; ++r) {
    const int64_t n = r / g.H, ih = r % g.H;
    const T* dyn = dy + n * g.Ho * g.Wo * C;
    T* xr = dx + r * g.W * C;
    int64_t oh0, ia0;
    conv_first_tap(ih, g.Ho, s, g.pad, &oh0, &ia0);
    // Input columns of one residue class mod s share the horizontal tap
    // offsets; those whose whole tap list lies inside the output ("full")
    // form a contiguous run and are done kPix at a time.
    for (int64_t rho = 0; rho < std::min(s, g.W); ++rho) {
      int64_t iw = rho;
      while (iw < g.W) {
        int64_t ow0, j0;
        conv_first_tap(iw, g.Wo, s, g.pad, &ow0, &j0);
        const int64_t nt = j0 < k ? (k - j0 + s - 1) / s : 0;
        const int64_t last = iw + (kPix - 1) * s;
        bool block = last < g.W && nt > 0 && (iw + g.pad) / s == ow0 && ow0 - nt + 1 >= 0;
        if (block) {
          int64_t owl, jl;
          conv_first_tap(last, g.Wo, s, g.pad, &owl, &jl);
          block = (last + g.pad) / s == owl;
        }
        if (block) {
          bwd_in_pixels<T, kPix>(g, dyn, wt.data(), oh0, ia0, ow0, j0, xr + iw * C);
          iw += kPix * s;
        } else {
          bwd_in_pixels<T, 1>(g, dyn, wt.data(), oh0, ia0, ow0, j0, xr + iw * C);
          iw += s;
        }
      }
    }
  }
}

template <class T>
void depthwise_backward_weight(const DwGeom& g, const T* x, const T* dy, T* dw) {
  const int64_t C = g.C, k = g.k, kk = k * k, s = g.stride;
  if (kk * C == 0) return;
  // Blocks of whole images, fixed by N alone (at most 16 partial buffers).
  const int64_t nblocks = std::max<int64_t>(1, std::min<int64_t>(g.N, 16));
  const int64_t per_block = g.N == 0 ? 0 : (g.N + nblocks - 1) / nblocks;
  std::vector<double> part(static_cast<size_t>(nblocks * kk * C), 0.0);
  const int64_t lo = std::min(g.Wo, (g.pad + s - 1) / s);
  const int64_t hi = std::max(lo, std::min(g.Wo, g.W - k + g.pad >= 0 ? (g.W - k + g.pad) / s + 1 : 0));
#pragma omp parallel for schedule(static) if (g.N * g.Ho * g.Wo * C * kk > 32768)
  for (int64_t b = 0; b < nblocks; ++b) {
    double* acc = part.data() + b * kk * C;
    const int64_t n1 = std::min(g.N, (b + 1) * per_block);
    for (int64_t n = b * per_block; n < n1; ++n) {
      for (int64_t oh = 0; oh < g.Ho; ++oh) {
        int64_t i0, i1;
        conv_valid_taps(oh, g.H, k, s, g.pad, &i0, &i1);
        const T* go = dy + (n * g.Ho + oh) * g.Wo * C;
        for (int64_t i = i0; i < i1; ++i) {
          const int64_t ih = conv_in_index(oh, i, s, g.pad);
          const T* xr = x + (n * g.H + ih) * g.W * C;
          double* at = acc + i * k * C;
          if (k == 3) {
            bwd_w_row<T, 3>(g, go, xr, lo, hi, at);
          } else if (k == 5) {
            bwd_w_row<T, 5>(g, go, xr, lo, hi, at);
          } else if (k == 7) {
            bwd_w_row<T, 7>(g, go, xr, lo, hi, at);
          } else {
            bwd_w_row_any(g, go, xr, at);
          }
        }
      }
    }
  }
  for (int64_t c = 0; c < C; ++c)
    for (int64_t t = 0; t < kk; ++t) {
      double sum = 0.0;
      for (int64_t b = 0; b < nblocks; ++b) sum += part[(b * kk + t) * C + c];
      dw[c * kk + t] = static_cast<T>(sum);
    }
}

#define OFA_INSTANTIATE(T)                                                                                        \
  template void depthwise_forward<T>(const DwGeom&, const T*, const T*, int64_t, int64_t, int64_t, T*);            \
  template void depthwise_backward_input<T>(const DwGeom&, const T*, const T*, int64_t, int64_t, int64_t, T*);     \
  template void depthwise_backward_weight<T>(const DwGeom&, const T*, const T*, T*);
OFA_INSTANTIATE(float)
OFA_INSTANTIATE(double)
#undef OFA_INSTANTIATE

}  // namespace ofa::kernels::cpu
