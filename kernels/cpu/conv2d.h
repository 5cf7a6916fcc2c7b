// defines: Conv2dGeom, conv2d_forward, conv2d_backward_input,
// conv2d_backward_weight (im2col + GEMM on channels-last activations)
#pragma once
#include <cstdint>

namespace ofa::kernels::cpu {

// Sizes of one grouped convolution. Activations are dense NHWC:
// x [N, H, W, Cin], y [N, Ho, Wo, Cout].
struct Conv2dGeom {
  int64_t N = 0, H = 0, W = 0, Cin = 0, Cout = 0;
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, groups = 1;
  int64_t Ho = 0, Wo = 0;
  int64_t cin_g() const { return Cin / groups; }
  int64_t cout_g() const { return Cout / groups; }
  int64_t k_g() const { return cin_g() * kh * kw; }  // GEMM depth per group
  // One GEMM straight over the input pixels, no im2col.
  bool pointwise() const { return kh == 1 && kw == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0; }
};

// The weight [Cout, Cin/groups, kh, kw] seen as the matrix [Cout, K_g] with
// K_g flattened in (ci, i, j) order: element (o, q) at w[o * w_rs + q * w_cs].
// The caller guarantees this flattening exists and is BLAS-compatible per
// group (blas_ready(Cout/groups, K_g, w_rs, w_cs)).
// bias may be null; its element o is at bias[o * bias_stride].
template <class T>
void conv2d_forward(const Conv2dGeom& g, const T* x, const T* w, int64_t w_rs, int64_t w_cs, const T* bias,
                    int64_t bias_stride, T* y);
// dx [N, H, W, Cin] (fully written) from dy [N, Ho, Wo, Cout].
template <class T>
void conv2d_backward_input(const Conv2dGeom& g, const T* dy, const T* w, int64_t w_rs, int64_t w_cs, T* dx);
// dw: dense [Cout, K_g] (the contiguous [Cout, Cin/groups, kh, kw]), fully written.
template <class T>
void conv2d_backward_weight(const Conv2dGeom& g, const T* x, const T* dy, T* dw);

}  // namespace ofa::kernels::cpu
