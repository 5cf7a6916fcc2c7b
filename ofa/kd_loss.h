// Knowledge-distillation losses of the reference's train_one_epoch
// (progressive_shrinking.py).
#pragma once
#include <string>

#include "engine/tensor.h"

namespace ofa {

// Distillation term of logits [N, K] against the teacher's logits [N, K]
// (taken without gradient): "ce" = mean over the batch of
// -sum softmax(teacher) * log_softmax(logits); "mse" = mean((logits - teacher)^2).
Tensor kd_loss(const Tensor& logits, const Tensor& teacher_logits, const std::string& kd_type);

// The training loss of one subnet: label-smoothed cross-entropy, plus
// kd_ratio * kd_loss when kd_ratio > 0 (then teacher_logits must be defined),
// summed in the reference's order (kd_ratio * kd + ce).
Tensor train_loss(const Tensor& logits, const Tensor& labels, double label_smoothing, const Tensor& teacher_logits,
                  double kd_ratio, const std::string& kd_type);

}  // namespace ofa
