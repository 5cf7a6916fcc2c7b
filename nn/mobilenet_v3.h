// Static MobileNetV3 of the OFA reference (ofa/utils/layers.py and
// ofa/imagenet_classification/networks/mobilenet_v3.py): the layers a net
// config names (ConvLayer, MBConvLayer, ResidualBlock, LinearLayer, SE), built
// from and written back to the reference's JSON net config, with the
// reference's state_dict names ("blocks.1.conv.depth_conv.se.fc.reduce.weight").
// Subnets extracted from the OFA supernet are these networks.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/layers.h"

namespace ofa::nn {

using json = nlohmann::json;

// The reference's make_divisible(v, divisor): the nearest multiple of
// `divisor` (at least `divisor`), bumped up once when it lost more than 10%.
int64_t make_divisible(double v, int64_t divisor = 8);
// The channel count OFA derives from in * expand_ratio: torch.round in float32
// (half to even), then make_divisible(., 8).
int64_t round_make_divisible(int64_t in, double expand_ratio);
// min_divisible_value(n1, v1): the largest v <= v1 dividing n1.
int64_t min_divisible_value(int64_t n1, int64_t v1);
// "relu", "relu6", "h_swish", "h_sigmoid", or "" / "none" (identity).
Tensor apply_activation(const std::string& act, const Tensor& x);
// The kernels' activation for a name ("" and "none": Act::Identity).
Act act_of(const std::string& act);
void check_activation(const std::string& act, const char* where);
// Output size of a "same"-padded convolution (padding k / 2).
int64_t conv_out_size(int64_t in, int64_t kernel, int64_t stride);

// A layer a net config can name: forward, its config, its one-line summary.
class Layer : public Module {
 public:
  virtual Tensor forward(const Tensor& x) = 0;
  virtual json config() const = 0;
  virtual std::string module_str() const = 0;
};

// A named list of children "0", "1", ... (nn.ModuleList's naming).
class ModuleList : public Module {
 public:
  void append(std::shared_ptr<Module> m);
  int64_t size() const { return n_; }

 private:
  int64_t n_ = 0;
};

// SE: children fc.reduce (1x1 conv C -> mid, bias) and fc.expand (mid -> C, bias).
class SEFc : public Module {
 public:
  std::shared_ptr<Conv2d> reduce, expand;
};

class SEModule : public Module {
 public:
  static constexpr int64_t kReduction = 4;
  explicit SEModule(int64_t channel, int64_t reduction = kReduction, Generator* g = nullptr);
  // x * h_sigmoid(expand(relu(reduce(mean_hw(x)))))
  Tensor forward(const Tensor& x) const;
  int64_t channel, reduction, mid;
  std::shared_ptr<SEFc> fc;
};

// The squeeze-excite arithmetic on given (possibly sliced) weights; shared with
// the dynamic SE so both compute the same thing.
Tensor se_forward(const Tensor& x, const Tensor& reduce_w, const Tensor& reduce_b, const Tensor& expand_w,
                  const Tensor& expand_b);

// conv -> BN -> activation (ops_order "weight_bn_act"), optional SE after.
struct ConvLayerOptions {
  int64_t kernel_size = 3, stride = 1, dilation = 1, groups = 1;
  bool bias = false, has_shuffle = false, use_se = false, use_bn = true;
  std::string act_func = "relu";
  double dropout_rate = 0.0;
  std::string ops_order = "weight_bn_act";
};

class ConvLayer : public Layer {
 public:
  ConvLayer(int64_t in_channels, int64_t out_channels, const ConvLayerOptions& opt = {}, Generator* g = nullptr);
  static std::shared_ptr<ConvLayer> build_from_config(const json& config, Generator* g = nullptr);
  Tensor forward(const Tensor& x) override;
  json config() const override;
  std::string module_str() const override;

