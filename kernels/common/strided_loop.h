// Walks N operands that share one iteration shape but have their own strides
// (zero strides broadcast). Dimensions are coalesced where the operands allow,
// the innermost one is handed to `inner` as a run, and the outer runs are
// spread over OpenMP threads. Raw strides in elements; no Tensor here.
#pragma once
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ofa::kernels {

template <int N>
struct StridedLayout {
  std::vector<int64_t> shape;
  std::array<std::vector<int64_t>, N> strides;

  // Puts the dimensions in operand 0's memory order (largest stride first,
  // stable), so that the inner run walks operand 0 contiguously: a
  // channels-last output is then written along its channels.
  void order_by_first_operand() {
    std::vector<size_t> perm(shape.size());
    for (size_t i = 0; i < perm.size(); ++i) perm[i] = i;
    std::stable_sort(perm.begin(), perm.end(), [&](size_t a, size_t b) {
      const int64_t sa = strides[0][a] < 0 ? -strides[0][a] : strides[0][a];
      const int64_t sb = strides[0][b] < 0 ? -strides[0][b] : strides[0][b];
      return sa > sb;
    });
    std::vector<int64_t> s(shape.size());
    std::array<std::vector<int64_t>, N> st;
    for (int k = 0; k < N; ++k) st[k].resize(shape.size());
    for (size_t i = 0; i < perm.size(); ++i) {
      s[i] = shape[perm[i]];
      for (int k = 0; k < N; ++k) st[k][i] = strides[k][perm[i]];
    }
    shape = s;
    strides = st;
  }

  // Drops size-1 dims and merges neighbours that are contiguous for every operand.
  void coalesce() {
    std::vector<int64_t> s;
    std::array<std::vector<int64_t>, N> st;
    for (std::size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] == 1) continue;
      if (!s.empty()) {
        bool merge = true;
        for (int k = 0; k < N; ++k)
          if (st[k].back() != strides[k][d] * shape[d]) merge = false;
        if (merge) {
          s.back() *= shape[d];
          for (int k = 0; k < N; ++k) st[k].back() = strides[k][d];
          continue;
        }
      }
      s.push_back(shape[d]);
      for (int k = 0; k < N; ++k) st[k].push_back(strides[k][d]);
    }
    if (s.empty()) {
      s.push_back(1);
      for (int k = 0; k < N; ++k) st[k].push_back(0);
    }
    shape = s;
    strides = st;
  }
};

// inner(offsets, n, inner_strides): offsets[k] is operand k's element offset
// of the run's first element.
template <int N, class F>
void for_each_strided(StridedLayout<N> L, F&& inner) {
  for (int64_t s : L.shape)
    if (s == 0) return;
  L.order_by_first_operand();
  L.coalesce();
  const int nd = static_cast<int>(L.shape.size());
  const int64_t n_inner = L.shape[nd - 1];
  std::array<int64_t, N> inner_strides;
  for (int k = 0; k < N; ++k) inner_strides[k] = L.strides[k][nd - 1];
  int64_t n_outer = 1;
  for (int d = 0; d < nd - 1; ++d) n_outer *= L.shape[d];
#pragma omp parallel for schedule(static) if (n_outer * n_inner > 32768)
  for (int64_t o = 0; o < n_outer; ++o) {
    std::array<int64_t, N> off{};
    int64_t rem = o;
    for (int d = nd - 2; d >= 0; --d) {
      int64_t i = rem % L.shape[d];
      rem /= L.shape[d];
      for (int k = 0; k < N; ++k) off[k] += i * L.strides[k][d];
    }
    inner(off, n_inner, inner_strides);
  }
}

}  // namespace ofa::kernels
