#include "kernels/cpu/conv2d.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/common/conv_math.h"
#include "kernels/cpu/simd.h"
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


// A per-thread scratch buffer that is grown but never shrunk or cleared:
// im2col writes every element (zeros included), so no fill is needed, and
// reusing the pages avoids fresh page faults on every call.
template <class T>
T* scratch(int64_t n) {
  thread_local std::vector<T> buf;
  if (static_cast<int64_t>(buf.size()) < n) {
    buf = std::vector<T>();
    buf.resize(static_cast<size_t>(n));
  }
  return buf.data();
}


// Direct convolution pays where the GEMM is too thin (the stem: 3 input
// channels, K_g = 27): one group, small K_g.
constexpr int64_t kDirectMaxK = 64;
bool use_direct(const Conv2dGeom& g) { return g.groups == 1 && !g.pointwise() && g.k_g() <= kDirectMaxK; }

// P output pixels ow, ow + 1, .. of row (n, oh), output channels
// [o0, o0 + OB * L) (wt padded with zeros to Cp columns): per tap q the
// weight vectors are loaded once and each input value is broadcast to all
// of them; taps in (ci, i, j) order as in the GEMM, y = sum + bias. Taps
// (i, j) outside the image are skipped (j in [j0, j1) for all P pixels).
template <class T, int P, int OB>
void direct_pixels(const Conv2dGeom& g, const T* xn, const T* wt, int64_t Cp, int64_t oh, int64_t ow,
                   int64_t o0, int64_t i0, int64_t i1, int64_t j0, int64_t j1, const T* bias, int64_t bias_stride,
                   T* yp) {
  using V = typename Vec<T>::type;
  constexpr int64_t L = Vec<T>::n;
  V acc[P][OB];
  for (int p = 0; p < P; ++p)
    for (int b = 0; b < OB; ++b) acc[p][b] = V{};
  const int64_t khw = g.kh * g.kw;
  for (int64_t ci = 0; ci < g.Cin; ++ci)
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t ih = oh * g.sh - g.ph + i;
      const T* xr = xn + ih * g.W * g.Cin + ci;
      for (int64_t j = j0; j < j1; ++j) {
        const T* wq = wt + (ci * khw + i * g.kw + j) * Cp + o0;
        V wv[OB];
        for (int b = 0; b < OB; ++b) std::memcpy(&wv[b], wq + b * L, sizeof(V));
        const T* xp = xr + (ow * g.sw - g.pw + j) * g.Cin;
        for (int p = 0; p < P; ++p) {
          const T xv = xp[p * g.sw * g.Cin];
          for (int b = 0; b < OB; ++b) acc[p][b] += xv * wv[b];
        }
      }
    }
  const int64_t nvalid = std::min<int64_t>(OB * L, g.Cout - o0);
  for (int p = 0; p < P; ++p) {
    T tmp[OB * L];
    std::memcpy(tmp, acc[p], sizeof(tmp));
    T* out = yp + p * g.Cout + o0;
    if (bias) {
      for (int64_t o = 0; o < nvalid; ++o) out[o] = tmp[o] + bias[(o0 + o) * bias_stride];
    } else {
      for (int64_t o = 0; o < nvalid; ++o) out[o] = tmp[o];
    }
  }
}

