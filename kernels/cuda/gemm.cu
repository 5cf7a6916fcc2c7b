// GEMM through cuBLAS, and the two hand-written helpers of a linear layer
// (sum_rows: the bias gradient; fill_rows: the bias before a beta = 1 GEMM).
//
// The mapping: our C [M, N] is row-major, cuBLAS is column-major, so C is
// cuBLAS's C^T [N, M] with leading dimension ldc, and C^T = B^T A^T: cuBLAS's
// first operand is our B, its second our A, m = N, n = M, k = K. A
// row-major-indexed operand X with column stride 1 (element (r, c) at
// r * rs + c) is, read column-major with ld = rs, X^T: untransposed in
// cuBLAS's product; one with row stride 1 is X itself in column-major with
// ld = cs: transposed. So each operand's cuBLAS flag and ld follow from its
// own strides, exactly as the CPU's row-major cblas call picks them
// (kernels/cpu/gemm.cpp), and cuBLAS's ld bounds (lda >= m or k, ...) are
// the blas_ready conditions. Operands that are not blas_ready (neither
// stride 1, or the other stride shorter than a row / column) are REJECTED
// with an error naming the operand: the caller copies them first (the
// convolutions repack theirs, see conv2d.cu).
//
// The handle computes in pedantic FP32 (no TF32, backend.cu), so float
// results are plain FMA sums. Under OFA_EMULATED the cuBLAS call is a
// reference loop of cublas<t>gemmStridedBatched's column-major semantics on
// the same mapped arguments, so the emulated tests check the mapping.
#include <algorithm>
#include <climits>
#include <vector>

#include "kernels/cuda/backend_impl.h"  // first: it picks the namespace

#include "kernels/common/blas_layout.h"

