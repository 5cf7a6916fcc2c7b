// PyTorch's CPU random generator and torch.randperm, bit for bit (PyTorch
// 1.13): torch.Generator().manual_seed(s) is an MT19937 seeded with the low 32
// bits of s (init_genrand), random() is one raw 32-bit draw, and randperm on
// the CPU is a forward Fisher-Yates that swaps r[i] with r[i + random() % (n - i)].
// The OFA reference picks its hold-out validation set and its BN-calibration
// subset with randperm, so the same seed must give the same indexes here.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

namespace ofa::data {

class TorchGenerator {
 public:
  TorchGenerator() { manual_seed(67280421310721ULL); }  // torch's default_rng_seed_val
  explicit TorchGenerator(uint64_t seed) { manual_seed(seed); }
  void manual_seed(uint64_t seed);
  uint32_t random();  // CPUGeneratorImpl::random(): one MT19937 output
  // CPUGeneratorImpl::random64(): two outputs, the first in the high word
  // (what torch.randint uses for ranges of 2^32 or more).
  uint64_t random64() {
    uint64_t hi = random();
    return (hi << 32) | random();
  }

  // The full state, for checkpoints.
  struct State {
    std::array<uint32_t, 624> mt{};
    int32_t index = 624;
    bool operator==(const State& o) const { return mt == o.mt && index == o.index; }
  };
  State state() const { return state_; }
  void set_state(const State& s);

 private:
  State state_;
};

// torch.randperm(n, generator=gen) for n < 2^32 / 20 (PyTorch's small-n path,
// the only one 1.13 has). n == 0 gives an empty permutation and draws nothing.
std::vector<int64_t> randperm(int64_t n, TorchGenerator& gen);

}  // namespace ofa::data
