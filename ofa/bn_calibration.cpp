#include "ofa/bn_calibration.h"

#include <algorithm>

#include "engine/autograd.h"
#include "engine/ops.h"

namespace ofa::nn {

namespace {

// The networks' forward passes with every BatchNorm2d routed through the
// calibrator (the reference swaps each BN's forward the same way). Only the
// layers up to the last BN matter; the pooling and classifier are skipped.
struct Walker {
  BnCalibrator& cal;

  Tensor bn(BatchNorm2d& b, const Tensor& x) { return cal.bn_forward(b, x); }

  Tensor conv_layer(ConvLayer& l, const Tensor& x) {
    Tensor y = l.conv->forward(x);
    if (l.bn) y = bn(*l.bn, y);
    y = apply_activation(l.opt.act_func, y);
    if (l.se) y = l.se->forward(y);
    return y;
  }

  Tensor conv_bn_act(ConvBnAct& s, const Tensor& x) {
    Tensor y = apply_activation(s.act, bn(*s.bn, s.conv->forward(x)));
    if (s.se) y = s.se->forward(y);
    return y;
  }

  Tensor mbconv(MBConvLayer& l, const Tensor& x) {
    Tensor y = l.inverted_bottleneck ? conv_bn_act(*l.inverted_bottleneck, x) : x;
    y = conv_bn_act(*l.depth_conv, y);
    return conv_bn_act(*l.point_linear, y);
  }

  // DynamicMBConvLayer::forward with DynamicBatchNorm2d in the reference's
  // SET_RUNNING_STATISTICS mode (the inner BN on the active slice).
  Tensor dynamic_mbconv(DynamicMBConvLayer& l, const Tensor& x) {
    Tensor y = x;
    if (l.inverted_bottleneck) {
      y = l.ib_conv().forward(y, l.active_middle_channel(x.size(1)));
      y = apply_activation(l.act_func, bn(*l.inverted_bottleneck->bn->bn, y));
    }
    y = apply_activation(l.act_func, bn(*l.depth_conv->bn->bn, l.dw_conv().forward(y, l.active_kernel_size)));
    if (l.depth_conv->se) y = l.depth_conv->se->forward(y);
    return bn(*l.point_linear->bn->bn, l.pl_conv().forward(y, l.active_out_channel));
  }

