// The evaluation helper (the reference's validate() of progressive_shrinking
// and its ImageNet evaluation helper): a subnet of the supernet is made
// active, its BN running statistics are recomputed on calibration images
// (set_running_statistics), then it is evaluated with the evaluation
// transforms. Used by the RunManager's validation and by ofa_eval on data.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/loader.h"
#include "ofa/ofa_mbv3.h"
#include "ofa/run_data.h"

namespace ofa {

struct EvalMetrics {
  double loss = 0, top1 = 0, top5 = 0;  // loss: cross-entropy without smoothing; accuracies in percent
  int64_t images = 0;
};

// Called after every batch of a pass with (batches done, batches in the pass).
using EvalProgress = std::function<void(int64_t, int64_t)>;

// Sums a vector element-wise over all ranks, in place (distributed runs);
// empty: a single process.
using AllreduceSum = std::function<void(std::vector<double>&)>;

// set_running_statistics over every batch `calib` delivers for its current
// epoch (the loader is started at epoch 0 first) through the active subnet.
// With `allreduce`, the statistics are those of all ranks' images together.
void recalibrate_bn(nn::OFAMobileNetV3& net, data::DataLoader& calib, const EvalProgress& progress = {},
                    const AllreduceSum& allreduce = {});

// The reference's run_manager.validate: evaluation mode, no gradients,
// cross-entropy, top-1 and top-5 over every batch of `loader` (with
// `allreduce`: over every rank's share, as its DistributedMetric).
EvalMetrics evaluate(nn::OFAMobileNetV3& net, data::DataLoader& loader, const EvalProgress& progress = {},
                     const AllreduceSum& allreduce = {});

// One row of a validation grid or an evaluation table.
struct SubnetResult {
  std::string name;  // the reference's "R160-D2-E3-K3" style for grid entries, else "subnet N"
  nn::SubnetSetting setting;
  int64_t resolution = 0;
  nn::NetInfo info;  // parameters and MACs at the resolution
  EvalMetrics metrics;
};

// The reference's validate() grid: every combination of depth in
// {min, max}(depth_list), expand {min, max}(expand_list), kernel {min,
// max}(ks_list) (each a set, so one value when min == max) and resolution,
// in the reference's order (depth, expand, kernel, resolution, outermost
// first); uniform settings (one value for every block / stage).
struct GridEntry {
  std::string name;
  nn::SubnetSetting setting;
  int64_t resolution = 0;
};
std::vector<GridEntry> validation_grid(const std::vector<int64_t>& ks_list, const std::vector<int64_t>& expand_list,
                                       const std::vector<int64_t>& depth_list, const std::vector<int64_t>& resolutions);

// For each entry: set it active, recalibrate BN on cfg.bn_calib_images
// training images at its resolution, evaluate on `split`. The supernet's
// active subnet is left at the last entry.
// world_size / rank: this rank's share of the calibration and evaluation
// images; allreduce combines the ranks' statistics and metrics.
std::vector<SubnetResult> evaluate_subnets(nn::OFAMobileNetV3& net, const std::vector<GridEntry>& entries,
                                           const RunData& data, const RunConfig& cfg, EvalSplit split,
                                           const std::function<void(const std::string&)>& status = {},
                                           int64_t world_size = 1, int64_t rank = 0,
                                           const AllreduceSum& allreduce = {});

}  // namespace ofa
