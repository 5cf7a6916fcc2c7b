// BN recalibration as the reference's set_running_statistics
// (ofa/imagenet_classification/elastic_nn/utils.py): forward the calibration
// batches through the active network; every BN layer that runs normalises
// with its batch's statistics (mean over N, H, W and the biased variance)
// instead of its running ones, and at the end running_mean / running_var
// [:C] become the averages of those batch statistics weighted by batch size.
// Nothing else changes: weights, num_batches_tracked, the BNs of inactive
// blocks and the channels beyond the active C keep their values.
#pragma once
#include <vector>

#include "nn/mobilenet_v3.h"
#include "ofa/ofa_mbv3.h"

namespace ofa::nn {

// Accumulates the statistics of a calibration pass; apply() writes them.
class BnCalibrator {
 public:
  // Adds one batch (images [N, 3, H, W]) through the active subnet.
  void add_batch(OFAMobileNetV3& net, const Tensor& images);
  void add_batch(MobileNetV3& net, const Tensor& images);
  // running_mean / running_var [:C] = the batch-size-weighted averages, for
  // every BN that saw at least one batch.
  void apply() const;
  int64_t batches() const { return batches_; }
  // Every statistic's sums and counts in first-use order, flattened (per BN:
  // count, then mean sums, then variance sums): what ranks sum before apply()
  // so that every rank gets the statistics of all ranks' images.
  std::vector<double> flat_totals() const;
  void set_flat_totals(const std::vector<double>& totals);  // the same layout

  // One BN in calibration mode (public for the forward walk in the .cpp).
  Tensor bn_forward(BatchNorm2d& bn, const Tensor& x);

 private:
  struct Stat {
    BatchNorm2d* bn = nullptr;
    int64_t channels = 0;
    double count = 0;
    std::vector<double> mean_sum, var_sum;  // sum over batches of batch_size * statistic
  };
  std::vector<Stat> stats_;  // in first-use order
  int64_t batches_ = 0;
};

// set_running_statistics over `images` [M, 3, H, W] in consecutive batches of
// `batch_size` (the last one may be smaller), as a sequential DataLoader gives them.
void set_running_statistics(OFAMobileNetV3& net, const Tensor& images, int64_t batch_size);
void set_running_statistics(MobileNetV3& net, const Tensor& images, int64_t batch_size);

}  // namespace ofa::nn
