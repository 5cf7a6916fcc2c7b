#include "ofa/ofa_mbv3.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "engine/autograd.h"

namespace ofa::nn {

namespace {

json number(double v) {
  if (std::nearbyint(v) == v && std::fabs(v) < 1e15) return json(static_cast<int64_t>(v));
  return json(v);
}

template <class T>
std::vector<T> sorted(std::vector<T> v, const char* what) {
  OFA_CHECK(!v.empty(), "OFAMobileNetV3: ", what, " is empty");
  std::sort(v.begin(), v.end());
  return v;
}

// The reference's val2list(v, n) for our list arguments: a single value
// repeats; an empty list is "None" (leave as is).
template <class T>
std::vector<T> expand_to(const std::vector<T>& v, size_t n, const char* what) {
  if (v.size() == 1) return std::vector<T>(n, v[0]);
  OFA_CHECK(v.empty() || v.size() == n, "OFAMobileNetV3::set_active_subnet: ", what, " has ", v.size(),
            " entries; give 1 (for all) or ", n);
  return v;
}

void copy_module_state(Module& dst, const Module& src) { dst.load_state_dict(src.state_dict(), true); }

}  // namespace

json SubnetSetting::to_json() const {
  json je = json::array();
  for (double x : e) je.push_back(number(x));
  return json{{"ks", ks}, {"e", je}, {"d", d}};
}

OFAMobileNetV3::OFAMobileNetV3(int64_t n_classes, double bn_momentum, double bn_eps, double dropout_rate, double wm,
                               std::vector<int64_t> ks, std::vector<double> er, std::vector<int64_t> dl, Generator* g)
    : width_mult(wm), ks_list(sorted(std::move(ks), "ks_list")), depth_list(sorted(std::move(dl), "depth_list")),
      expand_ratio_list(sorted(std::move(er), "expand_ratio_list")) {
  OFA_CHECK(n_classes >= 1, "OFAMobileNetV3: n_classes ", n_classes, " must be positive");
  OFA_CHECK(depth_list.front() >= 1, "OFAMobileNetV3: depths must be >= 1");
  const double base_stage_width[9] = {16, 16, 24, 40, 80, 112, 160, 960, 1280};
  const int64_t final_expand_width = make_divisible(base_stage_width[7] * wm, 8);
  const int64_t last_channel = make_divisible(base_stage_width[8] * wm, 8);
  const int64_t stride_stages[6] = {1, 2, 2, 2, 1, 2};
  const char* act_stages[6] = {"relu", "relu", "relu", "h_swish", "h_swish", "h_swish"};
  const bool se_stages[6] = {false, false, true, false, true, true};
  std::vector<int64_t> width_list;
  for (int i = 0; i < 7; ++i) width_list.push_back(make_divisible(base_stage_width[i] * wm, 8));
  const int64_t input_channel = width_list[0], first_block_dim = width_list[1];

  ConvLayerOptions fo;
  fo.kernel_size = 3;
  fo.stride = 2;
  fo.act_func = "h_swish";
  first_conv = std::make_shared<ConvLayer>(3, input_channel, fo, g);
  auto fbc = std::make_shared<MBConvLayer>(input_channel, first_block_dim, 3, stride_stages[0], 1.0, -1, act_stages[0],
                                           se_stages[0], g);
  first_block = std::make_shared<ResidualBlock>(fbc, input_channel == first_block_dim, first_block_dim);

  const int64_t n_block = depth_list.back();
  int64_t block_index = 1, feature_dim = first_block_dim;
  for (int st = 1; st < 6; ++st) {
    std::vector<int64_t> group;
    for (int64_t i = 0; i < n_block; ++i) group.push_back(block_index + i);
    block_group_info.push_back(group);
    block_index += n_block;
    const int64_t out = width_list[st + 1];
    for (int64_t i = 0; i < n_block; ++i) {
      const int64_t stride = i == 0 ? stride_stages[st] : 1;
      auto conv = std::make_shared<DynamicMBConvLayer>(std::vector<int64_t>{feature_dim}, std::vector<int64_t>{out},
                                                       ks_list, expand_ratio_list, stride, act_stages[st],
                                                       se_stages[st], g);
      dyn_blocks.push_back(std::make_shared<ResidualBlock>(conv, stride == 1 && feature_dim == out, feature_dim));
      feature_dim = out;
    }
  }
  ConvLayerOptions eo;
  eo.kernel_size = 1;
  eo.act_func = "h_swish";
  final_expand_layer = std::make_shared<ConvLayer>(feature_dim, final_expand_width, eo, g);
  ConvLayerOptions mo = eo;
  mo.use_bn = false;
  feature_mix_layer = std::make_shared<ConvLayer>(final_expand_width, last_channel, mo, g);
  classifier = std::make_shared<LinearLayer>(last_channel, n_classes, true, dropout_rate, g);

  register_module("first_conv", first_conv);
  auto list = register_module("blocks", std::make_shared<ModuleList>());
  list->append(first_block);
  for (auto& b : dyn_blocks) list->append(b);
  register_module("final_expand_layer", final_expand_layer);
  register_module("feature_mix_layer", feature_mix_layer);
  register_module("classifier", classifier);

  set_bn_param(bn_momentum, bn_eps);
  for (const auto& grp : block_group_info) runtime_depth.push_back(static_cast<int64_t>(grp.size()));
}

Tensor OFAMobileNetV3::forward(const Tensor& x) {
  OFA_CHECK(x.dim() == 4 && x.size(1) == 3, "OFAMobileNetV3: input must be [N, 3, H, W], got ", shape_str(x.shape()));
  Tensor y = first_conv->forward(x);
  y = first_block->forward(y);
  for (size_t s = 0; s < block_group_info.size(); ++s)
    for (int64_t i = 0; i < runtime_depth[s]; ++i) y = dyn_blocks[block_group_info[s][i] - 1]->forward(y);
  y = final_expand_layer->forward(y);
  y = global_avg_pool2d(y);
  y = feature_mix_layer->forward(y);
  y = y.reshape({y.size(0), -1});
  return classifier->forward(y);
}

std::string OFAMobileNetV3::module_str() const {
  std::string s = first_conv->module_str() + "\n" + first_block->module_str() + "\n";
  for (size_t st = 0; st < block_group_info.size(); ++st)
    for (int64_t i = 0; i < runtime_depth[st]; ++i) s += dyn_blocks[block_group_info[st][i] - 1]->module_str() + "\n";
  s += final_expand_layer->module_str() + "\n";
  s += feature_mix_layer->module_str() + "\n";
  return s + classifier->module_str() + "\n";
}

json OFAMobileNetV3::config() const {
  json bl = json::array();
  bl.push_back(first_block->config());
  for (const auto& b : dyn_blocks) bl.push_back(b->config());
  return json{{"name", "OFAMobileNetV3"},
              {"bn", get_bn_param()},
              {"first_conv", first_conv->config()},
              {"blocks", bl},
              {"final_expand_layer", final_expand_layer->config()},
              {"feature_mix_layer", feature_mix_layer->config()},
              {"classifier", classifier->config()}};
}

void OFAMobileNetV3::set_active_subnet(const std::vector<int64_t>& ks, const std::vector<double>& e,
                                       const std::vector<int64_t>& d) {
  const size_t nb = dyn_blocks.size(), ns = block_group_info.size();
  const auto k2 = expand_to(ks, nb, "ks");
  const auto e2 = expand_to(e, nb, "e");
  const auto d2 = expand_to(d, ns, "d");
  // Check everything first so that a bad setting changes nothing.
  for (int64_t k : k2)
    OFA_CHECK(std::find(ks_list.begin(), ks_list.end(), k) != ks_list.end(), "OFAMobileNetV3::set_active_subnet: kernel size ",
              k, " is not in ks_list");
  for (double x : e2)
    OFA_CHECK(std::find(expand_ratio_list.begin(), expand_ratio_list.end(), x) != expand_ratio_list.end(),
              "OFAMobileNetV3::set_active_subnet: expand ratio ", x, " is not in expand_ratio_list");
  for (int64_t x : d2) OFA_CHECK(x >= 1, "OFAMobileNetV3::set_active_subnet: depth ", x, " must be >= 1");
  for (size_t i = 0; i < k2.size(); ++i) block_conv(i).active_kernel_size = k2[i];
  for (size_t i = 0; i < e2.size(); ++i) block_conv(i).active_expand_ratio = e2[i];
  for (size_t i = 0; i < d2.size(); ++i)
    runtime_depth[i] = std::min(static_cast<int64_t>(block_group_info[i].size()), d2[i]);
}

void OFAMobileNetV3::set_max_net() { set_active_subnet({ks_list.back()}, {expand_ratio_list.back()}, {depth_list.back()}); }
void OFAMobileNetV3::set_min_net() {
  set_active_subnet({ks_list.front()}, {expand_ratio_list.front()}, {depth_list.front()});
}

SubnetSetting OFAMobileNetV3::active_setting() const {
  SubnetSetting s;
  for (size_t i = 0; i < dyn_blocks.size(); ++i) {
    s.ks.push_back(block_conv(i).active_kernel_size);
    s.e.push_back(block_conv(i).active_expand_ratio);
  }
  s.d = runtime_depth;
  return s;
}

void OFAMobileNetV3::set_constraint(const std::vector<double>& include, const std::string& type) {
  OFA_CHECK(!include.empty(), "OFAMobileNetV3::set_constraint: the include list is empty");
  const size_t n = type == "depth" ? block_group_info.size() : dyn_blocks.size();
  set_constraint_per_block(std::vector<std::vector<double>>(n, include), type);
}

void OFAMobileNetV3::set_constraint_per_block(const std::vector<std::vector<double>>& include, const std::string& type) {
  std::vector<std::vector<double>>* dst = nullptr;
  size_t n = dyn_blocks.size();
  if (type == "depth") {
    dst = &d_include_;
    n = block_group_info.size();
  } else if (type == "expand_ratio") {
    dst = &e_include_;
  } else if (type == "kernel_size") {
    dst = &ks_include_;
  }
  OFA_CHECK(dst != nullptr, "OFAMobileNetV3::set_constraint: unknown constraint type '", type,
            "' (use depth, expand_ratio or kernel_size)");
  OFA_CHECK(include.size() == n, "OFAMobileNetV3::set_constraint: ", include.size(), " ", type, " lists for ", n,
            type == "depth" ? " stages" : " blocks");
  for (const auto& l : include) OFA_CHECK(!l.empty(), "OFAMobileNetV3::set_constraint: an empty ", type, " list");
  *dst = include;
}

void OFAMobileNetV3::clear_constraint() {
  ks_include_.clear();
  e_include_.clear();
  d_include_.clear();
}

SubnetSetting OFAMobileNetV3::sample_active_subnet(PyRandom& rng) {
  SubnetSetting s;
  const size_t nb = dyn_blocks.size(), ns = block_group_info.size();
  std::vector<double> ksd(ks_list.begin(), ks_list.end()), dd(depth_list.begin(), depth_list.end());
  for (size_t i = 0; i < nb; ++i)
    s.ks.push_back(static_cast<int64_t>(rng.choice(ks_include_.empty() ? ksd : ks_include_[i])));
  for (size_t i = 0; i < nb; ++i) s.e.push_back(rng.choice(e_include_.empty() ? expand_ratio_list : e_include_[i]));
  for (size_t i = 0; i < ns; ++i) s.d.push_back(static_cast<int64_t>(rng.choice(d_include_.empty() ? dd : d_include_[i])));
  set_active_subnet(s);
  return s;
}

json OFAMobileNetV3::get_active_net_config() const {
  json bl = json::array();
  const json first = first_block->config();
  bl.push_back(first);
  int64_t in = first["conv"]["out_channels"].get<int64_t>();
  for (size_t st = 0; st < block_group_info.size(); ++st) {
    for (int64_t i = 0; i < runtime_depth[st]; ++i) {
      const auto& blk = dyn_blocks[block_group_info[st][i] - 1];
      const auto& conv = static_cast<const DynamicMBConvLayer&>(*blk->conv);
      const json full = blk->config();
      bl.push_back(json{{"name", "ResidualBlock"}, {"conv", conv.active_subnet_config(in)}, {"shortcut", full["shortcut"]}});
      in = conv.active_out_channel;
    }
  }
  return json{{"name", "MobileNetV3"},
              {"bn", get_bn_param()},
              {"first_conv", first_conv->config()},
              {"blocks", bl},
              {"final_expand_layer", final_expand_layer->config()},
              {"feature_mix_layer", feature_mix_layer->config()},
              {"classifier", classifier->config()}};
}

std::shared_ptr<MobileNetV3> OFAMobileNetV3::get_active_subnet() const {
  // The static layers are copied whole (num_batches_tracked included), as
  // the reference's deepcopy.
  auto fc = ConvLayer::build_from_config(first_conv->config());
  copy_module_state(*fc, *first_conv);
  auto b0conv = MBConvLayer::build_from_config(first_block->conv->config());
  auto b0 = std::make_shared<ResidualBlock>(b0conv, first_block->identity_shortcut, first_block->shortcut_channels);
  copy_module_state(*b0, *first_block);
  std::vector<std::shared_ptr<ResidualBlock>> blocks{b0};
  int64_t in = static_cast<const MBConvLayer&>(*first_block->conv).out_channels;
  for (size_t st = 0; st < block_group_info.size(); ++st) {
    for (int64_t i = 0; i < runtime_depth[st]; ++i) {
      const auto& blk = dyn_blocks[block_group_info[st][i] - 1];
      const auto& conv = static_cast<const DynamicMBConvLayer&>(*blk->conv);
      blocks.push_back(std::make_shared<ResidualBlock>(conv.active_subnet(in), blk->identity_shortcut, blk->shortcut_channels));
      in = conv.active_out_channel;
    }
  }
  auto fe = ConvLayer::build_from_config(final_expand_layer->config());
  copy_module_state(*fe, *final_expand_layer);
  auto fm = ConvLayer::build_from_config(feature_mix_layer->config());
  copy_module_state(*fm, *feature_mix_layer);
  auto cl = LinearLayer::build_from_config(classifier->config());
  copy_module_state(*cl, *classifier);
  cl->dropout_generator = classifier->dropout_generator;
  auto net = std::make_shared<MobileNetV3>(fc, blocks, fe, fm, cl);
  const json bn = get_bn_param();
  if (!bn.is_null()) net->set_bn_param(bn["momentum"].get<double>(), bn["eps"].get<double>());
  net->train(is_training());
  return net;
}

std::vector<std::vector<int64_t>> OFAMobileNetV3::re_organize_middle_weights(int64_t stage) {
  std::vector<std::vector<int64_t>> out;
  for (size_t i = 0; i < dyn_blocks.size(); ++i) out.push_back(block_conv(i).re_organize_middle_weights(stage));
  return out;
}

namespace {
bool replace_first(std::string& s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  if (at == std::string::npos) return false;
  s.replace(at, from.size(), to);
  return true;
}
}  // namespace

NamedTensors OFAMobileNetV3::map_reference_keys(const NamedTensors& state) const {
  std::set<std::string> mine;
  for (auto& [k, t] : state_dict()) mine.insert(k);
  NamedTensors out;
  for (const auto& [key, t] : state) {
    std::string k = key;
    replace_first(k, ".mobile_inverted_conv.", ".conv.");
    // The reference's chain: the first rule whose pattern occurs decides.
    if (!mine.count(k)) {
      if (k.find(".bn.bn.") != std::string::npos) replace_first(k, ".bn.bn.", ".bn.");
      else if (k.find(".conv.conv.weight") != std::string::npos) replace_first(k, ".conv.conv.weight", ".conv.weight");
      else if (k.find(".linear.linear.") != std::string::npos) replace_first(k, ".linear.linear.", ".linear.");
      else if (k.find(".linear.") != std::string::npos) replace_first(k, ".linear.", ".linear.linear.");
      else if (k.find("bn.") != std::string::npos) replace_first(k, "bn.", "bn.bn.");
      else if (k.find("conv.weight") != std::string::npos) replace_first(k, "conv.weight", "conv.conv.weight");
      else OFA_CHECK(false, "OFAMobileNetV3::map_reference_keys: no rule places checkpoint key '", key, "'");
    }
    OFA_CHECK(mine.count(k), "OFAMobileNetV3::map_reference_keys: checkpoint key '", key, "' maps to '", k,
              "', which this supernet does not have");
    out.emplace_back(k, t);
  }
  return out;
}

void OFAMobileNetV3::load_reference_state_dict(const NamedTensors& state) {
  load_state_dict(map_reference_keys(state), /*strict=*/false);
}

void OFAMobileNetV3::set_bn_param(double momentum, double eps) {
  for (auto& [n, m] : named_modules())
    if (auto* bn = dynamic_cast<BatchNorm2d*>(m)) {
      bn->momentum = momentum;
      bn->eps = eps;
    }
}

json OFAMobileNetV3::get_bn_param() const {
  for (auto& [n, m] : const_cast<OFAMobileNetV3&>(*this).named_modules())
    if (auto* bn = dynamic_cast<BatchNorm2d*>(m))
      return json{{"momentum", bn->momentum}, {"eps", bn->eps}, {"ws_eps", nullptr}};
  return nullptr;
}

}  // namespace ofa::nn
