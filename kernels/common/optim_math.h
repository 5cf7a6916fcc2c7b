// Per-element optimizer updates, shared by the CPU loops and a future fused
// CUDA kernel. They reproduce torch.optim (1.13, single-tensor path)
// operation by operation: every scalar is computed in double on the host and
// rounded once to T, as PyTorch does when it passes Python floats to a kernel,
// and each line below is one PyTorch tensor op in the same order.
// (CUDA kernels must keep nvcc from contracting these into FMAs.)
#pragma once
#include <cmath>

#include "kernels/common/philox.h"  // OFA_HD

namespace ofa::kernels {

template <class T>
struct SgdCoeffs {
  T neg_lr;                // -lr
  T momentum;              // 0: plain SGD, no buffer
  T one_minus_dampening;  // 1 - dampening
  T weight_decay;
  bool nesterov;
};

// torch.optim.SGD: d = g + wd * p; buf = d on the first step, else
// buf = momentum * buf + (1 - dampening) * d; d = nesterov ? d + momentum * buf
// : buf; p += -lr * d. `buf` is ignored when momentum == 0.
template <class T>
OFA_HD void sgd_update(const SgdCoeffs<T>& c, bool first_step, T& p, T g, T& buf) {
  T d = g;
  if (c.weight_decay != T(0)) d = d + c.weight_decay * p;
  if (c.momentum != T(0)) {
    if (first_step) {
      buf = d;
    } else {
      const T decayed = buf * c.momentum;  // buf.mul_(momentum)
      buf = decayed + c.one_minus_dampening * d;
    }
    d = c.nesterov ? d + c.momentum * buf : buf;
  }
  p = p + c.neg_lr * d;
}

template <class T>
struct AdamCoeffs {
  T beta1, one_minus_beta1;
  T beta2, one_minus_beta2;
  T weight_decay;
  T bias_correction2_sqrt;  // sqrt(1 - beta2^step)
  T eps;
  T neg_step_size;  // -lr / (1 - beta1^step)
};

// torch.optim.Adam (amsgrad off): g += wd * p; m = beta1 m + (1 - beta1) g;
// v = beta2 v + (1 - beta2) g g; p += -step_size * m / (sqrt(v) / sqrt(bc2) + eps).
template <class T>
OFA_HD void adam_update(const AdamCoeffs<T>& c, T& p, T g, T& m, T& v) {
  if (c.weight_decay != T(0)) g = g + c.weight_decay * p;
  const T md = m * c.beta1;  // exp_avg.mul_(beta1)
  m = md + c.one_minus_beta1 * g;
  const T vd = v * c.beta2;  // exp_avg_sq.mul_(beta2)
  const T gg = c.one_minus_beta2 * g;  // addcmul: value * t1 * t2, left to right
  v = vd + gg * g;
  const T sq = std::sqrt(v);
  const T denom = sq / c.bias_correction2_sqrt + c.eps;
  const T step = c.neg_step_size * m;  // addcdiv: value * t1 / t2
  p = p + step / denom;
}

}  // namespace ofa::kernels
