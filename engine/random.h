// Deterministic, seeded random numbers: counter-based Philox-4x32-10, so that
// element i of a draw depends only on (seed, offset + i). The same numbers come
// out whatever the thread count, and a CUDA kernel can draw them too. The
// whole state is (seed, offset): save it, restore it, and the stream goes on.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace ofa {

struct GeneratorState {
  uint64_t seed = 0;
  uint64_t offset = 0;  // Philox counters consumed so far
  bool operator==(const GeneratorState& o) const { return seed == o.seed && offset == o.offset; }
};

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) { manual_seed(seed); }
  void manual_seed(uint64_t seed) { state_ = {seed, 0}; }
  GeneratorState state() const { return state_; }
  void set_state(const GeneratorState& s) { state_ = s; }
  // Reserves n counters and returns the first.
  uint64_t advance(uint64_t n) {
    uint64_t o = state_.offset;
    state_.offset += n;
    return o;
  }

 private:
  GeneratorState state_;
};

Generator& default_generator();
void manual_seed(uint64_t seed);  // seeds the default generator

// In-place fills of a floating tensor (any strides), outside autograd.
void uniform_(Tensor& t, double lo = 0.0, double hi = 1.0, Generator* g = nullptr);
void normal_(Tensor& t, double mean = 0.0, double std = 1.0, Generator* g = nullptr);
void bernoulli_(Tensor& t, double p, Generator* g = nullptr);  // 1 with probability p, else 0

Tensor rand(const Shape& shape, DType dt = DType::F32, Generator* g = nullptr);
Tensor randn(const Shape& shape, DType dt = DType::F32, Generator* g = nullptr);

}  // namespace ofa
