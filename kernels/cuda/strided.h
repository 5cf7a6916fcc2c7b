// Strided operands for the CUDA elementwise kernels: up to kMaxDims dims
// (after coalescing) and N operands with their own strides (zero strides
// broadcast), passed to a kernel by value. Element e of the iteration space
// (row-major over `shape`) lies at offset(e, k) in operand k.
#pragma once
#include <cstdint>

#include "kernels/common/philox.h"  // OFA_HD
#include "kernels/common/strided_loop.h"

namespace ofa::kernels {

constexpr int kMaxDims = 8;

template <int N>
struct StridedArgs {
  int nd = 0;
  int64_t numel = 0;
  int64_t shape[kMaxDims] = {};
  int64_t strides[N][kMaxDims] = {};

  // All N offsets of element e at once (one division per dim).
  OFA_HD void offsets(int64_t e, int64_t* off) const {
    for (int k = 0; k < N; ++k) off[k] = 0;
    for (int d = nd - 1; d >= 0; --d) {
      const int64_t i = e % shape[d];
      e /= shape[d];
      for (int k = 0; k < N; ++k) off[k] += i * strides[k][d];
    }
  }
};

// From a host layout: ordered by operand 0's memory (so consecutive threads
// write consecutive addresses of operand 0) and coalesced. Returns false when
// more than kMaxDims dims remain (then the caller copies to contiguous).
template <int N>
bool make_strided_args(StridedLayout<N> L, StridedArgs<N>* out) {
  int64_t numel = 1;
  for (int64_t s : L.shape) numel *= s;
  out->numel = numel;
  if (numel == 0) {
    out->nd = 0;
    return true;
  }
  L.order_by_first_operand();
  L.coalesce();
  if (L.shape.size() > static_cast<size_t>(kMaxDims)) return false;
  out->nd = static_cast<int>(L.shape.size());
  for (int d = 0; d < out->nd; ++d) {
    out->shape[d] = L.shape[d];
    for (int k = 0; k < N; ++k) out->strides[k][d] = L.strides[k][d];
  }
  return true;
}

}  // namespace ofa::kernels
