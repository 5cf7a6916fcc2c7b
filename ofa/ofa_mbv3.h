// The OFA-MobileNetV3 supernet (the reference's ofa_mbv3.py): a static stem,
// block 0 and head around 5 stages of max(depth_list) DynamicMBConvLayers,
// with per-block elastic kernel size and expand ratio and per-stage depth.
// Parameter names are the reference's supernet state_dict names
// ("blocks.3.conv.depth_conv.conv.7to5_matrix").
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/py_random.h"
#include "ofa/dynamic_layers.h"

namespace ofa::nn {

// A subnet: per-block kernel sizes and expand ratios (20 entries each for the
// 5 x 4 layout) and per-stage depths.
struct SubnetSetting {
  std::vector<int64_t> ks;
  std::vector<double> e;
  std::vector<int64_t> d;
  bool operator==(const SubnetSetting& o) const { return ks == o.ks && e == o.e && d == o.d; }
  json to_json() const;  // {"ks": [...], "e": [...], "d": [...]}
};

class OFAMobileNetV3 : public Module {
 public:
  OFAMobileNetV3(int64_t n_classes = 1000, double bn_momentum = 0.1, double bn_eps = 1e-5, double dropout_rate = 0.1,
                 double width_mult = 1.0, std::vector<int64_t> ks_list = {3, 5, 7},
                 std::vector<double> expand_ratio_list = {3, 4, 6}, std::vector<int64_t> depth_list = {2, 3, 4},
                 Generator* g = nullptr);

  Tensor forward(const Tensor& x);  // the active subnet
  std::string module_str() const;
  json config() const;  // the supernet's own config ("OFAMobileNetV3")

  // ---- active subnet
  // Lists of length 1 apply to every block / stage; empty lists leave a
  // dimension unchanged (the reference's None). Depths are capped at the stage size.
  void set_active_subnet(const std::vector<int64_t>& ks, const std::vector<double>& e, const std::vector<int64_t>& d);
  void set_active_subnet(const SubnetSetting& s) { set_active_subnet(s.ks, s.e, s.d); }
  void set_max_net();
  void set_min_net();
  SubnetSetting active_setting() const;
  // Draws as the reference with Python's random module: every block's kernel
  // size, then every block's expand ratio, then every stage's depth, each a
  // random.choice over the candidates (the constraint's, when one is set).
  SubnetSetting sample_active_subnet(PyRandom& rng);
  // type: "depth", "expand_ratio" or "kernel_size"; one list for all blocks /
  // stages, or one list per block / stage.
  void set_constraint(const std::vector<double>& include, const std::string& type);
  void set_constraint_per_block(const std::vector<std::vector<double>>& include, const std::string& type);
  void clear_constraint();

  // A static MobileNetV3 holding copies of the active weights.
  std::shared_ptr<MobileNetV3> get_active_subnet() const;
  json get_active_net_config() const;
  NetInfo active_net_info(int64_t resolution) const { return net_info_from_config(get_active_net_config(), resolution); }

  // Sorts every block's middle channels by importance (see DynamicMBConvLayer);
  // returns each block's permutation (blocks 1.. in order).
  std::vector<std::vector<int64_t>> re_organize_middle_weights(int64_t expand_ratio_stage = 0);

  // Maps a checkpoint's keys to this supernet's as the reference's
  // load_state_dict does (".mobile_inverted_conv." -> ".conv.", and static
  // names such as ".bn." / ".conv.weight" to the dynamic ".bn.bn." /
  // ".conv.conv.weight" and back); throws naming a key it cannot place.
  NamedTensors map_reference_keys(const NamedTensors& state) const;
  // map_reference_keys, then load; keys the checkpoint lacks keep their
  // values (the reference fills its own state_dict with the given entries).
  void load_reference_state_dict(const NamedTensors& state);

  void set_bn_param(double momentum, double eps);
  json get_bn_param() const;

  double width_mult;
  std::vector<int64_t> ks_list, depth_list;  // sorted
  std::vector<double> expand_ratio_list;     // sorted
  std::vector<std::vector<int64_t>> block_group_info;
  std::vector<int64_t> runtime_depth;

  std::shared_ptr<ConvLayer> first_conv;
  std::shared_ptr<ResidualBlock> first_block;                // blocks.0 (static)
  std::vector<std::shared_ptr<ResidualBlock>> dyn_blocks;    // blocks.1 .. (conv: DynamicMBConvLayer)
  std::shared_ptr<ConvLayer> final_expand_layer, feature_mix_layer;
  std::shared_ptr<LinearLayer> classifier;
  DynamicMBConvLayer& block_conv(size_t i) const { return static_cast<DynamicMBConvLayer&>(*dyn_blocks[i]->conv); }

 private:
  // Per block / stage candidate lists of the current constraints (empty: none).
  std::vector<std::vector<double>> ks_include_, e_include_, d_include_;
};

}  // namespace ofa::nn
