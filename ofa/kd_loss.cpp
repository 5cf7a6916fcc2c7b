#include "ofa/kd_loss.h"

#include "engine/autograd.h"
#include "engine/common.h"
#include "engine/ops.h"

namespace ofa {

Tensor kd_loss(const Tensor& logits, const Tensor& teacher_logits, const std::string& kd_type) {
  OFA_CHECK(teacher_logits.defined(), "kd_loss: teacher_logits is undefined; run the teacher first");
  OFA_CHECK(logits.shape() == teacher_logits.shape(), "kd_loss: logits ", shape_str(logits.shape()), " and teacher_logits ",
            shape_str(teacher_logits.shape()), " must have the same shape [N, K]");
  // The teacher is a fixed target: no gradient flows into it.
  const Tensor teacher = teacher_logits.detach();
  if (kd_type == "ce") {
    Tensor soft;
    {
      NoGradGuard no_grad;
      soft = softmax(teacher, 1);
    }
    return cross_entropy_soft(logits, soft);
  }
  if (kd_type == "mse") return mse_loss(logits, teacher);
  OFA_CHECK(false, "kd_loss: unknown kd_type '", kd_type, "'; valid: ce | mse");
  return Tensor();
}

Tensor train_loss(const Tensor& logits, const Tensor& labels, double label_smoothing, const Tensor& teacher_logits,
                  double kd_ratio, const std::string& kd_type) {
  OFA_CHECK(kd_ratio >= 0, "train_loss: kd_ratio must be >= 0 (got ", kd_ratio, ")");
  Tensor ce = cross_entropy(logits, labels, label_smoothing);
  if (kd_ratio == 0) return ce;
  OFA_CHECK(teacher_logits.defined(), "train_loss: kd_ratio = ", kd_ratio,
            " > 0 needs teacher_logits; pass the teacher's output or set kd_ratio: 0");
  return add(mul(kd_loss(logits, teacher_logits, kd_type), kd_ratio), ce);
}

}  // namespace ofa
