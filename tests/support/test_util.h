// Test helpers: random inputs, closeness checks, and the finite-difference
// gradient check every op goes through.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "kernels/cuda/backend.h"

namespace ofa::test {

// Normal(0, 1) (or uniform in [lo, hi)) values from a fixed seed.
Tensor randn_t(const Shape& shape, uint64_t seed, DType dt = DType::F64);
Tensor uniform_t(const Shape& shape, uint64_t seed, double lo, double hi, DType dt = DType::F64);

// Elementwise |a - b| <= atol + rtol * |b|; reports the worst element.
::testing::AssertionResult all_close(const Tensor& a, const Tensor& b, double atol, double rtol);
::testing::AssertionResult all_close(const Tensor& a, const std::vector<double>& b, double atol, double rtol);
// |a - b| <= atol + rtol * max|b| for every element: relative to the tensor's
// largest value, for results whose small elements are differences of large
// terms (momentum buffers after steps through batch norm), where an
// elementwise rtol measures cancellation, not the code. Reports the worst
// element and the scale.
::testing::AssertionResult close_in_scale(const Tensor& a, const Tensor& b, double atol, double rtol);

struct GradCheckOptions {
  double eps = 1e-6;
  double atol = 1e-7;
  double rtol = 1e-5;
  // A point is near a kink when its left and right one-sided slopes differ by
  // more than this (relative to 1 + |slope|): it is skipped, not compared.
  double kink_tol = 1e-3;
  // The check fails when more than this fraction of the points are skipped.
  double max_skipped_fraction = 0.2;
};

struct GradCheckReport {
  int64_t checked = 0;
  int64_t skipped_at_kinks = 0;
};

// Checks d/d(inputs) of L = sum(f(inputs) * R), R fixed random, against
// central differences. Inputs are float64 leaves; those with requires_grad
// are checked element by element. f may take views of them (slices, crops).
::testing::AssertionResult grad_check(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                      const std::vector<Tensor>& inputs, const GradCheckOptions& opt = {},
                                      GradCheckReport* report = nullptr);

// A fresh directory per test (under the system's temporary folder), removed
// with everything in it when the object goes.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  std::vector<std::string> entries() const;  // names directly inside, sorted

 private:
  std::string path_;
};

// Installed by the test mains (tests/support/test_main.cpp, the MPI one):
// before every test the default generator is back at its initial state
// (seed 0, nothing drawn), so a test's random weights and inputs are the same
// whether it runs alone (ctest: one test per process), in a whole-file run or
// shuffled.
class ResetDefaultGenerator : public ::testing::EmptyTestEventListener {
 public:
  void OnTestStart(const ::testing::TestInfo&) override;
};

// The message of the ofa::Error that f throws, or "<no error>".
std::string error_of(const std::function<void()>& f);
inline bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace ofa::test

namespace ofa {
// GoogleTest prints a generator state as "{seed 5, offset 10}".
inline void PrintTo(const GeneratorState& s, std::ostream* os) { *os << "{seed " << s.seed << ", offset " << s.offset << "}"; }
}  // namespace ofa

// CUDA tests run when a device is there and say loudly when they cannot.
#define OFA_REQUIRE_CUDA()                                                                  \
  do {                                                                                      \
    if (!::ofa::cuda_available())                                                           \
      GTEST_SKIP() << "SKIPPED: no CUDA device (this build "                                \
                   << (::ofa::kernels::gpu_backend() ? "sees no GPU" : "has no GPU backend") << ")";     \
  } while (0)
