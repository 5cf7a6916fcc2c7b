// Weight initialisers of the OFA reference (init_models): convolutions
// he_fout (normal, std sqrt(2 / (k*k*out_channels))), linear weights
// uniform(+-1/sqrt(in)); every bias 0, BN weight 1.
#pragma once
#include "engine/random.h"

namespace ofa::nn {
void kaiming_normal_fan_out_(Tensor& w, Generator* g = nullptr);  // w [out, in/groups, kh, kw]
void linear_uniform_(Tensor& w, Generator* g = nullptr);          // w [out, in]
}  // namespace ofa::nn
