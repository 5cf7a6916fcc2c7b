// Convolution geometry shared by the CPU and CUDA kernels: output sizes and
// the input/output index maps (no dilation).
#pragma once
#include <cstdint>

#include "kernels/common/philox.h"  // OFA_HD

namespace ofa::kernels {

// Output extent of a convolution along one dim (PyTorch's floor formula);
// <= 0 means the padded input is smaller than the kernel.
OFA_HD int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad) {
  return in + 2 * pad < k ? 0 : (in + 2 * pad - k) / stride + 1;
}

// Input coordinate that kernel tap t of output o reads (may be out of range).
OFA_HD int64_t conv_in_index(int64_t o, int64_t t, int64_t stride, int64_t pad) { return o * stride - pad + t; }

// The outputs o in [lo, hi) whose tap t lies inside [0, in) — i.e. the taps
// that read valid input — for a fixed tap t: used to skip bounds checks.
OFA_HD void conv_valid_outputs(int64_t t, int64_t in, int64_t out, int64_t stride, int64_t pad, int64_t* lo,
                               int64_t* hi) {
  // o * stride - pad + t >= 0  <=>  o >= ceil((pad - t) / stride)
  int64_t a = pad - t;
  int64_t l = a <= 0 ? 0 : (a + stride - 1) / stride;
  // o * stride - pad + t <= in - 1  <=>  o <= floor((in - 1 + pad - t) / stride)
  int64_t b = in - 1 + pad - t;
  int64_t h = b < 0 ? 0 : b / stride + 1;
  *lo = l;
  *hi = h < out ? h : out;
  if (*hi < *lo) *hi = *lo;
}

// The taps t in [lo, hi) of a kernel of size k that read input position i
// from some output in [0, out), given i = o * stride - pad + t: t must be
// congruent to (i + pad) mod stride. Returns the first such tap and the
// matching output index; the caller steps t by stride (o down by one).
OFA_HD void conv_first_tap(int64_t i, int64_t k, int64_t out, int64_t stride, int64_t pad, int64_t* t0,
                           int64_t* o0) {
  // Largest o with t = i + pad - o * stride >= 0, capped at out - 1.
  int64_t o = (i + pad) / stride;
  if (o > out - 1) o = out - 1;
  *o0 = o;
  *t0 = i + pad - o * stride;  // may be >= k: then no tap reads i
  (void)k;
}

}  // namespace ofa::kernels
