#include "nn/layers.h"

#include "engine/autograd.h"
#include "nn/init.h"

namespace ofa::nn {

Conv2d::Conv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride, int64_t groups, bool with_bias, Generator* g) {
  OFA_CHECK(in % groups == 0 && out % groups == 0, "Conv2d: channels ", in, " -> ", out, " not divisible by groups ", groups);
  Tensor w = empty({out, in / groups, kernel, kernel});
  kaiming_normal_fan_out_(w, g);
  weight = register_parameter("weight", w);
  if (with_bias) bias = register_parameter("bias", zeros({out}));
  args.stride = {stride, stride};
  args.padding = {kernel / 2, kernel / 2};
  args.groups = groups;
}

Tensor Conv2d::forward(const Tensor& x) const {
  if (args.groups > 1 && args.groups == x.size(1) && weight.size(0) == x.size(1) && args.stride[0] == args.stride[1])
    return bias.defined() ? add(depthwise_conv2d(x, weight, args.stride[0]), bias.reshape({1, -1, 1, 1}))
                          : depthwise_conv2d(x, weight, args.stride[0]);
  return conv2d(x, weight, bias, args);
}

BatchNorm2d::BatchNorm2d(int64_t c, double m, double e) : momentum(m), eps(e) {
  weight = register_parameter("weight", ones({c}));
  bias = register_parameter("bias", zeros({c}));
  running_mean = register_buffer("running_mean", zeros({c}));
  running_var = register_buffer("running_var", ones({c}));
  num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, DType::I64));
}

Tensor BatchNorm2d::forward(const Tensor& x, Act act) {
  if (is_training()) {
    NoGradGuard ng;
    // On the counter's device: no synchronisation per layer.
    num_batches_tracked.add_(ones({}, DType::I64, num_batches_tracked.device()));
  }
  return batch_norm_act(x, weight, bias, running_mean, running_var, is_training(), momentum, eps, act);
}

Linear::Linear(int64_t in, int64_t out, bool with_bias, Generator* g) {
  Tensor w = empty({out, in});
  linear_uniform_(w, g);
  weight = register_parameter("weight", w);
  if (with_bias) bias = register_parameter("bias", zeros({out}));  // init_models zeroes biases
}

Tensor Linear::forward(const Tensor& x) const { return linear(x, weight, bias); }

}  // namespace ofa::nn
