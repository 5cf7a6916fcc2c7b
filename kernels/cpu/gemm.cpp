#include "kernels/cpu/gemm.h"

#include <cblas.h>

#include "kernels/common/blas_layout.h"

#include <algorithm>
#include <climits>
#include <stdexcept>
#include <string>
#include <vector>

namespace ofa::kernels::cpu {

namespace {

// How BLAS sees one operand: row-major storage, a transpose flag and its ld.
struct BlasOperand {
  CBLAS_TRANSPOSE trans = CblasNoTrans;
  int64_t ld = 1;
  bool ok = false;
};

BlasOperand resolve(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  const BlasLayout l = blas_layout(rows, cols, rs, cs);
  return {l.trans ? CblasTrans : CblasNoTrans, l.ld, l.ok};
}

void check_int(int64_t v, const char* what) {
  if (v > INT_MAX) throw std::invalid_argument(std::string("gemm: ") + what + " exceeds the 32-bit BLAS interface");
}

inline void blas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha, const float* a,
                      int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void blas_gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, double alpha, const double* a,
                      int lda, const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace

bool blas_ready(int64_t rows, int64_t cols, int64_t rs, int64_t cs) { return resolve(rows, cols, rs, cs).ok; }

template <class T>
void gemm(const MatRef<T>& A, const MatRef<T>& B, T alpha, T beta, T* C, int64_t ldc) {
  const int64_t M = A.rows, K = A.cols, N = B.cols;
  if (B.rows != K) throw std::invalid_argument("gemm: inner sizes differ");
  if (M == 0 || N == 0) return;
  if (K == 0) {
    // BLAS would also do this, but some builds reject ld = 0 operands.
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
    return;
  }
  const BlasOperand a = resolve(A.rows, A.cols, A.rs, A.cs), b = resolve(B.rows, B.cols, B.rs, B.cs);
  if (!a.ok || !b.ok) throw std::invalid_argument("gemm: an operand is not BLAS-compatible (copy it first)");
  check_int(M, "M");
  check_int(N, "N");
  check_int(K, "K");
  check_int(a.ld, "lda");
  check_int(b.ld, "ldb");
  check_int(ldc, "ldc");
  blas_gemm(a.trans, b.trans, static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), alpha, A.p,
            static_cast<int>(a.ld), B.p, static_cast<int>(b.ld), beta, C, static_cast<int>(ldc));
}

template <class T>
void sum_rows(const T* a, int64_t rows, int64_t cols, int64_t lda, T* out, int64_t out_stride) {
  if (cols == 0) return;
  // Block count depends on the shape only (never on the threads).
  const int64_t block = std::max<int64_t>(256, (rows + 255) / 256);
  const int64_t nblocks = std::max<int64_t>(1, (rows + block - 1) / block);
  std::vector<double> part(static_cast<size_t>(nblocks * cols), 0.0);
#pragma omp parallel for schedule(static) if (rows * cols > 32768)
  for (int64_t b = 0; b < nblocks; ++b) {
    double* acc = part.data() + b * cols;
    const int64_t r1 = std::min(rows, (b + 1) * block);
    for (int64_t i = b * block; i < r1; ++i) {
      const T* row = a + i * lda;
#pragma omp simd
      for (int64_t j = 0; j < cols; ++j) acc[j] += static_cast<double>(row[j]);
    }
  }
  for (int64_t j = 0; j < cols; ++j) {
    double s = 0.0;
    for (int64_t b = 0; b < nblocks; ++b) s += part[b * cols + j];
    out[j * out_stride] = static_cast<T>(s);
  }
}

template <class T>
void fill_rows(T* y, int64_t rows, int64_t cols, int64_t ldy, const T* v, int64_t v_stride) {
#pragma omp parallel for schedule(static) if (rows * cols > 65536)
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) y[i * ldy + j] = v[j * v_stride];
}

template void fill_rows<float>(float*, int64_t, int64_t, int64_t, const float*, int64_t);
template void fill_rows<double>(double*, int64_t, int64_t, int64_t, const double*, int64_t);
template void sum_rows<float>(const float*, int64_t, int64_t, int64_t, float*, int64_t);
template void sum_rows<double>(const double*, int64_t, int64_t, int64_t, double*, int64_t);
template void gemm<float>(const MatRef<float>&, const MatRef<float>&, float, float, float*, int64_t);
template void gemm<double>(const MatRef<double>&, const MatRef<double>&, double, double, double*, int64_t);

}  // namespace ofa::kernels::cpu