template <class T>
void conv2d_direct(const Conv2dGeom& g, const T* x, const T* w, int64_t w_rs, int64_t w_cs, const T* bias,
                   int64_t bias_stride, T* y) {
  constexpr int64_t L = Vec<T>::n, OB = 2, P = 4;
  const int64_t K = g.k_g(), Cp = (g.Cout + OB * L - 1) / (OB * L) * (OB * L);
  // wt[q][o]: the weight transposed, output channels contiguous.
  std::vector<T> wt(static_cast<size_t>(K * Cp), T(0));
  for (int64_t o = 0; o < g.Cout; ++o)
    for (int64_t q = 0; q < K; ++q) wt[q * Cp + o] = w[o * w_rs + q * w_cs];
  // Output columns whose taps all fall inside the image.
  const int64_t lo = std::min(g.Wo, (g.pw + g.sw - 1) / g.sw);
  const int64_t hi = std::max(lo, std::min(g.Wo, g.W - g.kw + g.pw >= 0 ? (g.W - g.kw + g.pw) / g.sw + 1 : 0));
#pragma omp parallel for schedule(static) if (g.N * g.Ho * g.Wo * g.Cout * K > 32768)
  for (int64_t r = 0; r < g.N * g.Ho; ++r) {
    const int64_t n = r / g.Ho, oh = r % g.Ho;
    const T* xn = x + n * g.H * g.W * g.Cin;
    T* yr = y + r * g.Wo * g.Cout;
    int64_t i0, i1;
    conv_valid_taps(oh, g.H, g.kh, g.sh, g.ph, &i0, &i1);
    for (int64_t o0 = 0; o0 < g.Cout; o0 += OB * L) {
      auto single = [&](int64_t ow) {
        int64_t j0, j1;
        conv_valid_taps(ow, g.W, g.kw, g.sw, g.pw, &j0, &j1);
        direct_pixels<T, 1, OB>(g, xn, wt.data(), Cp, oh, ow, o0, i0, i1, j0, j1, bias, bias_stride,
                                yr + ow * g.Cout);
      };
      for (int64_t ow = 0; ow < lo; ++ow) single(ow);
      int64_t ow = lo;
      for (; ow + P <= hi; ow += P)
        direct_pixels<T, P, OB>(g, xn, wt.data(), Cp, oh, ow, o0, i0, i1, 0, g.kw, bias, bias_stride,
                                yr + ow * g.Cout);
      for (; ow < g.Wo; ++ow) single(ow);
    }
  }
}

