// A small MobileNetV3-like network built from the engine's ops, used by the
// smoke run (tools/ofa_smoke) and the training smoke test: a strided stem,
// one inverted-bottleneck block (1x1 expand, depthwise 5x5 read as the centre
// crop of a stored 7x7 weight, SE, 1x1 project), a 1x1 head and a classifier.
#pragma once
#include "nn/layers.h"

namespace ofa::nn {

class SmokeNet : public Module {
 public:
  SmokeNet(int64_t in_channels, int64_t n_classes, uint64_t seed);
  Tensor forward(const Tensor& x);  // x [N, in_channels, H, W] -> logits [N, n_classes]

 private:
  std::shared_ptr<Conv2d> stem_conv_, expand_conv_, dw_conv_, project_conv_, head_conv_;
  std::shared_ptr<BatchNorm2d> stem_bn_, expand_bn_, dw_bn_, project_bn_, head_bn_;
  std::shared_ptr<Linear> se_reduce_, se_expand_, classifier_;
};

}  // namespace ofa::nn
