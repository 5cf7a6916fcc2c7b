#include "ofa/dynamic_layers.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "engine/autograd.h"

namespace ofa::nn {

namespace {

int64_t max_of(const std::vector<int64_t>& v, const char* what) {
  OFA_CHECK(!v.empty(), what, " is empty");
  return *std::max_element(v.begin(), v.end());
}

json number(double v) {
  if (std::nearbyint(v) == v && std::fabs(v) < 1e15) return json(static_cast<int64_t>(v));
  return json(v);
}

json numbers(const std::vector<double>& v) {
  json j = json::array();
  for (double x : v) j.push_back(number(x));
  return j;
}

// copy_bn of the reference: leading channels of the affine parameters and the
// running statistics (num_batches_tracked is left alone).
void copy_bn(BatchNorm2d& dst, const BatchNorm2d& src) {
  const int64_t c = dst.weight.size(0);
  dst.weight.copy_(src.weight.narrow(0, 0, c));
  dst.bias.copy_(src.bias.narrow(0, 0, c));
  dst.running_mean.copy_(src.running_mean.narrow(0, 0, c));
  dst.running_var.copy_(src.running_var.narrow(0, 0, c));
}

// Replaces t's values along `dim` by t[idx] (torch.index_select), in place so
// that handles (optimizer state keys, views) stay valid.
void permute_(Tensor& t, int64_t dim, const Tensor& idx) { t.copy_(index_select(t.detach(), dim, idx)); }

// Descending order of float32 importances; ties keep the lower index first
// (a stable sort; the reference's torch.sort gives no tie guarantee).
std::vector<int64_t> sort_desc(const std::vector<float>& imp) {
  std::vector<int64_t> idx(imp.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) { return imp[a] > imp[b]; });
  return idx;
}

// sum(|w|) over every dim but `keep` of a 4-D weight, accumulated in double
// and rounded once to float32 as the reference's float32 result.
std::vector<float> abs_sum_keep(const Tensor& w, int64_t keep) {
  Tensor wd = w.detach().to(DType::F64).contiguous();
  const auto v = wd.to_vector<double>();
  const int64_t K = wd.size(keep);
  std::vector<double> acc(K, 0.0);
  int64_t inner = 1;
  for (int64_t d = keep + 1; d < wd.dim(); ++d) inner *= wd.size(d);
  for (size_t i = 0; i < v.size(); ++i) acc[(i / inner) % K] += std::fabs(v[i]);
  return std::vector<float>(acc.begin(), acc.end());
}

Tensor index_tensor(const std::vector<int64_t>& idx) {
  return from_vector<int64_t>(idx, {static_cast<int64_t>(idx.size())});
}

}  // namespace

// ---------------------------------------------------------------- DynamicConv2d

DynamicConv2d::DynamicConv2d(int64_t mi, int64_t mo, int64_t k, int64_t s, Generator* g)
    : max_in(mi), max_out(mo), kernel_size(k), stride(s), active_out_channel(mo) {
  conv = register_module("conv", std::make_shared<Conv2d>(mi, mo, k, s, 1, false, g));
}

Tensor DynamicConv2d::active_filter(int64_t out, int64_t in) const {
  OFA_CHECK(out >= 1 && out <= max_out && in >= 1 && in <= max_in, "DynamicConv2d: active ", out, " x ", in,
            " channels exceed the stored ", max_out, " x ", max_in);
  return conv->weight.narrow(0, 0, out).narrow(1, 0, in);
}

Tensor DynamicConv2d::forward(const Tensor& x, int64_t out) {
  OFA_CHECK(x.dim() == 4, "DynamicConv2d: input must be [N, C, H, W], got ", shape_str(x.shape()));
  if (out < 0) out = active_out_channel;
  return conv2d(x, active_filter(out, x.size(1)), Tensor(), conv->args);
}

// ---------------------------------------------------------------- DynamicSeparableConv2d

DynamicSeparableConv2d::DynamicSeparableConv2d(int64_t mi, std::vector<int64_t> ks, int64_t s, Generator* g)
    : max_in(mi), stride(s), kernel_size_list(std::move(ks)) {
  const int64_t kmax = max_of(kernel_size_list, "DynamicSeparableConv2d: kernel_size_list");
  for (int64_t k : kernel_size_list) OFA_CHECK(k >= 1 && k % 2 == 1, "DynamicSeparableConv2d: kernel size ", k, " must be odd");
  ks_set = kernel_size_list;
  std::sort(ks_set.begin(), ks_set.end());
  ks_set.erase(std::unique(ks_set.begin(), ks_set.end()), ks_set.end());
  conv = register_module("conv", std::make_shared<Conv2d>(mi, mi, kmax, s, mi, false, g));
  // The reference registers them smallest first ("5to3_matrix", "7to5_matrix").
  for (size_t i = 0; i + 1 < ks_set.size(); ++i) {
    const int64_t small = ks_set[i], large = ks_set[i + 1], n = small * small;
    Tensor eye = zeros({n, n});
    float* p = eye.data<float>();
    for (int64_t j = 0; j < n; ++j) p[j * n + j] = 1.0f;
    char name[64];
    std::snprintf(name, sizeof name, "%lldto%lld_matrix", static_cast<long long>(large), static_cast<long long>(small));
    matrices[{large, small}] = register_parameter(name, eye);
  }
  active_kernel_size = kmax;
}

