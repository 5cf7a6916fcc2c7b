#include "nn/init.h"

#include <cmath>

#include "engine/autograd.h"

namespace ofa::nn {

void kaiming_normal_fan_out_(Tensor& w, Generator* g) {
  OFA_CHECK(w.dim() == 4, "kaiming_normal_fan_out_: wants a 4-D conv weight, got ", shape_str(w.shape()));
  NoGradGuard ng;
  const double n = static_cast<double>(w.size(0) * w.size(2) * w.size(3));
  normal_(w, 0.0, std::sqrt(2.0 / n), g);
}

void linear_uniform_(Tensor& w, Generator* g) {
  OFA_CHECK(w.dim() == 2, "linear_uniform_: wants a 2-D weight, got ", shape_str(w.shape()));
  NoGradGuard ng;
  const double b = 1.0 / std::sqrt(static_cast<double>(w.size(1)));
  uniform_(w, -b, b, g);
}

}  // namespace ofa::nn
