#include "ofa/meters.h"

#include <algorithm>

#include "engine/common.h"
#include "engine/ops.h"

namespace ofa {

void AverageMeter::update(double val, int64_t n) {
  OFA_CHECK(n >= 0, "AverageMeter::update: n must be >= 0 (got ", n, ")");
  val_ = val;
  sum_ += val * static_cast<double>(n);
  count_ += static_cast<double>(n);
}

void AverageMeter::merge(double sum, double count) {
  OFA_CHECK(count >= 0, "AverageMeter::merge: count must be >= 0 (got ", count, ")");
  sum_ += sum;
  count_ += count;
  if (count > 0) val_ = sum / count;
}

void AverageMeter::set_totals(const std::vector<double>& totals) {
  OFA_CHECK(totals.size() == 2, "AverageMeter::set_totals: expected {sum, count} (2 values), got ", totals.size());
  OFA_CHECK(totals[1] >= 0, "AverageMeter::set_totals: count must be >= 0 (got ", totals[1], ")");
  sum_ = totals[0];
  count_ = totals[1];
}

std::vector<double> accuracy(const Tensor& logits, const Tensor& target, const std::vector<int64_t>& ks) {
  return topk_accuracy(logits, target, ks);
}

void AccuracyMeters::update(const Tensor& logits, const Tensor& target) {
  OFA_CHECK(logits.dim() == 2, "AccuracyMeters::update: logits must be [N, K]");
  const int64_t k5 = std::min<int64_t>(5, logits.size(1));
  const std::vector<double> acc = topk_accuracy(logits, target, {1, k5});
  const int64_t n = logits.size(0);
  top1.update(acc[0], n);
  top5.update(acc[1], n);
}

}  // namespace ofa