Tensor DynamicSeparableConv2d::matrix(int64_t from, int64_t to) const {
  auto it = matrices.find({from, to});
  OFA_CHECK(it != matrices.end(), "DynamicSeparableConv2d: no ", from, "to", to, "_matrix");
  return it->second;
}

Tensor DynamicSeparableConv2d::active_filter(int64_t in, int64_t k) const {
  OFA_CHECK(in >= 1 && in <= max_in, "DynamicSeparableConv2d: ", in, " active channels exceed the stored ", max_in);
  OFA_CHECK(std::find(ks_set.begin(), ks_set.end(), k) != ks_set.end(), "DynamicSeparableConv2d: kernel size ", k,
            " is not among the elastic kernel sizes");
  Tensor f = conv->weight.narrow(0, 0, in);  // [in, 1, kmax, kmax]
  for (size_t i = ks_set.size() - 1; i >= 1; --i) {
    const int64_t src = ks_set[i];
    if (src <= k) break;
    const int64_t tgt = ks_set[i - 1], s = src / 2 - tgt / 2;
    Tensor crop = f.narrow(2, s, tgt).narrow(3, s, tgt).reshape({in, tgt * tgt});
    f = linear(crop, matrix(src, tgt)).reshape({in, 1, tgt, tgt});  // crop @ M^T
  }
  return f;
}

Tensor DynamicSeparableConv2d::forward(const Tensor& x, int64_t k) {
  OFA_CHECK(x.dim() == 4, "DynamicSeparableConv2d: input must be [N, C, H, W], got ", shape_str(x.shape()));
  if (k < 0) k = active_kernel_size;
  return depthwise_conv2d(x, active_filter(x.size(1), k), stride);
}

// ---------------------------------------------------------------- DynamicBatchNorm2d

DynamicBatchNorm2d::DynamicBatchNorm2d(int64_t m) : max_feature_dim(m) {
  bn = register_module("bn", std::make_shared<BatchNorm2d>(m));
}

Tensor DynamicBatchNorm2d::forward(const Tensor& x, Act act) {
  OFA_CHECK(x.dim() >= 2 && x.size(1) <= max_feature_dim, "DynamicBatchNorm2d: input ", shape_str(x.shape()),
            " has more channels than the stored ", max_feature_dim);
  const int64_t c = x.size(1);
  if (is_training()) {  // counted whether or not the slice is the whole layer, as the reference
    NoGradGuard ng;
    // On the counter's device: no synchronisation per layer.
    bn->num_batches_tracked.add_(ones({}, DType::I64, bn->num_batches_tracked.device()));
  }
  return batch_norm_act(x, bn->weight.narrow(0, 0, c), bn->bias.narrow(0, 0, c), bn->running_mean.narrow(0, 0, c),
                        bn->running_var.narrow(0, 0, c), is_training(), bn->momentum, bn->eps, act);
}

// ---------------------------------------------------------------- DynamicSE

DynamicSE::DynamicSE(int64_t m, Generator* g) : max_channel(m) {
  const int64_t mid = mid_for(m);
  fc = register_module("fc", std::make_shared<SEFc>());
  fc->reduce = fc->register_module("reduce", std::make_shared<Conv2d>(m, mid, 1, 1, 1, true, g));
  fc->expand = fc->register_module("expand", std::make_shared<Conv2d>(mid, m, 1, 1, 1, true, g));
}

int64_t DynamicSE::mid_for(int64_t c) { return make_divisible(static_cast<double>(c / SEModule::kReduction), 8); }

Tensor DynamicSE::forward(const Tensor& x) {
  OFA_CHECK(x.dim() == 4 && x.size(1) <= max_channel, "DynamicSE: input ", shape_str(x.shape()),
            " has more channels than the stored ", max_channel);
  const int64_t c = x.size(1), mid = mid_for(c);
  return se_forward(x, fc->reduce->weight.narrow(0, 0, mid).narrow(1, 0, c), fc->reduce->bias.narrow(0, 0, mid),
                    fc->expand->weight.narrow(0, 0, c).narrow(1, 0, mid), fc->expand->bias.narrow(0, 0, c));
}

// ---------------------------------------------------------------- DynamicLinear

