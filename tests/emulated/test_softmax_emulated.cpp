// The CUDA softmax and loss kernels (kernels/cuda/softmax.cu, compiled as C++
// against the emulation, through the emulated backend) against the CPU
// kernels: softmax / log-softmax forward and backward along a contiguous or a
// strided K, cross entropy with hard labels (label smoothing, invalid labels
// recorded in the DeviceError record), with soft targets, and the MSE; float
// and double, odd sizes, outputs poisoned with NaN, and every reduction bit
// for bit the same under a small or the default grid, 1 or several OS
// threads, forward or reverse thread order.
//
// Tolerances: row sums run in double in both, but in different orders (the
// CPU serially or in simd lanes, the CUDA kernels in 32 warp lanes and a
// block tree) and the CPU's exp is its own polynomial (within ~1 ulp of
// std::exp): 1e-5 (float, one float rounding of the result) / 1e-12 (double)
// relative, as all_near measures.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/cpu/softmax.h"
#include "tests/emulated/emu_test_support.h"

namespace {

namespace cpu = ofa::kernels::cpu;
using ofa::DType;
using ofa::emu::Order;
using ofa::kernels::DeviceError;
using namespace ofa_emu_test;

// all_near, where a NaN is expected exactly where the CPU has one and an
// infinity exactly where the CPU has the same one.
template <class T>
::testing::AssertionResult near_or_both_nan(const std::vector<T>& got, const std::vector<T>& want, double tol) {
  std::vector<T> g = got, w = want;
  for (size_t i = 0; i < g.size() && i < w.size(); ++i) {
    if (std::isnan(w[i]) != std::isnan(g[i]) || std::isinf(w[i]) != std::isinf(g[i]))
      return ::testing::AssertionFailure() << "element " << i << ": want " << w[i] << ", got " << g[i];
    if (std::isnan(w[i]) || (std::isinf(w[i]) && w[i] == g[i])) g[i] = w[i] = T(0);
  }
  return all_near(g, w, tol);
}

// ---------------------------------------------------------------- softmax

template <class T>
void check_softmax(int64_t outer, int64_t K, int64_t inner, bool log) {
  const size_t n = size_t(outer * K * inner);
  const auto x = random_vec<T>(n, 11 + K, -4.0, 4.0), gy = random_vec<T>(n, 12 + K);
  std::vector<T> y_want(n), gx_want(n);
  cpu::softmax_forward(x.data(), y_want.data(), outer, K, inner, log);
  cpu::softmax_backward(y_want.data(), gy.data(), gx_want.data(), outer, K, inner, log);
  auto forward = [&] {
    std::vector<T> y(n);
    poison(y);
    be().softmax_forward(dtype_of<T>(), x.data(), y.data(), outer, K, inner, log, nullptr);
    return y;
  };
  auto backward = [&] {  // from the CPU's y, so that only the backward is compared
    std::vector<T> gx(n);
    poison(gx);
    be().softmax_backward(dtype_of<T>(), y_want.data(), gy.data(), gx.data(), outer, K, inner, log, nullptr);
    return gx;
  };
  EXPECT_TRUE(all_near(forward(), y_want, tol<T>()));
  EXPECT_TRUE(all_near(backward(), gx_want, tol<T>()));
  expect_deterministic(forward, "softmax_forward");
  expect_deterministic(backward, "softmax_backward");
}

// inner = 1: a warp per row (K 1029: 33 elements a lane; K 7: idle lanes).
TEST(SoftmaxEmulated, RowsFloat) {
  check_softmax<float>(37, 1029, 1, false);
  check_softmax<float>(9, 7, 1, true);
}
TEST(SoftmaxEmulated, RowsDouble) {
  check_softmax<double>(5, 1029, 1, true);
  check_softmax<double>(33, 7, 1, false);
}
// inner > 1: a thread per line along a strided K.
TEST(SoftmaxEmulated, StridedLines) {
  check_softmax<float>(3, 11, 17, false);
  check_softmax<double>(2, 5, 257, true);
}

// A NaN in a row makes that row NaN, an all -inf row is NaN, a +inf gives
// NaN where x is +inf too (inf - inf): whatever the CPU gives, element by element.
TEST(SoftmaxEmulated, NanAndInfinityRowsAsTheCpu) {
  const float inf = INFINITY;
  for (bool log : {false, true}) {
    const std::vector<float> x = {1.f, NAN, 2.f, 0.f, -inf, -inf, -inf, -inf, 3.f, -inf, 1.f, 2.f, inf, 0.f, 1.f, 2.f};
    std::vector<float> want(x.size()), got(x.size());
    cpu::softmax_forward(x.data(), want.data(), 4, 4, 1, log);
    poison(got);
    be().softmax_forward(DType::F32, x.data(), got.data(), 4, 4, 1, log, nullptr);
    EXPECT_TRUE(near_or_both_nan(got, want, 1e-6)) << (log ? "log_softmax" : "softmax");
  }
}

// ---------------------------------------------------------------- cross entropy

template <class T>
struct CeProblem {
  int64_t N, K;
  std::vector<T> x, soft;
  std::vector<int64_t> target;
  CeProblem(int64_t n, int64_t k, uint64_t seed) : N(n), K(k) {
    x = random_vec<T>(size_t(N * K), seed, -5.0, 5.0);
    soft = random_vec<T>(size_t(N * K), seed + 1, 0.0, 1.0);
    target.resize(N);
    for (int64_t i = 0; i < N; ++i) target[i] = (i * 7919 + 3) % K;
  }
};

// The loss scalar and lse [N] as one vector (the loss last).
template <class T>
std::vector<double> run_ce(const CeProblem<T>& p, double ls, DeviceError* err) {
  std::vector<double> lse(size_t(p.N));
  poison(lse);
  std::vector<T> loss(1);
  poison(loss);
  HostScratch ws;
  be().cross_entropy_forward(dtype_of<T>(), p.x.data(), p.target.data(), p.N, p.K, ls, lse.data(), loss.data(), err,
                             ws, nullptr);
  lse.push_back(static_cast<double>(loss[0]));
  return lse;
}

template <class T>
void check_ce(int64_t N, int64_t K, double ls) {
  CeProblem<T> p(N, K, 21 + N);
  std::vector<double> lse_want(static_cast<size_t>(N));
  const double loss_want = cpu::cross_entropy_forward(p.x.data(), p.target.data(), N, K, ls, lse_want.data());
  DeviceError err{};
  const std::vector<double> got = run_ce(p, ls, &err);
  EXPECT_EQ(err.code, 0);
  EXPECT_TRUE(all_near(std::vector<double>(got.begin(), got.end() - 1), lse_want, 1e-12));
  EXPECT_TRUE(all_near(std::vector<double>{got.back()}, std::vector<double>{static_cast<double>(static_cast<T>(loss_want))},
                       tol<T>()));
  expect_deterministic([&] { return run_ce(p, ls, &err); }, "cross_entropy_forward");

  // Backward: gx = *gloss * scale * (softmax - t), from the CPU's lse.
  const std::vector<T> gloss = {static_cast<T>(0.7)};
  const double scale = 1.0 / static_cast<double>(N);
  std::vector<T> gx_want(p.x.size()), gx(p.x.size());
  cpu::cross_entropy_backward(p.x.data(), p.target.data(), lse_want.data(), N, K, ls,
                              static_cast<double>(gloss[0]) * scale, gx_want.data());
  poison(gx);
  be().cross_entropy_backward(dtype_of<T>(), p.x.data(), p.target.data(), lse_want.data(), N, K, ls, gloss.data(),
                              scale, gx.data(), nullptr);
  EXPECT_TRUE(all_near(gx, gx_want, tol<T>()));
}

TEST(CrossEntropyEmulated, FloatManyClasses) { check_ce<float>(37, 1000, 0.0); }
TEST(CrossEntropyEmulated, FloatLabelSmoothing) { check_ce<float>(300, 10, 0.1); }
TEST(CrossEntropyEmulated, DoubleLabelSmoothing) { check_ce<double>(65, 1001, 0.2); }
TEST(CrossEntropyEmulated, DoubleOneClass) { check_ce<double>(5, 1, 0.0); }

// Labels outside [0, K): the lowest bad row is recorded (not trapped); the
// other rows' lse are still written; an error already there is kept.
TEST(CrossEntropyEmulated, InvalidLabelsRecordedInDeviceError) {
  CeProblem<float> p(600, 13, 5);
  p.target[417] = -1;
  p.target[300] = 13;
  p.target[599] = 1000;
  std::vector<double> lse_want(600);
  p.target[417] = p.target[300] = p.target[599] = 0;
  cpu::cross_entropy_forward(p.x.data(), p.target.data(), 600, 13, 0.0, lse_want.data());
  p.target[417] = -1;
  p.target[300] = 13;
  p.target[599] = 1000;
  for (const LaunchSetting& st : kDeterminismSettings) {
    EmuSettings s(st.max_blocks, st.order, st.workers);
    DeviceError err{};
    const std::vector<double> got = run_ce(p, 0.0, &err);
    EXPECT_EQ(err.code, ofa::kernels::kErrTarget);
    EXPECT_EQ(err.value, 13);
    EXPECT_EQ(err.position, 300);
    EXPECT_EQ(err.limit, 13);
    EXPECT_TRUE(all_near(std::vector<double>(got.begin(), got.end() - 1), lse_want, 1e-12));
  }
  DeviceError earlier{ofa::kernels::kErrIndexSelect, 0, 4, 2, 3};
  run_ce(p, 0.0, &earlier);
  EXPECT_EQ(earlier.code, ofa::kernels::kErrIndexSelect);
  EXPECT_EQ(earlier.value, 4);
  EXPECT_EQ(earlier.position, 2);
}

TEST(CrossEntropyEmulated, EmptyBatchWritesZeroLoss) {
  CeProblem<float> p(0, 10, 1);
  DeviceError err{};
  const std::vector<double> got = run_ce(p, 0.1, &err);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], 0.0);
  EXPECT_EQ(err.code, 0);
}

