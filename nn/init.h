// Weight initialisers of the OFA reference (init_models): convolutions
// he_fout (normal, std sqrt(2 / (k*k*out_channels))), linear layers
// uniform(+-1/sqrt(in)), BN weight 1 and bias 0.
#pragma once
#include "engine/random.h"

namespace ofa::nn {
void kaiming_normal_fan_out_(Tensor& w, Generator* g = nullptr);  // w [out, in/groups, kh, kw]
void linear_uniform_(Tensor& w, Generator* g = nullptr);          // w [out, in]; bias too with fan_in of w
void uniform_fan_in_(Tensor& t, int64_t fan_in, Generator* g = nullptr);
}  // namespace ofa::nn