DynamicLinear::DynamicLinear(int64_t mi, int64_t mo, bool bias, Generator* g)
    : max_in(mi), max_out(mo), active_out_features(mo) {
  linear = register_module("linear", std::make_shared<Linear>(mi, mo, bias, g));
}

Tensor DynamicLinear::forward(const Tensor& x, int64_t out) {
  OFA_CHECK(x.dim() == 2 && x.size(1) <= max_in, "DynamicLinear: input ", shape_str(x.shape()),
            " must be [N, in] with in <= ", max_in);
  if (out < 0) out = active_out_features;
  OFA_CHECK(out >= 1 && out <= max_out, "DynamicLinear: ", out, " active outputs exceed the stored ", max_out);
  Tensor b = linear->bias.defined() ? linear->bias.narrow(0, 0, out) : Tensor();
  return ofa::linear(x, linear->weight.narrow(0, 0, out).narrow(1, 0, x.size(1)), b);
}

// ---------------------------------------------------------------- DynamicMBConvLayer

DynamicMBConvLayer::DynamicMBConvLayer(std::vector<int64_t> in_list, std::vector<int64_t> out_list,
                                       std::vector<int64_t> ks_list, std::vector<double> e_list, int64_t s,
                                       const std::string& act, bool se, Generator* g)
    : in_channel_list(std::move(in_list)), out_channel_list(std::move(out_list)),
      kernel_size_list(std::move(ks_list)), expand_ratio_list(std::move(e_list)), stride(s), act_func(act),
      use_se(se) {
  check_activation(act, "DynamicMBConvLayer");
  OFA_CHECK(!expand_ratio_list.empty(), "DynamicMBConvLayer: expand_ratio_list is empty");
  const double emax = *std::max_element(expand_ratio_list.begin(), expand_ratio_list.end());
  const int64_t max_mid = round_make_divisible(in_channels(), emax);
  if (emax != 1.0) {
    inverted_bottleneck = register_module("inverted_bottleneck", std::make_shared<DynamicConvBnAct>());
    inverted_bottleneck->conv =
        inverted_bottleneck->register_module("conv", std::make_shared<DynamicConv2d>(in_channels(), max_mid, 1, 1, g));
    inverted_bottleneck->bn = inverted_bottleneck->register_module("bn", std::make_shared<DynamicBatchNorm2d>(max_mid));
  }
  depth_conv = register_module("depth_conv", std::make_shared<DynamicConvBnAct>());
  depth_conv->conv =
      depth_conv->register_module("conv", std::make_shared<DynamicSeparableConv2d>(max_mid, kernel_size_list, s, g));
  depth_conv->bn = depth_conv->register_module("bn", std::make_shared<DynamicBatchNorm2d>(max_mid));
  if (use_se) depth_conv->se = depth_conv->register_module("se", std::make_shared<DynamicSE>(max_mid, g));
  point_linear = register_module("point_linear", std::make_shared<DynamicConvBnAct>());
  point_linear->conv =
      point_linear->register_module("conv", std::make_shared<DynamicConv2d>(max_mid, out_channels(), 1, 1, g));
  point_linear->bn = point_linear->register_module("bn", std::make_shared<DynamicBatchNorm2d>(out_channels()));

  active_kernel_size = max_of(kernel_size_list, "DynamicMBConvLayer: kernel_size_list");
  active_expand_ratio = emax;
  active_out_channel = out_channels();
}

int64_t DynamicMBConvLayer::in_channels() const { return max_of(in_channel_list, "DynamicMBConvLayer: in_channel_list"); }
int64_t DynamicMBConvLayer::out_channels() const {
  return max_of(out_channel_list, "DynamicMBConvLayer: out_channel_list");
}

int64_t DynamicMBConvLayer::active_middle_channel(int64_t in) const {
  return round_make_divisible(in, active_expand_ratio);
}

Tensor DynamicMBConvLayer::forward(const Tensor& x) {
  Tensor y = x;
  if (inverted_bottleneck) {
    y = ib_conv().forward(y, active_middle_channel(x.size(1)));
    y = inverted_bottleneck->bn->forward(y, act_of(act_func));
  }
  y = depth_conv->bn->forward(dw_conv().forward(y, active_kernel_size), act_of(act_func));
  if (depth_conv->se) y = depth_conv->se->forward(y);
  return point_linear->bn->forward(pl_conv().forward(y, active_out_channel));
}

json DynamicMBConvLayer::config() const {
  return json{{"name", "DynamicMBConvLayer"},
              {"in_channel_list", in_channel_list},
              {"out_channel_list", out_channel_list},
              {"kernel_size_list", kernel_size_list},
              {"expand_ratio_list", numbers(expand_ratio_list)},
              {"stride", stride},
              {"act_func", act_func},
              {"use_se", use_se}};
}

