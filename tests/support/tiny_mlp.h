// A BN-free model for the gradient-averaging tests: Linear(13, 9), ReLU,
// Linear(9, 5), with non-zero biases; the same weights for the same seed on
// every rank and device.
#pragma once
#include <memory>

#include "engine/random.h"
#include "nn/layers.h"
#include "tests/support/test_util.h"

namespace ofa::test {

struct TinyMlp : nn::Module {
  std::shared_ptr<nn::Linear> fc1, fc2;
  explicit TinyMlp(uint64_t seed) {
    Generator g(seed);
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(13, 9, true, &g));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(9, 5, true, &g));
    fc1->bias.detach().copy_(randn_t({9}, seed + 1, DType::F32));
    fc2->bias.detach().copy_(randn_t({5}, seed + 2, DType::F32));
  }
  Tensor forward(const Tensor& x) const { return fc2->forward(relu(fc1->forward(x))); }
};

}  // namespace ofa::test
