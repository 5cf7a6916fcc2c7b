#include "kernels/cpu/conv2d.h"

#include <algorithm>
#include <vector>

#include "kernels/common/conv_math.h"
#include "kernels/cpu/gemm.h"

namespace ofa::kernels::cpu {

namespace {

// Caps the im2col buffer; the batch is processed in chunks of whole images.
constexpr int64_t kColBytes = int64_t(32) << 20;

template <class T>
int64_t images_per_chunk(const Conv2dGeom& g) {
  const int64_t per_image = std::max<int64_t>(1, g.Ho * g.Wo * g.k_g() * static_cast<int64_t>(sizeof(T)));
  return std::max<int64_t>(1, std::min<int64_t>(g.N, kColBytes / per_image));
}

// col [nb * Ho * Wo, K_g]: row p = one output pixel of images n0.., columns in
// the weight's (ci, i, j) order for the channels of group `grp`; zeros where
// the tap falls into the padding.
template <class T>
void im2col(const Conv2dGeom& g, const T* x, int64_t n0, int64_t nb, int64_t grp, T* col) {
  const int64_t K = g.k_g(), khw = g.kh * g.kw, cg = g.cin_g(), rows = nb * g.Ho * g.Wo;
#pragma omp parallel for schedule(static) if (rows * K > 32768)
  for (int64_t p = 0; p < rows; ++p) {
    const int64_t n = n0 + p / (g.Ho * g.Wo), oh = (p / g.Wo) % g.Ho, ow = p % g.Wo;
    T* c = col + p * K;
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t ih = conv_in_index(oh, i, g.sh, g.ph);
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t iw = conv_in_index(ow, j, g.sw, g.pw);
        T* dst = c + i * g.kw + j;
        if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) {
          for (int64_t ci = 0; ci < cg; ++ci) dst[ci * khw] = T(0);
        } else {
          const T* src = x + ((n * g.H + ih) * g.W + iw) * g.Cin + grp * cg;
          for (int64_t ci = 0; ci < cg; ++ci) dst[ci * khw] = src[ci];
        }
      }
    }
  }
}

// The adjoint of im2col for group `grp`: every input pixel of images n0..
// gathers (in a fixed order) the col entries that read it and writes the sum.
template <class T>
void col2im(const Conv2dGeom& g, const T* col, int64_t n0, int64_t nb, int64_t grp, T* dx) {
  const int64_t K = g.k_g(), khw = g.kh * g.kw, cg = g.cin_g();
#pragma omp parallel for schedule(static) if (nb * g.H * g.W * K > 32768)
  for (int64_t r = 0; r < nb * g.H; ++r) {
    const int64_t nl = r / g.H, ih = r % g.H;
    int64_t oh0, i0;
    conv_first_tap(ih, g.Ho, g.sh, g.ph, &oh0, &i0);
    for (int64_t iw = 0; iw < g.W; ++iw) {
      int64_t ow0, j0;
      conv_first_tap(iw, g.Wo, g.sw, g.pw, &ow0, &j0);
      T* out = dx + (((n0 + nl) * g.H + ih) * g.W + iw) * g.Cin + grp * cg;
      for (int64_t ci = 0; ci < cg; ++ci) out[ci] = T(0);
      for (int64_t oh = oh0, i = i0; oh >= 0 && i < g.kh; --oh, i += g.sh) {
        for (int64_t ow = ow0, j = j0; ow >= 0 && j < g.kw; --ow, j += g.sw) {
          const T* src = col + ((nl * g.Ho + oh) * g.Wo + ow) * K + i * g.kw + j;
          for (int64_t ci = 0; ci < cg; ++ci) out[ci] += src[ci * khw];
        }
      }
    }
  }
}

template <class T>
MatRef<T> weight_group(const Conv2dGeom& g, const T* w, int64_t w_rs, int64_t w_cs, int64_t grp) {
  return {w + grp * g.cout_g() * w_rs, g.cout_g(), g.k_g(), w_rs, w_cs};
}

}  // namespace

