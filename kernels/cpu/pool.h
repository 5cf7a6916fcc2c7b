// defines: global_avg_pool_forward, global_avg_pool_backward (channels-last
// [N, HW, C] data), dropout_apply (the elementwise product with a mask)
#pragma once
#include <cstdint>

namespace ofa::kernels::cpu {

// out[n, c] = mean over the HW pixels of x[n, p, c]; each output is summed in
// double, in a fixed order (four pixels at a time), by one thread.
template <class T>
void global_avg_pool_forward(const T* x, int64_t N, int64_t HW, int64_t C, T* out);
// gx[n, p, c] = gy[n, c] / HW.
template <class T>
void global_avg_pool_backward(const T* gy, int64_t N, int64_t HW, int64_t C, T* gx);

// y[i] = x[i] * mask[i] over dense arrays of one layout (the mask already
// holds 0 or 1 / (1 - p)); also the backward with gy in place of x.
template <class T>
void dropout_apply(const T* x, const T* mask, T* y, int64_t n);

}  // namespace ofa::kernels::cpu
