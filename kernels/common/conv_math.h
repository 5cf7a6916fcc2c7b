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

// The taps [t0, t1) of output o that read inside [0, in) (a kernel of size
// k): looping over them needs no bounds checks.
OFA_HD void conv_valid_taps(int64_t o, int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t* t0,
                            int64_t* t1) {
  const int64_t base = o * stride - pad;
  *t0 = base < 0 ? -base : 0;
  *t1 = in - base < k ? in - base : k;
}

// Gather form of the transposed convolution: the (output o, tap t) pairs
// with o * stride - pad + t == i are o = o0, o0 - 1, ... with t = t0,
// t0 + stride, ... while o >= 0 and t < k. This gives the first pair (o0 is
// the largest valid output, capped at out - 1); t0 >= k means none.
OFA_HD void conv_first_tap(int64_t i, int64_t out, int64_t stride, int64_t pad, int64_t* o0, int64_t* t0) {
  int64_t o = (i + pad) / stride;
  if (o > out - 1) o = out - 1;
  *o0 = o;
  *t0 = i + pad - o * stride;
}

}  // namespace ofa::kernels
