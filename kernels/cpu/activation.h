// defines: activation_forward, activation_backward (dense arrays)
#pragma once
#include <cstdint>

#include "kernels/common/activation_math.h"

namespace ofa::kernels::cpu {
template <class T>
void activation_forward(Act a, const T* x, T* y, int64_t n);
// gx = gy * act'(x)
template <class T>
void activation_backward(Act a, const T* x, const T* gy, T* gx, int64_t n);
}  // namespace ofa::kernels::cpu
