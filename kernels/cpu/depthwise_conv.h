// defines: DwGeom, depthwise_forward, depthwise_backward_input,
// depthwise_backward_weight (direct k x k depthwise convolution on NHWC,
// vectorised along the contiguous channels)
#pragma once
#include <cstdint>

namespace ofa::kernels::cpu {

// x [N, H, W, C] and y [N, Ho, Wo, C] dense NHWC; square k x k kernel,
// padding k / 2 on every side.
struct DwGeom {
  int64_t N = 0, H = 0, W = 0, C = 0, k = 3, stride = 1, pad = 1, Ho = 0, Wo = 0;
};

// The weight [C, 1, k, k] is read through its strides: tap (c, i, j) at
// w[c * ws_c + i * ws_i + j * ws_j] (a centre crop of a larger kernel or a
// channel slice is a view, never copied).
template <class T>
void depthwise_forward(const DwGeom& g, const T* x, const T* w, int64_t ws_c, int64_t ws_i, int64_t ws_j, T* y);
// dx [N, H, W, C], fully written.
template <class T>
void depthwise_backward_input(const DwGeom& g, const T* dy, const T* w, int64_t ws_c, int64_t ws_i, int64_t ws_j,
                              T* dx);
// dw dense [C, k, k], fully written. Per-block partial sums (blocks of whole
// images fixed by N alone) in double (each output row's products summed in T
// first), reduced in block order: the result does not depend on the thread
// count.
template <class T>
void depthwise_backward_weight(const DwGeom& g, const T* x, const T* dy, T* dw);

}  // namespace ofa::kernels::cpu
