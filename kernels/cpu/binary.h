// defines: binary_strided (elementwise a (op) b with per-operand strides;
// zero strides broadcast), scalar_op (dense y = x * s or x + s)
#pragma once
#include <cstdint>
#include <vector>

namespace ofa::kernels::cpu {
enum class BinOp : int { Add = 0, Sub = 1, Mul = 2 };
template <class T>
void binary_strided(BinOp op, const std::vector<int64_t>& shape, T* out, const std::vector<int64_t>& out_strides,
                    const T* a, const std::vector<int64_t>& a_strides, const T* b,
                    const std::vector<int64_t>& b_strides);
enum class ScalarOp : int { Add = 0, Mul = 1 };
template <class T>
void scalar_op(ScalarOp op, const T* x, T s, T* y, int64_t n);
}  // namespace ofa::kernels::cpu
