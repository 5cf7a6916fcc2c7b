// The reference's AverageMeter / DistributedMetric (ofa/utils/common_tools.py,
// pytorch_utils.py) and accuracy(output, target, topk).
#pragma once
#include <cstdint>
#include <vector>

#include "engine/tensor.h"

namespace ofa {

// Running average of a value weighted by sample counts: update(val, n) adds
// val * n to sum and n to count. Summed in double, so merging per-rank
// (sum, count) pairs gives the global average.
class AverageMeter {
 public:
  void reset() { *this = AverageMeter(); }
  void update(double val, int64_t n = 1);
  // Adds another meter's totals (e.g. after an allreduce of totals());
  // val becomes the other's last value.
  void merge(double sum, double count);

  double val() const { return val_; }    // last value given to update
  double sum() const { return sum_; }
  double count() const { return count_; }
  double avg() const { return count_ > 0 ? sum_ / count_ : 0.0; }  // 0 before any update, as the reference

  // {sum, count}: what a DistributedMetric sums over ranks before avg = sum / count.
  std::vector<double> totals() const { return {sum_, count_}; }
  void set_totals(const std::vector<double>& totals);  // after the allreduce

 private:
  double val_ = 0, sum_ = 0, count_ = 0;
};

// Top-k accuracies in percent of logits [N, K] against int64 labels [N] (the
// reference's accuracy(output, target, topk)).
std::vector<double> accuracy(const Tensor& logits, const Tensor& target, const std::vector<int64_t>& ks = {1, 5});

// The reference's per-step metric dict: top-1 and top-5 meters updated with
// the batch size. K < 5 classes: top-5 is measured at min(5, K).
struct AccuracyMeters {
  AverageMeter top1, top5;
  void update(const Tensor& logits, const Tensor& target);
  void reset() { top1.reset(); top5.reset(); }
};

}  // namespace ofa
