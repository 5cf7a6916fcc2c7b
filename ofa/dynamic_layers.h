// The elastic layers of the OFA supernet (the reference's dynamic_op.py and
// dynamic_layers.py): each keeps the weights of its largest setting and runs
// a leading slice of them (kernel sizes through the learned transform
// matrices). Weights are views or op results, so gradients flow into the
// stored maximum weights and the matrices.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nn/mobilenet_v3.h"

namespace ofa::nn {

// 1x1 (or k x k) conv whose weight is the leading slice [:out, :in] of the max weight.
class DynamicConv2d : public Module {
 public:
  DynamicConv2d(int64_t max_in, int64_t max_out, int64_t kernel_size = 1, int64_t stride = 1, Generator* g = nullptr);
  Tensor active_filter(int64_t out_channel, int64_t in_channel) const;
  Tensor forward(const Tensor& x, int64_t out_channel = -1);  // -1: active_out_channel
  int64_t max_in, max_out, kernel_size, stride;
  int64_t active_out_channel;
  std::shared_ptr<Conv2d> conv;
};

// Depthwise conv stored at the largest kernel; smaller kernels are the centre
// crop of the next larger one, flattened and multiplied by a learned
// "<big>to<small>_matrix" (y = x @ M^T), starting from the largest.
class DynamicSeparableConv2d : public Module {
 public:
  DynamicSeparableConv2d(int64_t max_in, std::vector<int64_t> kernel_size_list, int64_t stride = 1,
                         Generator* g = nullptr);
  Tensor active_filter(int64_t in_channel, int64_t kernel_size) const;  // [in, 1, k, k]
  Tensor forward(const Tensor& x, int64_t kernel_size = -1);            // -1: active_kernel_size
  Tensor matrix(int64_t from_ks, int64_t to_ks) const;
  int64_t max_in, stride;
  std::vector<int64_t> kernel_size_list, ks_set;  // ks_set: sorted, unique
  int64_t active_kernel_size;
  std::shared_ptr<Conv2d> conv;
  std::map<std::pair<int64_t, int64_t>, Tensor> matrices;  // (from, to) -> [to*to, to*to]
};

// BN over the leading channels of its (max-size) parameters and running stats.
class DynamicBatchNorm2d : public Module {
 public:
  explicit DynamicBatchNorm2d(int64_t max_feature_dim);
  Tensor forward(const Tensor& x, Act act = Act::Identity);  // act: fused, as BatchNorm2d::forward
  int64_t max_feature_dim;
  std::shared_ptr<BatchNorm2d> bn;
};

// SE with mid = make_divisible(C // 4, 8) for the active C: reduce [:mid, :C]
// (+ bias[:mid]), expand [:C, :mid] (+ bias[:C]).
class DynamicSE : public Module {
 public:
  explicit DynamicSE(int64_t max_channel, Generator* g = nullptr);
  static int64_t mid_for(int64_t channels);
  Tensor forward(const Tensor& x);
  int64_t max_channel;
  std::shared_ptr<SEFc> fc;
};

class DynamicLinear : public Module {
 public:
  DynamicLinear(int64_t max_in, int64_t max_out, bool bias = true, Generator* g = nullptr);
  Tensor forward(const Tensor& x, int64_t out_features = -1);  // x [N, in <= max_in]
  int64_t max_in, max_out;
  int64_t active_out_features;
  std::shared_ptr<Linear> linear;
};

class DynamicConvBnAct : public Module {
 public:
  std::shared_ptr<Module> conv;  // DynamicConv2d or DynamicSeparableConv2d
  std::shared_ptr<DynamicBatchNorm2d> bn;
  std::shared_ptr<DynamicSE> se;
};

class DynamicMBConvLayer : public Layer {
 public:
  DynamicMBConvLayer(std::vector<int64_t> in_channel_list, std::vector<int64_t> out_channel_list,
                     std::vector<int64_t> kernel_size_list, std::vector<double> expand_ratio_list, int64_t stride,
                     const std::string& act_func, bool use_se, Generator* g = nullptr);
  Tensor forward(const Tensor& x) override;
  json config() const override;  // the dynamic layer's own config
  std::string module_str() const override;

  int64_t in_channels() const;   // max of the list
  int64_t out_channels() const;  // max of the list
  int64_t active_middle_channel(int64_t in_channel) const;
  json active_subnet_config(int64_t in_channel) const;  // a static MBConvLayer config
  // A static MBConvLayer with copies of the active weights (depthwise already
  // transformed to the active kernel); BN num_batches_tracked starts at 0 as
  // the reference's copy_bn leaves it.
  std::shared_ptr<MBConvLayer> active_subnet(int64_t in_channel) const;
  // Sorts the middle channels by importance (see OFAMobileNetV3); returns
  // the permutation applied.
  std::vector<int64_t> re_organize_middle_weights(int64_t expand_ratio_stage);

  std::vector<int64_t> in_channel_list, out_channel_list, kernel_size_list;
  std::vector<double> expand_ratio_list;
  int64_t stride;
  std::string act_func;
  bool use_se;
  int64_t active_kernel_size, active_out_channel;
  double active_expand_ratio;

  std::shared_ptr<DynamicConvBnAct> inverted_bottleneck;  // null when max expand is 1
  std::shared_ptr<DynamicConvBnAct> depth_conv, point_linear;
  DynamicConv2d& ib_conv() const { return static_cast<DynamicConv2d&>(*inverted_bottleneck->conv); }
  DynamicSeparableConv2d& dw_conv() const { return static_cast<DynamicSeparableConv2d&>(*depth_conv->conv); }
  DynamicConv2d& pl_conv() const { return static_cast<DynamicConv2d&>(*point_linear->conv); }
};

}  // namespace ofa::nn