template <class T>
void conv2d_forward(const Conv2dGeom& g, const T* x, const T* w, int64_t w_rs, int64_t w_cs, const T* bias,
                    int64_t bias_stride, T* y) {
  const int64_t P = g.N * g.Ho * g.Wo, cg = g.cin_g(), og = g.cout_g();
  if (P == 0 || g.Cout == 0) return;
  if (bias) fill_rows(y, P, g.Cout, g.Cout, bias, bias_stride);
  const T beta = bias ? T(1) : T(0);
  if (g.pointwise()) {
    // The NHWC input is already the [N*H*W, Cin] matrix.
    for (int64_t grp = 0; grp < g.groups; ++grp)
      gemm<T>({x + grp * cg, P, cg, g.Cin, 1}, weight_group(g, w, w_rs, w_cs, grp).transposed(), T(1), beta,
              y + grp * og, g.Cout);
    return;
  }
  const int64_t nbmax = images_per_chunk<T>(g), K = g.k_g(), HWo = g.Ho * g.Wo;
  std::vector<T> col(static_cast<size_t>(nbmax * HWo * K));
  for (int64_t n0 = 0; n0 < g.N; n0 += nbmax) {
    const int64_t nb = std::min(nbmax, g.N - n0);
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      im2col(g, x, n0, nb, grp, col.data());
      gemm<T>({col.data(), nb * HWo, K, K, 1}, weight_group(g, w, w_rs, w_cs, grp).transposed(), T(1), beta,
              y + n0 * HWo * g.Cout + grp * og, g.Cout);
    }
  }
}

template <class T>
void conv2d_backward_input(const Conv2dGeom& g, const T* dy, const T* w, int64_t w_rs, int64_t w_cs, T* dx) {
  const int64_t cg = g.cin_g(), og = g.cout_g(), HWo = g.Ho * g.Wo;
  if (g.N * g.H * g.W * g.Cin == 0) return;
  if (g.pointwise()) {
    for (int64_t grp = 0; grp < g.groups; ++grp)
      gemm<T>({dy + grp * og, g.N * HWo, og, g.Cout, 1}, weight_group(g, w, w_rs, w_cs, grp), T(1), T(0),
              dx + grp * cg, g.Cin);
    return;
  }
  const int64_t nbmax = images_per_chunk<T>(g), K = g.k_g();
  std::vector<T> col(static_cast<size_t>(nbmax * HWo * K));
  for (int64_t n0 = 0; n0 < g.N; n0 += nbmax) {
    const int64_t nb = std::min(nbmax, g.N - n0);
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      gemm<T>({dy + n0 * HWo * g.Cout + grp * og, nb * HWo, og, g.Cout, 1}, weight_group(g, w, w_rs, w_cs, grp),
              T(1), T(0), col.data(), K);
      col2im(g, col.data(), n0, nb, grp, dx);
    }
  }
}

template <class T>
void conv2d_backward_weight(const Conv2dGeom& g, const T* x, const T* dy, T* dw) {
  const int64_t cg = g.cin_g(), og = g.cout_g(), HWo = g.Ho * g.Wo, K = g.k_g();
  if (g.Cout * K == 0) return;
  if (g.pointwise()) {
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      MatRef<T> dyg{dy + grp * og, g.N * HWo, og, g.Cout, 1};
      gemm<T>(dyg.transposed(), {x + grp * cg, g.N * HWo, cg, g.Cin, 1}, T(1), T(0), dw + grp * og * K, K);
    }
    return;
  }
  const int64_t nbmax = images_per_chunk<T>(g);
  std::vector<T> col(static_cast<size_t>(nbmax * HWo * K));
  // Chunks accumulate into dw in batch order (beta = 1 after the first).
  for (int64_t n0 = 0; n0 < std::max<int64_t>(g.N, 1); n0 += nbmax) {
    const int64_t nb = std::min(nbmax, g.N - n0);
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      if (nb > 0) im2col(g, x, n0, nb, grp, col.data());
      MatRef<T> dyg{dy + n0 * HWo * g.Cout + grp * og, nb * HWo, og, g.Cout, 1};
      gemm<T>(dyg.transposed(), {col.data(), nb * HWo, K, K, 1}, T(1), n0 == 0 ? T(0) : T(1), dw + grp * og * K, K);
    }
  }
}

#define OFA_INSTANTIATE(T)                                                                                        \
  template void conv2d_forward<T>(const Conv2dGeom&, const T*, const T*, int64_t, int64_t, const T*, int64_t, T*); \
  template void conv2d_backward_input<T>(const Conv2dGeom&, const T*, const T*, int64_t, int64_t, T*);             \
  template void conv2d_backward_weight<T>(const Conv2dGeom&, const T*, const T*, T*);
OFA_INSTANTIATE(float)
OFA_INSTANTIATE(double)
#undef OFA_INSTANTIATE

}  // namespace ofa::kernels::cpu