  int64_t in_channels, out_channels;
  ConvLayerOptions opt;
  std::shared_ptr<Conv2d> conv;
  std::shared_ptr<BatchNorm2d> bn;  // null without BN
  std::shared_ptr<SEModule> se;     // null without SE
};

// One stage of an MBConv (nn.Sequential in the reference): conv, bn, act, [se].
class ConvBnAct : public Module {
 public:
  Tensor forward(const Tensor& x);
  std::shared_ptr<Conv2d> conv;
  std::shared_ptr<BatchNorm2d> bn;
  std::shared_ptr<SEModule> se;
  std::string act;
};

// inverted_bottleneck (1x1, absent for expand ratio 1) -> depth_conv (k x k
// depthwise, BN, act, [SE]) -> point_linear (1x1, BN).
class MBConvLayer : public Layer {
 public:
  // mid_channels < 0 means None (round(in * expand_ratio)).
  MBConvLayer(int64_t in_channels, int64_t out_channels, int64_t kernel_size = 3, int64_t stride = 1,
              double expand_ratio = 6, int64_t mid_channels = -1, const std::string& act_func = "relu6",
              bool use_se = false, Generator* g = nullptr);
  static std::shared_ptr<MBConvLayer> build_from_config(const json& config, Generator* g = nullptr);
  Tensor forward(const Tensor& x) override;
  json config() const override;
  std::string module_str() const override;
  int64_t feature_dim() const;  // the middle width actually built

  int64_t in_channels, out_channels, kernel_size, stride, mid_channels;
  double expand_ratio;
  std::string act_func;
  bool use_se;
  std::shared_ptr<ConvBnAct> inverted_bottleneck;  // null for expand ratio 1
  std::shared_ptr<ConvBnAct> depth_conv, point_linear;
};

// conv(x) (+ x with an identity shortcut).
class ResidualBlock : public Layer {
 public:
  ResidualBlock(std::shared_ptr<Layer> conv, bool identity_shortcut, int64_t shortcut_channels);
  static std::shared_ptr<ResidualBlock> build_from_config(const json& config, Generator* g = nullptr);
  Tensor forward(const Tensor& x) override;
  json config() const override;
  std::string module_str() const override;

  std::shared_ptr<Layer> conv;
  bool identity_shortcut;
  int64_t shortcut_channels;  // IdentityLayer(in, out) of the config
};

// dropout (p = dropout_rate) -> linear.
class LinearLayer : public Layer {
 public:
  LinearLayer(int64_t in_features, int64_t out_features, bool bias = true, double dropout_rate = 0.0,
              Generator* g = nullptr);
  static std::shared_ptr<LinearLayer> build_from_config(const json& config, Generator* g = nullptr);
  Tensor forward(const Tensor& x) override;
  json config() const override;
  std::string module_str() const override;

  int64_t in_features, out_features;
  bool bias;
  double dropout_rate;
  Generator* dropout_generator = nullptr;  // null: the default generator
  std::shared_ptr<Linear> linear;
};

// Parameter count and multiply-accumulates of a net config at an input
// resolution, counted as the reference's get_net_info (count_parameters and
// flops_counter.profile): conv cin * output elements * kh * kw / groups, linear
// in * out, batch 1; BN, activations, pooling and additions are free.
struct NetInfo {
  int64_t params = 0;
  int64_t macs = 0;
};
NetInfo net_info_from_config(const json& net_config, int64_t resolution);

class MobileNetV3 : public Module {
 public:
  MobileNetV3(std::shared_ptr<ConvLayer> first_conv, std::vector<std::shared_ptr<ResidualBlock>> blocks,
              std::shared_ptr<ConvLayer> final_expand_layer, std::shared_ptr<ConvLayer> feature_mix_layer,
              std::shared_ptr<LinearLayer> classifier);
  // Accepts the reference's config (also "mobile_inverted_conv" and
  // "MBInvertedConvLayer" of older configs). Weights: init_models' he_fout.
  static std::shared_ptr<MobileNetV3> build_from_config(const json& config, Generator* g = nullptr);

  Tensor forward(const Tensor& x);  // [N, 3, H, W] -> logits [N, n_classes]
  json config() const;
  std::string module_str() const;
  void set_bn_param(double momentum, double eps);
  json get_bn_param() const;  // {"momentum", "eps", "ws_eps": null}
  int64_t count_parameters() const;
  NetInfo net_info(int64_t resolution) const { return net_info_from_config(config(), resolution); }

  std::shared_ptr<ConvLayer> first_conv;
  std::vector<std::shared_ptr<ResidualBlock>> blocks;
  std::shared_ptr<ConvLayer> final_expand_layer, feature_mix_layer;
  std::shared_ptr<LinearLayer> classifier;
};

}  // namespace ofa::nn
