// defines: MatRef (a strided matrix), blas_ready, gemm (C = alpha op(A) op(B) +
// beta C through OpenBLAS, picking the transpose flags from the strides)
#pragma once
#include <cstdint>

namespace ofa::kernels::cpu {

// A rows x cols matrix at p with element strides rs (rows) and cs (columns).
// Transposed views are just swapped strides, so callers never pass flags.
template <class T>
struct MatRef {
  const T* p = nullptr;
  int64_t rows = 0, cols = 0, rs = 0, cs = 0;
  MatRef transposed() const { return {p, cols, rows, cs, rs}; }
};

// True when BLAS can read the matrix in place: one stride is 1 (after
// ignoring size-1 dims) and the other covers a full row or column.
bool blas_ready(int64_t rows, int64_t cols, int64_t rs, int64_t cs);

// C[M, N] (row-major, leading dimension ldc >= N) = alpha A[M, K] B[K, N] +
// beta C. A and B must be blas_ready; beta == 0 ignores C's old contents
// (NaN included), as BLAS does. K == 0 gives beta C.
template <class T>
void gemm(const MatRef<T>& A, const MatRef<T>& B, T alpha, T beta, T* C, int64_t ldc);

}  // namespace ofa::kernels::cpu

namespace ofa::kernels::cpu {
// out[j * out_stride] = sum_i a[i * lda + j] (the bias gradient of a GEMM
// output). Sums in double over fixed row blocks reduced in block order, so
// the result does not depend on the thread count.
template <class T>
void sum_rows(const T* a, int64_t rows, int64_t cols, int64_t lda, T* out, int64_t out_stride);
}  // namespace ofa::kernels::cpu

namespace ofa::kernels::cpu {
// y[i * ldy + j] = v[j * v_stride] for every row i (a bias broadcast before a
// GEMM with beta = 1).
template <class T>
void fill_rows(T* y, int64_t rows, int64_t cols, int64_t ldy, const T* v, int64_t v_stride);
}  // namespace ofa::kernels::cpu