std::string DynamicMBConvLayer::module_str() const {
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s(O%d, E%.1f, K%d)", use_se ? "SE" : "", static_cast<int>(active_out_channel),
                active_expand_ratio, static_cast<int>(active_kernel_size));
  return buf;
}

json DynamicMBConvLayer::active_subnet_config(int64_t in) const {
  return json{{"name", "MBConvLayer"},
              {"in_channels", in},
              {"out_channels", active_out_channel},
              {"kernel_size", active_kernel_size},
              {"stride", stride},
              {"expand_ratio", number(active_expand_ratio)},
              {"mid_channels", active_middle_channel(in)},
              {"act_func", act_func},
              {"use_se", use_se}};
}

std::shared_ptr<MBConvLayer> DynamicMBConvLayer::active_subnet(int64_t in) const {
  auto sub = MBConvLayer::build_from_config(active_subnet_config(in));
  const int64_t mid = active_middle_channel(in);
  NoGradGuard ng;
  if (sub->inverted_bottleneck) {
    sub->inverted_bottleneck->conv->weight.copy_(ib_conv().active_filter(mid, in));
    copy_bn(*sub->inverted_bottleneck->bn, *inverted_bottleneck->bn->bn);
  }
  sub->depth_conv->conv->weight.copy_(dw_conv().active_filter(mid, active_kernel_size));
  copy_bn(*sub->depth_conv->bn, *depth_conv->bn->bn);
  if (use_se) {
    const int64_t se_mid = DynamicSE::mid_for(mid);
    const SEFc& src = *depth_conv->se->fc;
    SEFc& dst = *sub->depth_conv->se->fc;
    dst.reduce->weight.copy_(src.reduce->weight.narrow(0, 0, se_mid).narrow(1, 0, mid));
    dst.reduce->bias.copy_(src.reduce->bias.narrow(0, 0, se_mid));
    dst.expand->weight.copy_(src.expand->weight.narrow(0, 0, mid).narrow(1, 0, se_mid));
    dst.expand->bias.copy_(src.expand->bias.narrow(0, 0, mid));
  }
  sub->point_linear->conv->weight.copy_(pl_conv().active_filter(active_out_channel, mid));
  copy_bn(*sub->point_linear->bn, *point_linear->bn->bn);
  return sub;
}

std::vector<int64_t> DynamicMBConvLayer::re_organize_middle_weights(int64_t stage) {
  NoGradGuard ng;
  // Importance of a middle channel: L1 norm of the point-linear weights reading it.
  std::vector<float> imp = abs_sum_keep(pl_conv().conv->weight, 1);
  if (stage > 0) {
    std::vector<double> sorted_e = expand_ratio_list;
    std::sort(sorted_e.begin(), sorted_e.end(), std::greater<double>());
    OFA_CHECK(stage < static_cast<int64_t>(sorted_e.size()), "re_organize_middle_weights: expand_ratio_stage ", stage,
              " needs more than ", sorted_e.size(), " expand ratios");
    int64_t right = static_cast<int64_t>(imp.size());
    double base = -static_cast<double>(sorted_e.size()) * 1e5;
    for (int64_t i = 0; i <= stage; ++i) {
      const int64_t left = round_make_divisible(in_channels(), sorted_e[i]);
      // float32 tensor += python float: the sum rounds to float32.
      for (int64_t j = left; j < right; ++j) imp[j] = imp[j] + static_cast<float>(base);
      base += 1e5;
      right = left;
    }
  }
  const std::vector<int64_t> order = sort_desc(imp);
  const Tensor idx = index_tensor(order);
  permute_(pl_conv().conv->weight, 1, idx);
  BatchNorm2d& dbn = *depth_conv->bn->bn;
  for (Tensor* t : {&dbn.weight, &dbn.bias, &dbn.running_mean, &dbn.running_var}) permute_(*t, 0, idx);
  permute_(dw_conv().conv->weight, 0, idx);
  if (use_se) {
    SEFc& fc = *depth_conv->se->fc;
    permute_(fc.expand->weight, 0, idx);
    permute_(fc.expand->bias, 0, idx);
    permute_(fc.reduce->weight, 1, idx);
    // SE middle channels by the L1 norm of the expand weights reading them.
    const Tensor se_idx = index_tensor(sort_desc(abs_sum_keep(fc.expand->weight, 1)));
    permute_(fc.expand->weight, 1, se_idx);
    permute_(fc.reduce->weight, 0, se_idx);
    permute_(fc.reduce->bias, 0, se_idx);
  }
  if (inverted_bottleneck) {
    BatchNorm2d& ibn = *inverted_bottleneck->bn->bn;
    for (Tensor* t : {&ibn.weight, &ibn.bias, &ibn.running_mean, &ibn.running_var}) permute_(*t, 0, idx);
    permute_(ib_conv().conv->weight, 0, idx);
  }
  return order;
}

}  // namespace ofa::nn
