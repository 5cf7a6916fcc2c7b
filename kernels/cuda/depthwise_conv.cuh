// defines: ofa::kernels::cuda::depthwise_forward (cuda_emu:: when emulated), depthwise_backward_input,
// depthwise_backward_weight, depthwise_backward_weight_workspace_bytes (the
// CUDA twins of kernels/cpu/depthwise_conv.h: same DwGeom, same argument
// meaning, device pointers, plus a stream and, for the weight gradient, a
// workspace). Plain C++: includable from host code compiled by g++.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/depthwise_conv.h"

struct CUstream_st;  // cudaStream_t is CUstream_st*

// cuda (nvcc) or cuda_emu (the CPU emulation, set by cuda_compat.h).
#ifndef OFA_CUDA_NS
#define OFA_CUDA_NS cuda
#endif

namespace ofa::kernels::OFA_CUDA_NS {

using DwGeom = ::ofa::kernels::cpu::DwGeom;

// x [N, H, W, C], y [N, Ho, Wo, C] dense NHWC; k in {3, 5, 7}, any stride >= 1,
// padding g.pad. The weight is read through its strides: tap (c, i, j) at
// w[c * ws_c + i * ws_i + j * ws_j] (centre crop of the stored 7x7 kernel or
// channel slice = pointer offset + strides, never copied). y fully written.
template <class T>
void depthwise_forward(const DwGeom& g, const T* x, const T* w, int64_t ws_c, int64_t ws_i, int64_t ws_j, T* y,
                       CUstream_st* stream);
// dx [N, H, W, C], fully written (gather form: no atomics).
template <class T>
void depthwise_backward_input(const DwGeom& g, const T* dy, const T* w, int64_t ws_c, int64_t ws_i, int64_t ws_j, T* dx,
                              CUstream_st* stream);
// Device bytes the weight gradient needs as scratch (partial sums in double).
size_t depthwise_backward_weight_workspace_bytes(const DwGeom& g);
// dw dense [C, k, k], fully written. Deterministic: partial sums in double
// over fixed pixel partitions (chosen from the sizes alone), each reduced by
// warp shuffles and shared memory in a fixed order, then the partitions
// summed in order by a second kernel; no atomics.
template <class T>
void depthwise_backward_weight(const DwGeom& g, const T* x, const T* dy, T* dw, void* workspace, CUstream_st* stream);

}  // namespace ofa::kernels::OFA_CUDA_NS