namespace ofa::kernels::OFA_CUDA_NS {

namespace {

enum class Op { N, T };

// How the column-major product sees one operand (see the file comment).
struct BlasOperand {
  Op op = Op::N;
  int64_t ld = 1;
  bool ok = false;
};

BlasOperand resolve(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  const BlasLayout l = blas_layout(rows, cols, rs, cs);
  return {l.trans ? Op::T : Op::N, l.ld, l.ok};
}

void check_int(int64_t v, const char* what) {
  OFA_CHECK(v >= 0 && v <= INT_MAX, "gemm (CUDA): ", what, " = ", v, " outside the 32-bit cuBLAS interface");
}

#if OFA_EMULATED
// cublas<t>gemmStridedBatched: for every batch b, C_b = alpha op(A_b) op(B_b)
// + beta C_b, column-major: op(A) is m x k (A[i + l * lda] untransposed,
// A[l + i * lda] transposed), op(B) k x n, C[i + j * ldc]; beta == 0 does not
// read C.
template <class T>
void gemm_strided_batched(Op ta, Op tb, int m, int n, int k, T alpha, const T* A, int lda, long long sA, const T* B,
                          int ldb, long long sB, T beta, T* C, int ldc, long long sC, int batch, Stream) {
  for (int b = 0; b < batch; ++b) {
    const T* Ab = A + b * sA;
    const T* Bb = B + b * sB;
    T* Cb = C + b * sC;
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < m; ++i) {
        T s = T(0);
        for (int l = 0; l < k; ++l) {
          const T a = ta == Op::N ? Ab[i + int64_t(l) * lda] : Ab[l + int64_t(i) * lda];
          const T bv = tb == Op::N ? Bb[l + int64_t(j) * ldb] : Bb[j + int64_t(l) * ldb];
          s += a * bv;
        }
        T& c = Cb[i + int64_t(j) * ldc];
        c = beta == T(0) ? alpha * s : alpha * s + beta * c;
      }
  }
}
#else
inline cublasOperation_t cublas_op(Op o) { return o == Op::N ? CUBLAS_OP_N : CUBLAS_OP_T; }

void gemm_strided_batched(Op ta, Op tb, int m, int n, int k, float alpha, const float* A, int lda, long long sA,
                          const float* B, int ldb, long long sB, float beta, float* C, int ldc, long long sC,
                          int batch, Stream s) {
  OFA_CUBLAS_CHECK(cublasSgemmStridedBatched(backend_instance().blas(s), cublas_op(ta), cublas_op(tb), m, n, k,
                                             &alpha, A, lda, sA, B, ldb, sB, &beta, C, ldc, sC, batch));
}
void gemm_strided_batched(Op ta, Op tb, int m, int n, int k, double alpha, const double* A, int lda, long long sA,
                          const double* B, int ldb, long long sB, double beta, double* C, int ldc, long long sC,
                          int batch, Stream s) {
  OFA_CUBLAS_CHECK(cublasDgemmStridedBatched(backend_instance().blas(s), cublas_op(ta), cublas_op(tb), m, n, k,
                                             &alpha, A, lda, sA, B, ldb, sB, &beta, C, ldc, sC, batch));
}
#endif

// C = beta C (beta == 0: zeros, the old contents unread): the K == 0 product.
template <class T>
__global__ void __launch_bounds__(kThreads)
    scale_c_kernel(T* __restrict__ C, int64_t M, int64_t N, int64_t ldc, int64_t c_bs, int64_t batch, T beta) {
  const int64_t total = batch * M * N;
  OFA_GRID_STRIDE(e, total) {
    const int64_t j = e % N, r = e / N, i = r % M, b = r / M;
    T& c = C[b * c_bs + i * ldc + j];
    c = beta == T(0) ? T(0) : beta * c;
  }
}

// The CPU's partition of sum_rows (kernels/cpu/gemm.cpp), from the shape
// alone: blocks of `block` rows, each summed in double in row order, then
// the blocks in order. Same order, same double rounding: bitwise the CPU's.
inline void sum_rows_blocks(int64_t rows, int64_t* block, int64_t* nblocks) {
  *block = std::max<int64_t>(256, (rows + 255) / 256);
  *nblocks = std::max<int64_t>(1, (rows + *block - 1) / *block);
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    sum_rows_partial_kernel(const T* __restrict__ a, int64_t rows, int64_t cols, int64_t lda, int64_t block,
                            int64_t nblocks, double* __restrict__ part) {
  const int64_t total = nblocks * cols;
  OFA_GRID_STRIDE(e, total) {
    const int64_t b = e / cols, j = e % cols;
    const int64_t r1 = (b + 1) * block < rows ? (b + 1) * block : rows;
    double acc = 0.0;
    for (int64_t i = b * block; i < r1; ++i) acc += static_cast<double>(a[i * lda + j]);
    part[e] = acc;
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    sum_rows_finish_kernel(const double* __restrict__ part, int64_t cols, int64_t nblocks, T* __restrict__ out,
                           int64_t out_stride) {
  OFA_GRID_STRIDE(j, cols) {
    double s = 0.0;
    for (int64_t b = 0; b < nblocks; ++b) s += part[b * cols + j];
    out[j * out_stride] = static_cast<T>(s);
  }
}

template <class T>
__global__ void __launch_bounds__(kThreads)
    fill_rows_kernel(T* __restrict__ y, int64_t rows, int64_t cols, int64_t ldy, const T* __restrict__ v,
                     int64_t v_stride) {
  const int64_t total = rows * cols;
  OFA_GRID_STRIDE(e, total) {
    const int64_t i = e / cols, j = e % cols;
    y[i * ldy + j] = v[j * v_stride];
  }
}

}  // namespace

void Backend::gemm(DType t, const MatArg& A, const MatArg& B, double alpha, double beta, void* C, int64_t ldc,
                   int64_t c_batch_stride, int64_t batch, Stream s) {
  const int64_t M = A.rows, K = A.cols, N = B.cols;
  OFA_CHECK(B.rows == K, "gemm (CUDA): inner sizes differ (A is [", M, ", ", K, "], B is [", B.rows, ", ", N, "])");
  OFA_CHECK(M >= 0 && N >= 0 && K >= 0 && batch >= 0, "gemm (CUDA): negative size (M ", M, ", N ", N, ", K ", K,
            ", batch ", batch, ")");
  OFA_CHECK(ldc >= std::max<int64_t>(N, 1), "gemm (CUDA): ldc ", ldc, " below N = ", N);
  if (M == 0 || N == 0 || batch == 0) return;
  OFA_CUDA_FLOATING(t, "gemm (CUDA)", [&] {
    using T = scalar_t;
    T* c = static_cast<T*>(C);
    if (K == 0) {
      OFA_LAUNCH((scale_c_kernel<T>), grid_for(batch * M * N), kThreads, 0, s)
      (c, M, N, ldc, c_batch_stride, batch, static_cast<T>(beta));
      OFA_CHECK_LAUNCH("scale_c_kernel");
      return;
    }
    const BlasOperand a = resolve(A.rows, A.cols, A.rs, A.cs), b = resolve(B.rows, B.cols, B.rs, B.cs);
    OFA_CHECK(a.ok, "gemm (CUDA): A [", A.rows, ", ", A.cols, "] with strides (", A.rs, ", ", A.cs,
              ") is not BLAS-compatible (one stride must be 1, the other cover a row or column): copy it first");
    OFA_CHECK(b.ok, "gemm (CUDA): B [", B.rows, ", ", B.cols, "] with strides (", B.rs, ", ", B.cs,
              ") is not BLAS-compatible (one stride must be 1, the other cover a row or column): copy it first");
    check_int(M, "M");
    check_int(N, "N");
    check_int(K, "K");
    check_int(a.ld, "lda");
    check_int(b.ld, "ldb");
    check_int(ldc, "ldc");
    check_int(batch, "batch");
    // C^T [N, M] = op(B) op(A) in cuBLAS's column-major terms.
    gemm_strided_batched(b.op, a.op, static_cast<int>(N), static_cast<int>(M), static_cast<int>(K),
                         static_cast<T>(alpha), static_cast<const T*>(B.p), static_cast<int>(b.ld),
                         static_cast<long long>(B.batch_stride), static_cast<const T*>(A.p), static_cast<int>(a.ld),
                         static_cast<long long>(A.batch_stride), static_cast<T>(beta), c, static_cast<int>(ldc),
                         static_cast<long long>(c_batch_stride), static_cast<int>(batch), s);
  });
}

void Backend::sum_rows(DType t, const void* a, int64_t rows, int64_t cols, int64_t lda, void* out, int64_t out_stride,
                       Scratch& scratch, Stream s) {
  OFA_CHECK(rows >= 0 && cols >= 0, "sum_rows (CUDA): negative size (", rows, ", ", cols, ")");
  if (cols == 0) return;
  OFA_CUDA_FLOATING(t, "sum_rows (CUDA)", [&] {
    using T = scalar_t;
    int64_t block, nblocks;
    sum_rows_blocks(rows, &block, &nblocks);
    double* part = static_cast<double*>(scratch.get(static_cast<size_t>(nblocks * cols) * sizeof(double)));
    OFA_LAUNCH((sum_rows_partial_kernel<T>), grid_for(nblocks * cols), kThreads, 0, s)
    (static_cast<const T*>(a), rows, cols, lda, block, nblocks, part);
    OFA_CHECK_LAUNCH("sum_rows_partial_kernel");
    OFA_LAUNCH((sum_rows_finish_kernel<T>), grid_for(cols), kThreads, 0, s)
    (part, cols, nblocks, static_cast<T*>(out), out_stride);
    OFA_CHECK_LAUNCH("sum_rows_finish_kernel");
  });
}

void Backend::fill_rows(DType t, void* y, int64_t rows, int64_t cols, int64_t ldy, const void* v, int64_t v_stride,
                        Stream s) {
  OFA_CHECK(rows >= 0 && cols >= 0, "fill_rows (CUDA): negative size (", rows, ", ", cols, ")");
  if (rows * cols == 0) return;
  OFA_CUDA_FLOATING(t, "fill_rows (CUDA)", [&] {
    OFA_LAUNCH((fill_rows_kernel<scalar_t>), grid_for(rows * cols), kThreads, 0, s)
    (static_cast<scalar_t*>(y), rows, cols, ldy, static_cast<const scalar_t*>(v), v_stride);
    OFA_CHECK_LAUNCH("fill_rows_kernel");
  });
}

}  // namespace ofa::kernels::OFA_CUDA_NS
