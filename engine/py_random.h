// Python's `random` module, bit for bit: the Mersenne Twister MT19937 seeded
// as random.seed(int) seeds it (init_by_array over the integer's 32-bit
// words), random(), getrandbits(), and the draws built on _randbelow:
// randrange, randint, choice, shuffle. The OFA reference draws subnets and
// batch resolutions with this module, so the same seed must give the same
// draws here.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "engine/common.h"

namespace ofa {

class PyRandom {
 public:
  PyRandom() { seed(0); }
  explicit PyRandom(uint64_t s) { seed(s); }
  void seed(uint64_t s);                        // random.seed(s) for a non-negative int
  void seed_words(const std::vector<uint32_t>& key);  // random.seed(n) with n's 32-bit words, little end first
  uint32_t genrand_uint32();
  double random();                               // [0, 1), 53 bits
  uint64_t getrandbits(int k);                   // 1 <= k <= 64
  int64_t randbelow(int64_t n);                  // Random._randbelow_with_getrandbits
  int64_t randrange(int64_t start, int64_t stop);  // random.randrange(start, stop)
  int64_t randint(int64_t a, int64_t b) { return randrange(a, b + 1); }
  double uniform(double a, double b) { return a + (b - a) * random(); }
  template <class T>
  const T& choice(const std::vector<T>& seq) {
    OFA_CHECK(!seq.empty(), "PyRandom::choice: cannot choose from an empty sequence");
    return seq[static_cast<size_t>(randbelow(static_cast<int64_t>(seq.size())))];
  }
  template <class T>
  void shuffle(std::vector<T>& x) {
    for (int64_t i = static_cast<int64_t>(x.size()) - 1; i > 0; --i) std::swap(x[i], x[randbelow(i + 1)]);
  }

  // The whole generator state, for checkpoints.
  struct State {
    std::array<uint32_t, 624> mt;
    int index;
  };
  State state() const { return {mt_, index_}; }
  void set_state(const State& s);

 private:
  void init_genrand(uint32_t s);
  std::array<uint32_t, 624> mt_{};
  int index_ = 625;
};

}  // namespace ofa