template <class T>
void check_ce_soft(int64_t N, int64_t K, bool want_gx, bool want_gsoft) {
  CeProblem<T> p(N, K, 31 + N);
  std::vector<double> lse_want(static_cast<size_t>(N));
  const double loss_want = cpu::cross_entropy_soft_forward(p.x.data(), p.soft.data(), N, K, lse_want.data());
  auto forward = [&] {
    std::vector<double> lse(static_cast<size_t>(N));
    poison(lse);
    std::vector<T> loss(1);
    poison(loss);
    HostScratch ws;
    be().cross_entropy_soft_forward(dtype_of<T>(), p.x.data(), p.soft.data(), N, K, lse.data(), loss.data(), ws,
                                    nullptr);
    lse.push_back(static_cast<double>(loss[0]));
    return lse;
  };
  const std::vector<double> got = forward();
  EXPECT_TRUE(all_near(std::vector<double>(got.begin(), got.end() - 1), lse_want, 1e-12));
  EXPECT_TRUE(all_near(std::vector<double>{got.back()},
                       std::vector<double>{static_cast<double>(static_cast<T>(loss_want))}, tol<T>()));
  expect_deterministic(forward, "cross_entropy_soft_forward");

  const std::vector<T> gloss = {static_cast<T>(-1.5)};
  const double scale = 1.0 / static_cast<double>(N);
  std::vector<T> gx_want(p.x.size()), gs_want(p.x.size()), gx(p.x.size()), gs(p.x.size());
  cpu::cross_entropy_soft_backward(p.x.data(), p.soft.data(), lse_want.data(), N, K,
                                   static_cast<double>(gloss[0]) * scale, gx_want.data(), gs_want.data());
  poison(gx);
  poison(gs);
  be().cross_entropy_soft_backward(dtype_of<T>(), p.x.data(), p.soft.data(), lse_want.data(), N, K, gloss.data(),
                                   scale, want_gx ? gx.data() : nullptr, want_gsoft ? gs.data() : nullptr, nullptr);
  if (want_gx) EXPECT_TRUE(all_near(gx, gx_want, tol<T>()));
  else for (T v : gx) EXPECT_TRUE(std::isnan(v));
  if (want_gsoft) EXPECT_TRUE(all_near(gs, gs_want, tol<T>()));
  else for (T v : gs) EXPECT_TRUE(std::isnan(v));
}

