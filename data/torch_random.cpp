#include "data/torch_random.h"

#include <utility>

#include "engine/common.h"

namespace ofa::data {

void TorchGenerator::manual_seed(uint64_t seed) {
  // at::mt19937 keeps only the low 32 bits of the seed.
  state_.mt[0] = static_cast<uint32_t>(seed & 0xffffffffULL);
  for (int i = 1; i < 624; ++i)
    state_.mt[i] = 1812433253u * (state_.mt[i - 1] ^ (state_.mt[i - 1] >> 30)) + static_cast<uint32_t>(i);
  state_.index = 624;
}

uint32_t TorchGenerator::random() {
  auto& mt = state_.mt;
  if (state_.index >= 624) {
    for (int k = 0; k < 624; ++k) {
      uint32_t y = (mt[k] & 0x80000000u) | (mt[(k + 1) % 624] & 0x7fffffffu);
      mt[k] = mt[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    state_.index = 0;
  }
  uint32_t y = mt[state_.index++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

void TorchGenerator::set_state(const State& s) {
  OFA_CHECK(s.index >= 0 && s.index <= 624, "TorchGenerator::set_state: index ", s.index, " is outside [0, 624]");
  state_ = s;
}

std::vector<int64_t> randperm(int64_t n, TorchGenerator& gen) {
  OFA_CHECK(n >= 0, "randperm: n must be non-negative, got ", n);
  // Larger n takes another path (64-bit draws) in later PyTorch versions; refuse
  // rather than silently differ.
  OFA_CHECK(n < int64_t{4294967295LL / 20}, "randperm: n = ", n, " is beyond the range reproduced here (< 2^32 / 20)");
  std::vector<int64_t> r(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) r[static_cast<size_t>(i)] = i;
  for (int64_t i = 0; i + 1 < n; ++i) {
    int64_t z = static_cast<int64_t>(gen.random() % static_cast<uint64_t>(n - i));
    std::swap(r[static_cast<size_t>(i)], r[static_cast<size_t>(z + i)]);
  }
  return r;
}

}  // namespace ofa::data