  Tensor layer(Layer& l, const Tensor& x) {
    if (auto* r = dynamic_cast<ResidualBlock*>(&l)) {
      Tensor y = layer(*r->conv, x);
      return r->identity_shortcut ? add(y, x) : y;
    }
    if (auto* c = dynamic_cast<ConvLayer*>(&l)) return conv_layer(*c, x);
    if (auto* m = dynamic_cast<DynamicMBConvLayer*>(&l)) return dynamic_mbconv(*m, x);
    if (auto* m = dynamic_cast<MBConvLayer*>(&l)) return mbconv(*m, x);
    OFA_CHECK(false, "set_running_statistics: unsupported layer '", l.module_str(), "'");
    return x;
  }
};

void check_images(const Tensor& images, const char* where) {
  OFA_CHECK(images.defined() && images.dim() == 4 && images.size(1) == 3 && images.size(0) >= 1, where,
            ": calibration images must be [N, 3, H, W] with N >= 1, got ",
            images.defined() ? shape_str(images.shape()) : std::string("an undefined tensor"));
}

template <class Net>
void run_all(Net& net, const Tensor& images, int64_t batch_size) {
  check_images(images, "set_running_statistics");
  OFA_CHECK(batch_size >= 1, "set_running_statistics: batch size ", batch_size, " must be >= 1");
  BnCalibrator cal;
  for (int64_t s = 0; s < images.size(0); s += batch_size)
    cal.add_batch(net, images.narrow(0, s, std::min(batch_size, images.size(0) - s)));
  cal.apply();
}

}  // namespace

Tensor BnCalibrator::bn_forward(BatchNorm2d& b, const Tensor& x) {
  OFA_CHECK(x.dim() == 4 && x.size(1) <= b.weight.size(0), "set_running_statistics: BN input ", shape_str(x.shape()),
            " has more channels than the layer's ", b.weight.size(0));
  const int64_t c = x.size(1);
  // Batch mean over (N, H, W), then the biased variance, as the reference's lambda_forward.
  Tensor m = mean(x, {0, 2, 3});
  Tensor d = sub(x, m.reshape({1, c, 1, 1}));
  Tensor v = mean(mul(d, d), {0, 2, 3});

  auto it = std::find_if(stats_.begin(), stats_.end(), [&](const Stat& s) { return s.bn == &b; });
  if (it == stats_.end()) {
    Stat s;
    s.bn = &b;
    s.channels = c;
    s.mean_sum.assign(static_cast<size_t>(c), 0.0);
    s.var_sum.assign(static_cast<size_t>(c), 0.0);
    stats_.push_back(std::move(s));
    it = stats_.end() - 1;
  }
  OFA_CHECK(it->channels == c, "set_running_statistics: a BN saw ", it->channels, " channels, then ", c,
            " (the active subnet changed during calibration)");
  const double n = static_cast<double>(x.size(0));
  const auto mv = m.to(DType::F64).to_vector<double>(), vv = v.to(DType::F64).to_vector<double>();
  for (int64_t i = 0; i < c; ++i) {
    it->mean_sum[static_cast<size_t>(i)] += n * mv[static_cast<size_t>(i)];
    it->var_sum[static_cast<size_t>(i)] += n * vv[static_cast<size_t>(i)];
  }
  it->count += n;
  // Normalise with the batch statistics: F.batch_norm(x, mean, var, w[:C], b[:C], False, 0, eps).
  return batch_norm(x, b.weight.narrow(0, 0, c), b.bias.narrow(0, 0, c), m, v, false, 0.0, b.eps);
}

void BnCalibrator::add_batch(OFAMobileNetV3& net, const Tensor& images) {
  check_images(images, "set_running_statistics");
  NoGradGuard ng;
  Walker w{*this};
  Tensor y = w.layer(*net.first_conv, images);
  y = w.layer(*net.first_block, y);
  for (size_t s = 0; s < net.block_group_info.size(); ++s)
    for (int64_t i = 0; i < net.runtime_depth[s]; ++i) y = w.layer(*net.dyn_blocks[net.block_group_info[s][i] - 1], y);
  y = w.layer(*net.final_expand_layer, y);
  w.layer(*net.feature_mix_layer, global_avg_pool2d(y));
  ++batches_;
}

void BnCalibrator::add_batch(MobileNetV3& net, const Tensor& images) {
  check_images(images, "set_running_statistics");
  NoGradGuard ng;
  Walker w{*this};
  Tensor y = w.layer(*net.first_conv, images);
  for (auto& b : net.blocks) y = w.layer(*b, y);
  y = w.layer(*net.final_expand_layer, y);
  w.layer(*net.feature_mix_layer, global_avg_pool2d(y));
  ++batches_;
}

void BnCalibrator::apply() const {
  NoGradGuard ng;
  for (const auto& s : stats_) {
    if (s.count <= 0) continue;
    std::vector<double> m(s.mean_sum.size()), v(s.var_sum.size());
    for (size_t i = 0; i < m.size(); ++i) {
      m[i] = s.mean_sum[i] / s.count;
      v[i] = s.var_sum[i] / s.count;
    }
    Tensor rm = s.bn->running_mean.narrow(0, 0, s.channels), rv = s.bn->running_var.narrow(0, 0, s.channels);
    rm.copy_(from_vector<double>(m, {s.channels}).to(rm.device()));
    rv.copy_(from_vector<double>(v, {s.channels}).to(rv.device()));
  }
}

std::vector<double> BnCalibrator::flat_totals() const {
  std::vector<double> out;
  for (const auto& s : stats_) {
    out.push_back(s.count);
    out.insert(out.end(), s.mean_sum.begin(), s.mean_sum.end());
    out.insert(out.end(), s.var_sum.begin(), s.var_sum.end());
  }
  return out;
}

void BnCalibrator::set_flat_totals(const std::vector<double>& totals) {
  size_t k = 0;
  for (auto& s : stats_) {
    OFA_CHECK(k + 1 + 2 * s.mean_sum.size() <= totals.size(), "BnCalibrator::set_flat_totals: ", totals.size(),
              " values do not match the layout of flat_totals()");
    s.count = totals[k++];
    for (double& v : s.mean_sum) v = totals[k++];
    for (double& v : s.var_sum) v = totals[k++];
  }
  OFA_CHECK(k == totals.size(), "BnCalibrator::set_flat_totals: ", totals.size(),
            " values do not match the layout of flat_totals() (", k, ")");
}

void set_running_statistics(OFAMobileNetV3& net, const Tensor& images, int64_t batch_size) {
  run_all(net, images, batch_size);
}
void set_running_statistics(MobileNetV3& net, const Tensor& images, int64_t batch_size) {
  run_all(net, images, batch_size);
}

}  // namespace ofa::nn
