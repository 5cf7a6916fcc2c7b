#include "nn/smoke_net.h"

namespace ofa::nn {

SmokeNet::SmokeNet(int64_t in_channels, int64_t n_classes, uint64_t seed) {
  Generator g(seed);
  stem_conv_ = register_module("stem_conv", std::make_shared<Conv2d>(in_channels, 16, 3, 2, 1, false, &g));
  stem_bn_ = register_module("stem_bn", std::make_shared<BatchNorm2d>(16));
  expand_conv_ = register_module("expand_conv", std::make_shared<Conv2d>(16, 48, 1, 1, 1, false, &g));
  expand_bn_ = register_module("expand_bn", std::make_shared<BatchNorm2d>(48));
  // Stored at 7x7 as OFA's elastic kernel; the forward reads the centre 5x5.
  dw_conv_ = register_module("dw_conv", std::make_shared<Conv2d>(48, 48, 7, 2, 48, false, &g));
  dw_bn_ = register_module("dw_bn", std::make_shared<BatchNorm2d>(48));
  se_reduce_ = register_module("se_reduce", std::make_shared<Linear>(48, 16, true, &g));
  se_expand_ = register_module("se_expand", std::make_shared<Linear>(16, 48, true, &g));
  project_conv_ = register_module("project_conv", std::make_shared<Conv2d>(48, 24, 1, 1, 1, false, &g));
  project_bn_ = register_module("project_bn", std::make_shared<BatchNorm2d>(24));
  head_conv_ = register_module("head_conv", std::make_shared<Conv2d>(24, 64, 1, 1, 1, false, &g));
  head_bn_ = register_module("head_bn", std::make_shared<BatchNorm2d>(64));
  classifier_ = register_module("classifier", std::make_shared<Linear>(64, n_classes, true, &g));
}

Tensor SmokeNet::forward(const Tensor& x) {
  Tensor h = hswish(stem_bn_->forward(stem_conv_->forward(x)));
  h = relu(expand_bn_->forward(expand_conv_->forward(h)));
  Tensor dw5 = dw_conv_->weight.narrow(2, 1, 5).narrow(3, 1, 5);  // a view, not a copy
  h = relu(dw_bn_->forward(depthwise_conv2d(h, dw5, 2)));
  Tensor s = global_avg_pool2d(h).flatten(1);
  s = hsigmoid(se_expand_->forward(relu(se_reduce_->forward(s))));
  h = mul(h, s.reshape({s.size(0), s.size(1), 1, 1}));
  h = project_bn_->forward(project_conv_->forward(h));
  h = hswish(head_bn_->forward(head_conv_->forward(h)));
  return classifier_->forward(global_avg_pool2d(h).flatten(1));
}

}  // namespace ofa::nn
