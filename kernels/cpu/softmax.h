// defines: softmax_forward, softmax_backward ([outer, K, inner] dense data,
// softmax over K), cross_entropy_forward/backward (hard labels with label
// smoothing), cross_entropy_soft_forward/backward, mse_forward/backward.
// Row sums run in double, one row per thread, and the batch mean adds the
// rows in order: results do not depend on the thread count.
#pragma once
#include <cstdint>

namespace ofa::kernels::cpu {

// y = softmax or log_softmax of x along K (max subtracted first).
template <class T>
void softmax_forward(const T* x, T* y, int64_t outer, int64_t K, int64_t inner, bool log);
// From the saved output y: log: gx = gy - exp(y) * sum(gy); else gx = y * (gy - sum(gy * y)).
template <class T>
void softmax_backward(const T* y, const T* gy, T* gx, int64_t outer, int64_t K, int64_t inner, bool log);

// x [N, K] row-major, target [N] already checked to lie in [0, K). Returns the
// batch mean of -sum_k t[n, k] * log_softmax(x)[n, k], t = (1 - ls) * onehot + ls / K,
// and stores each row's log-sum-exp in lse [N].
template <class T>
double cross_entropy_forward(const T* x, const int64_t* target, int64_t N, int64_t K, double ls, double* lse);
// gx = scale * (softmax(x) - t), scale = dL / N.
template <class T>
void cross_entropy_backward(const T* x, const int64_t* target, const double* lse, int64_t N, int64_t K, double ls,
                            double scale, T* gx);

// x, soft [N, K] row-major: batch mean of -sum_k soft * log_softmax(x).
template <class T>
double cross_entropy_soft_forward(const T* x, const T* soft, int64_t N, int64_t K, double* lse);
// gx = scale * (softmax(x) * sum_k soft - soft); gsoft = -scale * log_softmax(x). Either may be null.
template <class T>
void cross_entropy_soft_backward(const T* x, const T* soft, const double* lse, int64_t N, int64_t K, double scale,
                                 T* gx, T* gsoft);

// Mean of (a - b)^2 over n dense elements (fixed blocks, added in order).
template <class T>
double mse_forward(const T* a, const T* b, int64_t n);
// ga = scale * (a - b), gb = -ga, scale = 2 * dL / n. Either may be null.
template <class T>
void mse_backward(const T* a, const T* b, int64_t n, double scale, T* ga, T* gb);

}  // namespace ofa::kernels::cpu
