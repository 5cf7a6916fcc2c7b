// defines: index_select_forward/backward, gather_forward/backward, argsort,
// topk_correct. Indices are int64 and already range-checked by the op.
#pragma once
#include <cstdint>
#include <vector>

namespace ofa::kernels::cpu {

// x dense [outer, D, inner] -> out [outer, K, inner] with out[o, k, :] = x[o, index[k], :].
template <class T>
void index_select_forward(const T* x, int64_t outer, int64_t D, int64_t inner, const int64_t* index, int64_t K,
                          T* out);
// gx [outer, D, inner] = index_add of gy [outer, K, inner] into zeros. Each
// gx row is summed by one thread over its k in increasing order, so repeated
// indices accumulate deterministically.
template <class T>
void index_select_backward(const T* gy, int64_t outer, int64_t D, int64_t inner, const int64_t* index, int64_t K,
                           T* gx);

// out (row-major over `shape`, the index's shape) = x gathered along dim:
// out[..., j, ...] = x[..., index[..., j, ...], ...]. x is read through its
// strides; index and out are row-major over `shape`.
template <class T>
void gather_forward(const T* x, const std::vector<int64_t>& x_strides, const int64_t* index,
                    const std::vector<int64_t>& shape, int64_t dim, T* out);
// gx (zero-filled by the caller, read through gx_strides) += scatter of gy
// (row-major over `shape`) along dim. One thread owns each line along dim,
// and lines write disjoint elements: deterministic with repeated indices.
template <class T>
void gather_backward(const T* gy, const int64_t* index, const std::vector<int64_t>& shape, int64_t dim, T* gx,
                     const std::vector<int64_t>& gx_strides);

// Stable sort of each line of x [outer, K, inner] along K; out holds the
// positions (int64, same layout). NaN sorts as the largest value, as in PyTorch.
template <class T>
void argsort(const T* x, int64_t outer, int64_t K, int64_t inner, bool descending, int64_t* out);

// correct[i] = number of rows n of x [N, K] whose target logit is among the
// ks[i] largest: its position in a stable descending sort is below ks[i].
template <class T>
void topk_correct(const T* x, const int64_t* target, int64_t N, int64_t K, const std::vector<int64_t>& ks,
                  std::vector<int64_t>& correct);

}  // namespace ofa::kernels::cpu
