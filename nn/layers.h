// Basic layers as Modules with PyTorch's parameter names (weight, bias,
// running_mean, running_var, num_batches_tracked), so state_dicts line up.
#pragma once
#include "engine/ops.h"
#include "nn/module.h"

namespace ofa::nn {

class Conv2d : public Module {
 public:
  // he_fout initialisation (the OFA reference's), no bias unless asked.
  Conv2d(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1, int64_t groups = 1, bool bias = false,
         Generator* g = nullptr);
  Tensor forward(const Tensor& x) const;
  Tensor weight, bias;
  Conv2dArgs args;
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t channels, double momentum = 0.1, double eps = 1e-5);
  // Batch statistics in training mode, running ones in eval; act: an
  // activation fused into the same pass (batch_norm_act).
  Tensor forward(const Tensor& x, Act act = Act::Identity);
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;
  double momentum, eps;
};

class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias = true, Generator* g = nullptr);
  Tensor forward(const Tensor& x) const;
  Tensor weight, bias;
};

}  // namespace ofa::nn
