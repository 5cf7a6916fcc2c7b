// Shared by the emulated tests: the kernels of kernels/cuda/*.cu as compiled
// against the CPU emulation (ofa::kernels::emulated_backend(), from
// ofa_kernels), host buffers standing for device memory, poisoning, and the
// comparison with the CPU twins. Prints, once per run, what the emulation
// cannot run.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cuda/backend.h"
#include "kernels/cuda/emu/emu.h"

namespace ofa_emu_test {

class EmulationLimits : public ::testing::Environment {
 public:
  void SetUp() override {
    std::printf("[emulated] CUDA kernels run on the CPU emulation (kernels/cuda/emu). Not emulated:\n");
    for (const std::string& s : ::ofa::emu::unsupported_features()) std::printf("[emulated]   - %s\n", s.c_str());
    std::fflush(stdout);
  }
};

inline ::testing::Environment* const g_limits = ::testing::AddGlobalTestEnvironment(new EmulationLimits);

inline ::ofa::kernels::CudaBackend& be() { return *::ofa::kernels::emulated_backend(); }

// "what" is in the message of the ofa::Error that f throws.
template <class F>
std::string emu_error_of(F f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "<no error>";
}

// Device scratch of the emulated backend: host memory, poisoned (0xFF bytes:
// NaN as float and double) so that a kernel reading scratch it never wrote
// shows. Each get() is a fresh buffer, valid until the scratch dies.
class HostScratch : public ::ofa::kernels::Scratch {
 public:
  void* get(size_t bytes) override {
    bufs_.emplace_back((bytes + 7) / 8 + 1);
    std::memset(bufs_.back().data(), 0xFF, bufs_.back().size() * 8);
    return bufs_.back().data();
  }
  size_t calls() const { return bufs_.size(); }

 private:
  std::vector<std::vector<uint64_t>> bufs_;
};

// The launch settings a test varies, restored when it ends: a small grid
// (every grid-stride loop goes round), reverse thread order within blocks,
// the number of OS threads running blocks.
struct EmuSettings {
  EmuSettings(int64_t max_blocks, ::ofa::emu::Order order, int workers = 0) {
    be().set_max_blocks(max_blocks);
    ::ofa::emu::set_thread_order(order);
    ::ofa::emu::set_worker_threads(workers);
  }
  ~EmuSettings() {
    be().set_max_blocks(0);
    ::ofa::emu::set_thread_order(::ofa::emu::Order::Forward);
    ::ofa::emu::set_worker_threads(0);
  }
};

template <class T>
std::vector<T> random_vec(size_t n, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(u(rng));
  return v;
}

template <class T>
void poison(std::vector<T>& v) {
  if constexpr (std::numeric_limits<T>::has_quiet_NaN) {
    for (auto& x : v) x = std::numeric_limits<T>::quiet_NaN();
  } else {
    for (auto& x : v) x = std::numeric_limits<T>::min();
  }
}

// Every element written and close: |a - b| <= tol (1 + |b|).
template <class T>
::testing::AssertionResult all_near(const std::vector<T>& got, const std::vector<T>& want, double tol) {
  if (got.size() != want.size())
    return ::testing::AssertionFailure() << "sizes differ: " << got.size() << " vs " << want.size();
  size_t bad = 0;
  std::string first;
  for (size_t i = 0; i < got.size(); ++i) {
    const double g = static_cast<double>(got[i]), w = static_cast<double>(want[i]);
    if (!(std::abs(g - w) <= tol * (1.0 + std::abs(w)))) {
      if (!bad++) first = "element " + std::to_string(i) + ": got " + std::to_string(g) + ", want " + std::to_string(w);
    }
  }
  if (bad) return ::testing::AssertionFailure() << bad << " of " << got.size() << " elements differ; first " << first;
  return ::testing::AssertionSuccess();
}

// The tolerance of a CUDA kernel against its CPU twin where both sum in
// double or in float but in other orders: 1e-5 (float: a few ulps of sums of
// up to a few dozen products) / 1e-12 (double), as all_near measures.
template <class T>
double tol() {
  return std::is_same<T, float>::value ? 1e-5 : 1e-12;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

// The launch settings every determinism check runs under: a tiny grid in
// reverse thread order on 2 OS threads, the default grid, one block, and 7
// blocks on 4 OS threads.
struct LaunchSetting {
  int64_t max_blocks;
  ::ofa::emu::Order order;
  int workers;
};
inline constexpr LaunchSetting kDeterminismSettings[] = {
    {3, ::ofa::emu::Order::Reverse, 2}, {4096, ::ofa::emu::Order::Forward, 0}, {1, ::ofa::emu::Order::Forward, 1},
    {7, ::ofa::emu::Order::Forward, 4}};

// f() (returning a vector) under every setting; each result must be bitwise the first.
template <class F>
void expect_deterministic(F f, const char* what) {
  const LaunchSetting& s0 = kDeterminismSettings[0];
  auto first = [&] {
    EmuSettings s(s0.max_blocks, s0.order, s0.workers);
    return f();
  }();
  for (const LaunchSetting& k : kDeterminismSettings) {
    if (&k == &s0) continue;
    EmuSettings s(k.max_blocks, k.order, k.workers);
    EXPECT_TRUE(same_bits(f(), first)) << what << ": differs with max_blocks " << k.max_blocks << ", "
                                       << k.workers << " worker threads";
  }
}

template <class T>
constexpr ::ofa::DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return ::ofa::DType::F32;
  else if constexpr (std::is_same_v<T, double>) return ::ofa::DType::F64;
  else return ::ofa::DType::I64;
}

}  // namespace ofa_emu_test
