// The ops: the one place that checks arguments, picks the device's kernel
// (kernels/cpu/NAME.cpp or kernels/cuda/NAME.cu) and records the backward.
//
// Conventions
// - 4-D activations are [N, C, H, W] by shape; conv, depthwise conv, batch
//   norm and pooling compute in channels-last memory (NHWC) and return
//   channels-last tensors; other layouts are converted once on entry.
// - Weights may be views of larger weights (leading slices, centre crops):
//   kernels read them through their strides, never through a copy.
// - All ops work in float32 and float64 (gradient checks run in float64).
#pragma once
#include <array>
#include <vector>

#include "engine/random.h"
#include "engine/tensor.h"
#include "kernels/common/activation_math.h"

namespace ofa {

// relu, relu6, hswish, hsigmoid or identity: the activation a fused op applies.
using kernels::Act;

// ---- elementwise (engine/ops_elementwise.cpp), NumPy broadcasting
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, double s);
Tensor add(const Tensor& a, double s);
Tensor relu(const Tensor& x);
Tensor relu6(const Tensor& x);
Tensor hswish(const Tensor& x);    // x * relu6(x + 3) / 6
Tensor hsigmoid(const Tensor& x);  // relu6(x + 3) / 6

// ---- reductions (engine/ops_reduce.cpp)
Tensor sum(const Tensor& x);  // all elements, 0-D result
Tensor sum(const Tensor& x, const Shape& dims, bool keepdim = false);
Tensor mean(const Tensor& x);
Tensor mean(const Tensor& x, const Shape& dims, bool keepdim = false);
// Sums a broadcast result back to `shape` (the gradient of a broadcast).
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---- convolution and matrix products (engine/ops_conv.cpp)
struct Conv2dArgs {
  std::array<int64_t, 2> stride{1, 1};
  std::array<int64_t, 2> padding{0, 0};
  int64_t groups = 1;
};
// x [N, Cin, H, W], w [Cout, Cin/groups, kh, kw] (any strides, e.g. a leading
// slice of a larger weight), bias [Cout] or undefined. im2col + GEMM; 1x1
// stride-1 convolutions are one GEMM over all pixels.
Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, const Conv2dArgs& args);
// Depthwise: x [N, C, H, W], w [C, 1, k, k] with any strides (the centre k x k
// crop of a stored 7x7 weight is a view); padding k / 2.
Tensor depthwise_conv2d(const Tensor& x, const Tensor& w, int64_t stride);
// x [..., in], w [out, in] (any row stride: a leading slice of a larger
// weight), bias [out] or undefined.
Tensor linear(const Tensor& x, const Tensor& w, const Tensor& bias = Tensor());
// [M, K] x [K, N], or batched [B, M, K] x [B, K, N].
Tensor matmul(const Tensor& a, const Tensor& b);

// ---- normalisation, pooling, dropout (engine/ops_norm.cpp)
// x [N, C, H, W] or [N, C]; weight, bias, running_mean, running_var [C] (each
// may be a leading slice of a larger vector). Training: normalise with the
// biased batch variance, update running stats in place with the unbiased one
// (running = (1 - momentum) * running + momentum * batch), as PyTorch.
// Evaluation: normalise with the running statistics.
Tensor batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                  const Tensor& running_var, bool training, double momentum, double eps);
// act(batch_norm(...)) in one pass forward and one backward: the normalised
// values and their gradient are never stored. Bit for bit the values and
// gradients of the two ops one after the other (Act::Identity: batch_norm).
Tensor batch_norm_act(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                      const Tensor& running_var, bool training, double momentum, double eps, Act act);
Tensor global_avg_pool2d(const Tensor& x);  // [N, C, H, W] -> [N, C, 1, 1]
Tensor dropout(const Tensor& x, double p, bool training, Generator* g = nullptr);

// ---- losses (engine/ops_loss.cpp); logits [N, K]
Tensor log_softmax(const Tensor& x, int64_t dim = -1);
Tensor softmax(const Tensor& x, int64_t dim = -1);
// Mean over the batch; target int64 [N]; label smoothing as the reference
// (target = (1 - ls) * one_hot + ls / K).
Tensor cross_entropy(const Tensor& logits, const Tensor& target, double label_smoothing = 0.0);
// Mean over the batch of -sum_k soft[n, k] * log_softmax(logits)[n, k].
Tensor cross_entropy_soft(const Tensor& logits, const Tensor& soft_target);
Tensor mse_loss(const Tensor& a, const Tensor& b);  // mean of squared differences

// ---- indexing and sorting (engine/ops_index.cpp)
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);  // index int64 [K]
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);        // index int64, x's rank
Tensor argsort(const Tensor& x, int64_t dim = -1, bool descending = false);  // stable, int64
// Percentage of rows whose target is among the k largest logits, for each k
// (the reference's accuracy(output, target, topk)).
std::vector<double> topk_accuracy(const Tensor& logits, const Tensor& target, const std::vector<int64_t>& ks);

}  // namespace ofa
