// defines: bn_batch_stats, bn_update_running, bn_forward, bn_backward (the last two
// with an optional fused activation)
// x and gy are [M, C] row-major: channels-last activations (M = N * H * W) or
// [N, C] inputs. Per-channel vectors (weight, bias, running stats) are read
// through a stride, so leading slices of larger vectors work in place.
#pragma once
#include <cstdint>

#include "kernels/common/activation_math.h"

namespace ofa::kernels::cpu {

// Batch mean and biased variance per channel (one pass, shifted by the first
// row so the variance does not cancel). Sums are taken in
// double over fixed row blocks that are added in block order, so the result
// does not depend on the thread count.
template <class T>
void bn_batch_stats(const T* x, int64_t M, int64_t C, double* mean, double* var);

// running_mean/var <- PyTorch's momentum update with the unbiased variance
// (n values per channel).
template <class T>
void bn_update_running(T* running_mean, int64_t rm_stride, T* running_var, int64_t rv_stride, const double* mean,
                       const double* var, int64_t C, int64_t n, double momentum);

// y = act((x - mean) * invstd * w + b); w or b null means 1 or 0. act fuses
// the activation that follows the normalisation (Identity: none); the values
// are those of bn_forward then activation_forward, bit for bit.
template <class T>
void bn_forward(const T* x, int64_t M, int64_t C, const double* mean, const double* invstd, const T* w,
                int64_t w_stride, const T* b, int64_t b_stride, T* y, Act act = Act::Identity);

// Gradients for x (gx, [M, C]), weight (gw, [C] dense) and bias (gb, [C]
// dense); any of them may be null. training: mean/invstd are the batch
// statistics and gx carries their dependence on x; otherwise (running
// statistics) gx is the affine part only. With an activation act, gy is the
// gradient of act's output: the normalised value z is recomputed from x (b,
// b_stride: the bias of the forward) and gy * act'(z) is used in its place,
// never stored; the values are those of activation_backward then bn_backward.
template <class T>
void bn_backward(const T* x, const T* gy, int64_t M, int64_t C, const double* mean, const double* invstd, const T* w,
                 int64_t w_stride, bool training, T* gx, T* gw, T* gb, Act act = Act::Identity, const T* b = nullptr,
                 int64_t b_stride = 0);

}  // namespace ofa::kernels::cpu
