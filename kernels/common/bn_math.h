// Batch-norm formulas shared by the CPU and CUDA kernels. Per-channel
// statistics are double; the elementwise parts run in the element type T with
// per-channel coefficients that were formed in double.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common/philox.h"  // OFA_HD

namespace ofa::kernels {

OFA_HD double bn_invstd(double var, double eps) { return 1.0 / std::sqrt(var + eps); }

// PyTorch's update: running = (1 - m) * running + m * batch, where the batch
// variance is the unbiased one (n / (n - 1) times the biased one).
OFA_HD double bn_running_mean(double running, double batch_mean, double momentum) {
  return (1.0 - momentum) * running + momentum * batch_mean;
}
OFA_HD double bn_running_var(double running, double biased_var, int64_t n, double momentum) {
  const double unbiased = biased_var * static_cast<double>(n) / static_cast<double>(n - 1);
  return (1.0 - momentum) * running + momentum * unbiased;
}

// y = (x - mean) * (invstd * w) + b; forming x - mean first keeps float32
// accurate when |mean| is large against the spread.
template <class T>
OFA_HD T bn_apply(T x, T mean, T scale, T shift) {
  return (x - mean) * scale + shift;
}

// Training-mode input gradient with the batch statistics:
// gx = (gy - mean(gy) - (x - mean) * k) * invstd * w, k = mean(gy * (x - mean)) * invstd^2.
template <class T>
OFA_HD T bn_backward_train(T gy, T x, T mean, T grad_mean, T k, T scale) {
  return (gy - grad_mean - (x - mean) * k) * scale;
}

}  // namespace ofa::kernels