TEST(CrossEntropySoftEmulated, FloatBothGradients) { check_ce_soft<float>(41, 1000, true, true); }
TEST(CrossEntropySoftEmulated, DoubleOneGradientEach) {
  check_ce_soft<double>(19, 33, true, false);
  check_ce_soft<double>(19, 33, false, true);
}

// ---------------------------------------------------------------- mse

template <class T>
void check_mse(int64_t n) {
  const auto a = random_vec<T>(size_t(n), 41 + n), b = random_vec<T>(size_t(n), 42 + n);
  const double want = cpu::mse_forward(a.data(), b.data(), n);
  auto forward = [&] {
    std::vector<T> loss(1);
    poison(loss);
    HostScratch ws;
    be().mse_forward(dtype_of<T>(), a.data(), b.data(), n, loss.data(), ws, nullptr);
    return loss;
  };
  EXPECT_TRUE(all_near(forward(), std::vector<T>{static_cast<T>(want)}, tol<T>()));
  expect_deterministic(forward, "mse_forward");

  const std::vector<T> gloss = {static_cast<T>(0.3)};
  const double scale = n > 0 ? 2.0 / static_cast<double>(n) : 0.0;
  std::vector<T> ga_want(a.size()), gb_want(a.size());
  cpu::mse_backward(a.data(), b.data(), n, static_cast<double>(gloss[0]) * scale, ga_want.data(), gb_want.data());
  for (int mask = 1; mask <= 3; ++mask) {
    std::vector<T> ga(a.size()), gb(a.size());
    poison(ga);
    poison(gb);
    be().mse_backward(dtype_of<T>(), a.data(), b.data(), n, gloss.data(), scale, mask & 1 ? ga.data() : nullptr,
                      mask & 2 ? gb.data() : nullptr, nullptr);
    // (T)(gloss * scale) * (a - b) in T, as the CPU: exact.
    if (mask & 1) EXPECT_TRUE(same_bits(ga, ga_want));
    else for (T v : ga) EXPECT_TRUE(std::isnan(v));
    if (mask & 2) EXPECT_TRUE(same_bits(gb, gb_want));
    else for (T v : gb) EXPECT_TRUE(std::isnan(v));
  }
}

