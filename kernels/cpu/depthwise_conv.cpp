#include "kernels/cpu/depthwise_conv.h"

#include <algorithm>
#include <vector>

#include "kernels/common/conv_math.h"

namespace ofa::kernels::cpu {

namespace {

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

}  // namespace

template <class T>
void depthwise_forward(const DwGeom& g, const T* x, const T* w, int64_t ws_c, int64_t ws_i, int64_t ws_j, T* y) {
  const int64_t C = g.C, k = g.k;
  if (g.N * g.Ho * g.Wo * C == 0) return;
  const std::vector<T> wt = transpose_taps(g, w, ws_c, ws_i, ws_j);
#pragma omp parallel for schedule(static) if (g.N * g.Ho * g.Wo * C * k * k > 32768)
  for (int64_t r = 0; r < g.N * g.Ho; ++r) {
    const int64_t n = r / g.Ho, oh = r % g.Ho;
    int64_t i0, i1;
    conv_valid_taps(oh, g.H, k, g.stride, g.pad, &i0, &i1);
    for (int64_t ow = 0; ow < g.Wo; ++ow) {
      int64_t j0, j1;
      conv_valid_taps(ow, g.W, k, g.stride, g.pad, &j0, &j1);
      T* out = y + ((n * g.Ho + oh) * g.Wo + ow) * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) out[c] = T(0);
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t ih = conv_in_index(oh, i, g.stride, g.pad);
        for (int64_t j = j0; j < j1; ++j) {
          const int64_t iw = conv_in_index(ow, j, g.stride, g.pad);
          const T* src = x + ((n * g.H + ih) * g.W + iw) * C;
          const T* tap = wt.data() + (i * k + j) * C;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) out[c] += src[c] * tap[c];
        }
      }
    }
  }
}

template <class T>
void depthwise_backward_input(const DwGeom& g, const T* dy, const T* w, int64_t ws_c, int64_t ws_i, int64_t ws_j,
                              T* dx) {
  const int64_t C = g.C, k = g.k, s = g.stride;
  if (g.N * g.H * g.W * C == 0) return;
  const std::vector<T> wt = transpose_taps(g, w, ws_c, ws_i, ws_j);
  // Gather form: each input pixel sums, in a fixed order, the outputs that
  // read it; threads own disjoint input rows.
#pragma omp parallel for schedule(static) if (g.N * g.H * g.W * C * k * k > 32768 * s * s)
  for (int64_t r = 0; r < g.N * g.H; ++r) {
    const int64_t n = r / g.H, ih = r % g.H;
    int64_t oh0, i0;
    conv_first_tap(ih, g.Ho, s, g.pad, &oh0, &i0);
    for (int64_t iw = 0; iw < g.W; ++iw) {
      int64_t ow0, j0;
      conv_first_tap(iw, g.Wo, s, g.pad, &ow0, &j0);
      T* out = dx + ((n * g.H + ih) * g.W + iw) * C;
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) out[c] = T(0);
      for (int64_t oh = oh0, i = i0; oh >= 0 && i < k; --oh, i += s) {
        for (int64_t ow = ow0, j = j0; ow >= 0 && j < k; --ow, j += s) {
          const T* src = dy + ((n * g.Ho + oh) * g.Wo + ow) * C;
          const T* tap = wt.data() + (i * k + j) * C;
#pragma omp simd
          for (int64_t c = 0; c < C; ++c) out[c] += src[c] * tap[c];
        }
      }
    }
  }
}

template <class T>
void depthwise_backward_weight(const DwGeom& g, const T* x, const T* dy, T* dw) {
  const int64_t C = g.C, k = g.k, kk = k * k;
  if (kk * C == 0) return;
  // Blocks of whole images, fixed by N alone (at most 16 partial buffers).
  const int64_t nblocks = std::max<int64_t>(1, std::min<int64_t>(g.N, 16));
  const int64_t per_block = g.N == 0 ? 0 : (g.N + nblocks - 1) / nblocks;
  std::vector<double> part(static_cast<size_t>(nblocks * kk * C), 0.0);
#pragma omp parallel for schedule(static) if (g.N * g.Ho * g.Wo * C * kk > 32768)
  for (int64_t b = 0; b < nblocks; ++b) {
    double* acc = part.data() + b * kk * C;
    const int64_t n1 = std::min(g.N, (b + 1) * per_block);
    for (int64_t n = b * per_block; n < n1; ++n) {
      for (int64_t oh = 0; oh < g.Ho; ++oh) {
        int64_t i0, i1;
        conv_valid_taps(oh, g.H, k, g.stride, g.pad, &i0, &i1);
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          int64_t j0, j1;
          conv_valid_taps(ow, g.W, k, g.stride, g.pad, &j0, &j1);
          const T* go = dy + ((n * g.Ho + oh) * g.Wo + ow) * C;
          for (int64_t i = i0; i < i1; ++i) {
            const int64_t ih = conv_in_index(oh, i, g.stride, g.pad);
            for (int64_t j = j0; j < j1; ++j) {
              const int64_t iw = conv_in_index(ow, j, g.stride, g.pad);
              const T* src = x + ((n * g.H + ih) * g.W + iw) * C;
              double* a = acc + (i * k + j) * C;
#pragma omp simd
              for (int64_t c = 0; c < C; ++c) a[c] += static_cast<double>(go[c]) * static_cast<double>(src[c]);
            }
          }
        }
      }
    }
  }
  for (int64_t c = 0; c < C; ++c)
    for (int64_t t = 0; t < kk; ++t) {
      double s = 0.0;
      for (int64_t b = 0; b < nblocks; ++b) s += part[(b * kk + t) * C + c];
      dw[c * kk + t] = static_cast<T>(s);
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
