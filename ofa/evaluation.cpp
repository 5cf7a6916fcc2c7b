#include "ofa/evaluation.h"

#include <algorithm>
#include <set>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "ofa/bn_calibration.h"
#include "ofa/meters.h"

namespace ofa {

void recalibrate_bn(nn::OFAMobileNetV3& net, data::DataLoader& calib, const EvalProgress& progress,
                    const AllreduceSum& allreduce) {
  NoGradGuard ng;
  net.eval();  // dropout off; the calibrator makes every BN use its batch statistics
  nn::BnCalibrator cal;
  calib.set_epoch(0);
  const int64_t n = calib.batches_per_epoch();
  data::Batch b;
  int64_t done = 0;
  const Device dev = net.device();
  while (calib.next(b)) {
    b.to_device(dev);
    cal.add_batch(net, b.images);
    if (progress) progress(++done, n);
  }
  OFA_CHECK(cal.batches() > 0, "BN recalibration: the calibration loader over ", calib.dataset().root(),
            " delivered no batch");
  if (allreduce) {
    std::vector<double> t = cal.flat_totals();
    allreduce(t);
    cal.set_flat_totals(t);
  }
  cal.apply();
}

EvalMetrics evaluate(nn::OFAMobileNetV3& net, data::DataLoader& loader, const EvalProgress& progress,
                     const AllreduceSum& allreduce) {
  NoGradGuard ng;
  net.eval();
  AverageMeter loss;
  AccuracyMeters acc;
  loader.set_epoch(0);
  const int64_t n = loader.batches_per_epoch();
  data::Batch b;
  int64_t done = 0;
  const Device dev = net.device();
  while (loader.next(b)) {
    b.to_device(dev);
    Tensor logits = net.forward(b.images);
    loss.update(cross_entropy(logits, b.labels).item(), b.size());
    acc.update(logits, b.labels);
    if (progress) progress(++done, n);
  }
  if (allreduce) {
    std::vector<double> t = {loss.sum(), loss.count(), acc.top1.sum(), acc.top5.sum()};
    allreduce(t);
    loss.set_totals({t[0], t[1]});
    acc.top1.set_totals({t[2], t[1]});
    acc.top5.set_totals({t[3], t[1]});
  }
  EvalMetrics m;
  m.loss = loss.avg();
  m.top1 = acc.top1.avg();
  m.top5 = acc.top5.avg();
  m.images = static_cast<int64_t>(loss.count());
  return m;
}

std::vector<GridEntry> validation_grid(const std::vector<int64_t>& ks_list, const std::vector<int64_t>& expand_list,
                                       const std::vector<int64_t>& depth_list, const std::vector<int64_t>& resolutions) {
  auto min_max = [](const std::vector<int64_t>& v, const char* what) {
    OFA_CHECK(!v.empty(), "validation grid: the ", what, " list is empty");
    std::set<int64_t> s{*std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end())};
    return std::vector<int64_t>(s.begin(), s.end());
  };
  OFA_CHECK(!resolutions.empty(), "validation grid: no resolution given");
  std::vector<GridEntry> out;
  for (int64_t d : min_max(depth_list, "depth"))
    for (int64_t e : min_max(expand_list, "expand ratio"))
      for (int64_t k : min_max(ks_list, "kernel size"))
        for (int64_t r : resolutions) {
          GridEntry g;
          g.name = str_cat("R", r, "-D", d, "-E", e, "-K", k);
          g.setting.ks = {k};
          g.setting.e = {static_cast<double>(e)};
          g.setting.d = {d};
          g.resolution = r;
          out.push_back(std::move(g));
        }
  return out;
}

std::vector<SubnetResult> evaluate_subnets(nn::OFAMobileNetV3& net, const std::vector<GridEntry>& entries,
                                           const RunData& data, const RunConfig& cfg, EvalSplit split,
                                           const std::function<void(const std::string&)>& status,
                                           int64_t world_size, int64_t rank, const AllreduceSum& allreduce) {
  std::vector<SubnetResult> out;
  for (const GridEntry& g : entries) {
    net.set_active_subnet(g.setting);
    SubnetResult r;
    r.name = g.name;
    r.setting = net.active_setting();
    r.resolution = g.resolution;
    r.info = net.active_net_info(g.resolution);
    auto calib = make_bn_calib_loader(data, cfg, g.resolution, world_size, rank);
    recalibrate_bn(
        net, *calib,
        [&](int64_t i, int64_t n) {
          if (status) status(str_cat(g.name, ": BN statistics ", i, "/", n));
        },
        allreduce);
    calib.reset();
    auto loader = make_eval_loader(data, cfg, split, g.resolution, world_size, rank);
    r.metrics = evaluate(
        net, *loader,
        [&](int64_t i, int64_t n) {
          if (status) status(str_cat(g.name, ": evaluating ", i, "/", n));
        },
        allreduce);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace ofa
