#include "engine/py_random.h"

namespace ofa {

namespace {
constexpr int kN = 624, kM = 397;
constexpr uint32_t kMatrixA = 0x9908b0dfu, kUpper = 0x80000000u, kLower = 0x7fffffffu;
}  // namespace

void PyRandom::init_genrand(uint32_t s) {
  mt_[0] = s;
  for (int i = 1; i < kN; ++i) mt_[i] = 1812433253u * (mt_[i - 1] ^ (mt_[i - 1] >> 30)) + static_cast<uint32_t>(i);
  index_ = kN;
}

void PyRandom::seed_words(const std::vector<uint32_t>& key_in) {
  // CPython seeds with the absolute value's words; zero is the one-word key [0].
  std::vector<uint32_t> key = key_in.empty() ? std::vector<uint32_t>{0} : key_in;
  init_genrand(19650218u);
  int i = 1, j = 0;
  const int klen = static_cast<int>(key.size());
  for (int k = kN > klen ? kN : klen; k; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1664525u)) + key[j] + static_cast<uint32_t>(j);
    ++i;
    ++j;
    if (i >= kN) {
      mt_[0] = mt_[kN - 1];
      i = 1;
    }
    if (j >= klen) j = 0;
  }
  for (int k = kN - 1; k; --k) {
    mt_[i] = (mt_[i] ^ ((mt_[i - 1] ^ (mt_[i - 1] >> 30)) * 1566083941u)) - static_cast<uint32_t>(i);
    ++i;
    if (i >= kN) {
      mt_[0] = mt_[kN - 1];
      i = 1;
    }
  }
  mt_[0] = 0x80000000u;
  index_ = kN;
}

void PyRandom::seed(uint64_t s) {
  std::vector<uint32_t> key;
  while (s) {
    key.push_back(static_cast<uint32_t>(s));
    s >>= 32;
  }
  seed_words(key);
}

uint32_t PyRandom::genrand_uint32() {
  if (index_ >= kN) {
    int kk = 0;
    for (; kk < kN - kM; ++kk) {
      uint32_t y = (mt_[kk] & kUpper) | (mt_[kk + 1] & kLower);
      mt_[kk] = mt_[kk + kM] ^ (y >> 1) ^ ((y & 1u) ? kMatrixA : 0u);
    }
    for (; kk < kN - 1; ++kk) {
      uint32_t y = (mt_[kk] & kUpper) | (mt_[kk + 1] & kLower);
      mt_[kk] = mt_[kk + (kM - kN)] ^ (y >> 1) ^ ((y & 1u) ? kMatrixA : 0u);
    }
    uint32_t y = (mt_[kN - 1] & kUpper) | (mt_[0] & kLower);
    mt_[kN - 1] = mt_[kM - 1] ^ (y >> 1) ^ ((y & 1u) ? kMatrixA : 0u);
    index_ = 0;
  }
  uint32_t y = mt_[index_++];
  y ^= y >> 11;
  y ^= (y << 7) & 0x9d2c5680u;
  y ^= (y << 15) & 0xefc60000u;
  y ^= y >> 18;
  return y;
}

double PyRandom::random() {
  const uint32_t a = genrand_uint32() >> 5, b = genrand_uint32() >> 6;
  return (a * 67108864.0 + b) * (1.0 / 9007199254740992.0);
}

uint64_t PyRandom::getrandbits(int k) {
  OFA_CHECK(k >= 1 && k <= 64, "PyRandom::getrandbits: k = ", k, " outside 1..64");
  if (k <= 32) return genrand_uint32() >> (32 - k);
  // CPython fills 32-bit words from the least significant end; the last
  // word keeps its top bits.
  const uint64_t lo = genrand_uint32();
  const uint64_t hi = genrand_uint32() >> (64 - k);
  return lo | (hi << 32);
}

int64_t PyRandom::randbelow(int64_t n) {
  OFA_CHECK(n > 0, "PyRandom::randbelow: n = ", n, " must be positive");
  int k = 0;
  for (uint64_t v = static_cast<uint64_t>(n); v; v >>= 1) ++k;  // n.bit_length()
  uint64_t r = getrandbits(k);
  while (r >= static_cast<uint64_t>(n)) r = getrandbits(k);
  return static_cast<int64_t>(r);
}

int64_t PyRandom::randrange(int64_t start, int64_t stop) {
  OFA_CHECK(stop > start, "PyRandom::randrange: empty range [", start, ", ", stop, ")");
  return start + randbelow(stop - start);
}

void PyRandom::set_state(const State& s) {
  OFA_CHECK(s.index >= 0 && s.index <= kN, "PyRandom::set_state: index ", s.index, " outside 0..", kN);
  mt_ = s.mt;
  index_ = s.index;
}

}  // namespace ofa
