// defines: sgd_step, adam_step (dense arrays of one parameter, updated in place)
#pragma once
#include <cstdint>

#include "kernels/common/optim_math.h"

namespace ofa::kernels::cpu {
// p, g and buf are n elements laid out alike; buf may be null when momentum == 0.
template <class T>
void sgd_step(const SgdCoeffs<T>& c, bool first_step, T* p, const T* g, T* buf, int64_t n);
template <class T>
void adam_step(const AdamCoeffs<T>& c, T* p, const T* g, T* exp_avg, T* exp_avg_sq, int64_t n);
}  // namespace ofa::kernels::cpu