// Weight gradient for the direct case. Per output row, the row's im2col
// block (Wo x Kp, zeros at padding taps and for q >= K) is built in a small
// buffer; then for QC taps at a time the QC x OB sums stay in registers over
// the row, and the row sums are added to double partials. Partials belong to
// blocks of whole images fixed by N alone, reduced in block order: the
// result does not depend on the thread count.
template <class T>
void conv2d_direct_backward_weight(const Conv2dGeom& g, const T* x, const T* dy, T* dw) {
  using V = typename Vec<T>::type;
  constexpr int64_t L = Vec<T>::n, OB = 2, QC = 6;
  const int64_t K = g.k_g(), Kp = (K + QC - 1) / QC * QC, Cp = (g.Cout + OB * L - 1) / (OB * L) * (OB * L);
  const int64_t khw = g.kh * g.kw;
  const int64_t nblocks = std::max<int64_t>(1, std::min<int64_t>(g.N, 16));
  const int64_t per_block = g.N == 0 ? 0 : (g.N + nblocks - 1) / nblocks;
  std::vector<double> part(static_cast<size_t>(nblocks * Kp * Cp), 0.0);
#pragma omp parallel for schedule(static) if (g.N * g.Ho * g.Wo * g.Cout * K > 32768)
  for (int64_t b = 0; b < nblocks; ++b) {
    std::vector<T> colr(static_cast<size_t>(g.Wo * Kp)), dyr(static_cast<size_t>(g.Wo * Cp), T(0));
    double* acc = part.data() + b * Kp * Cp;
    const int64_t n1 = std::min(g.N, (b + 1) * per_block);
    for (int64_t n = b * per_block; n < n1; ++n)
      for (int64_t oh = 0; oh < g.Ho; ++oh) {
        int64_t i0, i1;
        conv_valid_taps(oh, g.H, g.kh, g.sh, g.ph, &i0, &i1);
        const T* xn = x + n * g.H * g.W * g.Cin;
        for (int64_t ow = 0; ow < g.Wo; ++ow) {
          T* c = colr.data() + ow * Kp;
          std::fill(c, c + Kp, T(0));
          int64_t j0, j1;
          conv_valid_taps(ow, g.W, g.kw, g.sw, g.pw, &j0, &j1);
          for (int64_t i = i0; i < i1; ++i) {
            const T* xr = xn + (conv_in_index(oh, i, g.sh, g.ph) * g.W + (ow * g.sw - g.pw)) * g.Cin;
            for (int64_t j = j0; j < j1; ++j)
              for (int64_t ci = 0; ci < g.Cin; ++ci) c[ci * khw + i * g.kw + j] = xr[j * g.Cin + ci];
          }
        }
        const T* gy = dy + (n * g.Ho + oh) * g.Wo * g.Cout;
        const T* dyp = gy;
        int64_t ld = g.Cout;
        if (Cp != g.Cout) {
          for (int64_t ow = 0; ow < g.Wo; ++ow) std::copy(gy + ow * g.Cout, gy + (ow + 1) * g.Cout, dyr.data() + ow * Cp);
          dyp = dyr.data();
          ld = Cp;
        }
        for (int64_t o0 = 0; o0 < Cp; o0 += OB * L)
          for (int64_t q0 = 0; q0 < Kp; q0 += QC) {
            V a[QC][OB];
            for (int qq = 0; qq < QC; ++qq)
              for (int bb = 0; bb < OB; ++bb) a[qq][bb] = V{};
            for (int64_t ow = 0; ow < g.Wo; ++ow) {
              V gv[OB];
              for (int bb = 0; bb < OB; ++bb) std::memcpy(&gv[bb], dyp + ow * ld + o0 + bb * L, sizeof(V));
              const T* c = colr.data() + ow * Kp + q0;
              for (int qq = 0; qq < QC; ++qq) {
                const T xv = c[qq];
                for (int bb = 0; bb < OB; ++bb) a[qq][bb] += xv * gv[bb];
              }
            }
            for (int qq = 0; qq < QC; ++qq)
              for (int bb = 0; bb < OB; ++bb) {
                double* d = acc + (q0 + qq) * Cp + o0 + bb * L;
                for (int64_t l = 0; l < L; ++l) d[l] += static_cast<double>(a[qq][bb][l]);
              }
          }
      }
  }
  for (int64_t o = 0; o < g.Cout; ++o)
    for (int64_t q = 0; q < K; ++q) {
      double sum = 0.0;
      for (int64_t b = 0; b < nblocks; ++b) sum += part[(b * Kp + q) * Cp + o];
      dw[o * K + q] = static_cast<T>(sum);
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
  if (use_direct(g)) {
    conv2d_direct(g, x, w, w_rs, w_cs, bias, bias_stride, y);
    return;
  }
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
  T* col = scratch<T>(nbmax * HWo * K);
  for (int64_t n0 = 0; n0 < g.N; n0 += nbmax) {
    const int64_t nb = std::min(nbmax, g.N - n0);
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      im2col(g, x, n0, nb, grp, col);
      gemm<T>({col, nb * HWo, K, K, 1}, weight_group(g, w, w_rs, w_cs, grp).transposed(), T(1), beta,
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
  T* col = scratch<T>(nbmax * HWo * K);
  for (int64_t n0 = 0; n0 < g.N; n0 += nbmax) {
    const int64_t nb = std::min(nbmax, g.N - n0);
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      gemm<T>({dy + n0 * HWo * g.Cout + grp * og, nb * HWo, og, g.Cout, 1}, weight_group(g, w, w_rs, w_cs, grp),
              T(1), T(0), col, K);
      col2im(g, col, n0, nb, grp, dx);
    }
  }
}

template <class T>
void conv2d_backward_weight(const Conv2dGeom& g, const T* x, const T* dy, T* dw) {
  const int64_t cg = g.cin_g(), og = g.cout_g(), HWo = g.Ho * g.Wo, K = g.k_g();
  if (g.Cout * K == 0) return;
  if (use_direct(g)) {
    conv2d_direct_backward_weight(g, x, dy, dw);
    return;
  }
  if (g.pointwise()) {
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      MatRef<T> dyg{dy + grp * og, g.N * HWo, og, g.Cout, 1};
      gemm<T>(dyg.transposed(), {x + grp * cg, g.N * HWo, cg, g.Cin, 1}, T(1), T(0), dw + grp * og * K, K);
    }
    return;
  }
  const int64_t nbmax = images_per_chunk<T>(g);
  T* col = scratch<T>(nbmax * HWo * K);
  // Chunks accumulate into dw in batch order (beta = 1 after the first).
  for (int64_t n0 = 0; n0 < std::max<int64_t>(g.N, 1); n0 += nbmax) {
    const int64_t nb = std::min(nbmax, g.N - n0);
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      if (nb > 0) im2col(g, x, n0, nb, grp, col);
      MatRef<T> dyg{dy + n0 * HWo * g.Cout + grp * og, nb * HWo, og, g.Cout, 1};
      gemm<T>(dyg.transposed(), {col, nb * HWo, K, K, 1}, T(1), n0 == 0 ? T(0) : T(1), dw + grp * og * K, K);
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