// 10001 elements: three 4096-element chunks, the last short.
TEST(MseEmulated, Float) {
  check_mse<float>(10001);
  check_mse<float>(5);
}
TEST(MseEmulated, Double) { check_mse<double>(10001); }
TEST(MseEmulated, EmptyWritesZero) {
  std::vector<float> loss = {NAN};
  HostScratch ws;
  be().mse_forward(DType::F32, nullptr, nullptr, 0, loss.data(), ws, nullptr);
  EXPECT_EQ(loss[0], 0.f);
}

TEST(SoftmaxEmulated, ClearErrors) {
  std::vector<int64_t> buf(16);
  const std::string m = emu_error_of(
      [&] { be().softmax_forward(DType::I64, buf.data(), buf.data(), 2, 2, 1, false, nullptr); });
  EXPECT_NE(m.find("softmax_forward (CUDA): dtype int64 is not supported"), std::string::npos) << m;
  HostScratch ws;
  const std::string m2 = emu_error_of([&] {
    be().cross_entropy_forward(DType::F32, buf.data(), buf.data(), -2, 3, 0.0, nullptr, buf.data(), nullptr, ws,
                               nullptr);
  });
  EXPECT_NE(m2.find("cross_entropy_forward (CUDA): bad sizes (-2 rows, 3 classes)"), std::string::npos) << m2;
}

}  // namespace
