// How a BLAS library can read a strided rows x cols matrix in place: one
// stride 1 and the other covering a full row (as stored: not transposed) or
// a full column (transposed), with that stride as the leading dimension.
// Shared by the CPU (OpenBLAS) and CUDA (cuBLAS) GEMMs, and by blas_ready.
#pragma once
#include <algorithm>
#include <cstdint>

namespace ofa::kernels {

struct BlasLayout {
  bool trans = false;  // stored as the row-major [cols, rows] matrix
  int64_t ld = 1;
  bool ok = false;     // false: no flag and ld describe it (copy it first)
};

inline BlasLayout blas_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  BlasLayout o;
  // Strides of size-1 dims are meaningless: replace them by the tight value.
  if (cols == 1) cs = 1;
  if (rows == 1) rs = cs == 1 ? std::max<int64_t>(cols, 1) : 1;
  if (cs == 1 && rs >= std::max<int64_t>(cols, 1)) {
    o.ld = rs;
    o.ok = true;
  } else if (rs == 1 && cs >= std::max<int64_t>(rows, 1)) {
    o.trans = true;
    o.ld = cs;
    o.ok = true;
  }
  return o;
}

}  // namespace ofa::kernels
