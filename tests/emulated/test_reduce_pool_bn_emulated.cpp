// The CUDA reduction, global average pooling and batch-norm kernels
// (kernels/cuda/reduce.cu, pool.cu, batch_norm.cu, compiled as C++ against
// the emulation, through the emulated backend) against the CPU kernels:
// float and double, odd sizes, strided views, outputs poisoned with NaN, and
// the reductions bit for bit the same under a small or the default grid, 1
// or several OS threads, forward or reverse thread order.
//
// Tolerances: the CPU and CUDA kernels both sum in double but in different
// orders (the CPU pairs four rows at a time, the CUDA kernels stride lanes and
// add parts), so sums agree to a few double ulps of the partial sums and the
// float results to within one float rounding: 1e-5 (float) / 1e-12 (double)
// relative, as all_near measures. Elementwise parts with the CPU's own
// arithmetic are compared exactly.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "kernels/common/bn_math.h"
#include "kernels/common/strided_loop.h"
#include "kernels/cpu/batch_norm.h"
#include "kernels/cpu/pool.h"
#include "kernels/cpu/reduce.h"
#include "tests/emulated/emu_test_support.h"

namespace {

namespace cpu = ofa::kernels::cpu;
using ofa::DType;
using ofa::kernels::Act;
using ofa::emu::Order;
using ofa::kernels::StridedArgs;
using ofa::kernels::StridedLayout;
using namespace ofa_emu_test;

// ---------------------------------------------------------------- reduce_sum

// An input view (shape, strides into a buffer of `span` elements) with some
// dims reduced; the output is dense row-major over the kept dims.
struct RedCase {
  std::vector<int64_t> shape, strides;
  std::vector<bool> reduced;
  int64_t span;
};

template <class T>
struct Reduction {
  std::vector<int64_t> ks, kst, rs, rst;
  StridedArgs<2> keep;
  StridedArgs<1> red;
  int64_t n_out = 1;

  explicit Reduction(const RedCase& c) {
    for (size_t d = 0; d < c.shape.size(); ++d) {
      if (c.reduced[d]) {
        rs.push_back(c.shape[d]);
        rst.push_back(c.strides[d]);
      } else {
        ks.push_back(c.shape[d]);
        kst.push_back(c.strides[d]);
        n_out *= c.shape[d];
      }
    }
    std::vector<int64_t> ost(ks.size());
    int64_t m = 1;
    for (size_t d = ks.size(); d-- > 0;) {
      ost[d] = m;
      m *= ks[d];
    }
    StridedLayout<2> lk;
    lk.shape = ks;
    lk.strides = {kst, ost};
    StridedLayout<1> lr;
    lr.shape = rs;
    lr.strides = {rst};
    EXPECT_TRUE(ofa::kernels::make_strided_args(lk, &keep));
    EXPECT_TRUE(ofa::kernels::make_strided_args(lr, &red));
  }

  std::vector<T> cpu_out(const std::vector<T>& in, double scale) const {
    std::vector<T> out(static_cast<size_t>(n_out));
    cpu::reduce_sum(in.data(), ks, kst, rs, rst, out.data(), scale);
    return out;
  }
  std::vector<T> cuda_out(const std::vector<T>& in, double scale, size_t* scratch_calls = nullptr) const {
    std::vector<T> out(static_cast<size_t>(n_out));
    poison(out);
    HostScratch ws;
    be().reduce_sum(dtype_of<T>(), in.data(), keep, red, out.data(), scale, ws, nullptr);
    if (scratch_calls) *scratch_calls = ws.calls();
    return out;
  }
};

template <class T>
void check_reduce(const RedCase& c, double scale, bool expect_parts = false) {
  Reduction<T> r(c);
  const std::vector<T> in = random_vec<T>(static_cast<size_t>(c.span), 77 + c.span);
  const std::vector<T> want = r.cpu_out(in, scale);
  size_t calls = 0;
  {
    EmuSettings s(4096, Order::Forward);
    EXPECT_TRUE(all_near(r.cuda_out(in, scale, &calls), want, tol<T>()));
  }
  EXPECT_EQ(calls, expect_parts ? 1u : 0u) << "partial sums in scratch expected: " << expect_parts;
  expect_deterministic([&] { return r.cuda_out(in, scale); }, "reduce_sum");
}

// NHWC [3, 5, 7, 33] summed over N, H, W: the column kernel (channels contiguous).
RedCase nhwc_over_nhw() { return {{3, 5, 7, 33}, {5 * 7 * 33, 7 * 33, 33, 1}, {true, true, true, false}, 3 * 5 * 7 * 33}; }

TEST(ReduceSumEmulated, ChannelsOfNhwcColumnsFloat) { check_reduce<float>(nhwc_over_nhw(), 1.0); }
TEST(ReduceSumEmulated, ChannelsOfNhwcColumnsDouble) { check_reduce<double>(nhwc_over_nhw(), 0.25); }

// The same tensor summed over C (row kernel, a contiguous reduced run) and
// over H only (keeps N, W, C; reduced stride 7 * 33).
TEST(ReduceSumEmulated, RowsAndMiddleDims) {
  RedCase over_c = nhwc_over_nhw();
  over_c.reduced = {false, false, false, true};
  check_reduce<float>(over_c, 1.0);
  check_reduce<double>(over_c, -3.0);
  RedCase over_h = nhwc_over_nhw();
  over_h.reduced = {false, true, false, false};
  check_reduce<float>(over_h, 0.5);
}

// A full sum of 50001 elements (one output, many parts) and a tall column
// sum [20001, 9] -> [9]: partial sums in scratch, added in part order.
TEST(ReduceSumEmulated, FullSumUsesOrderedParts) {
  check_reduce<float>({{50001}, {1}, {true}, 50001}, 1.0 / 50001, true);
  check_reduce<double>({{50001}, {1}, {true}, 50001}, 1.0, true);
}
TEST(ReduceSumEmulated, TallColumnsUseOrderedParts) {
  check_reduce<float>({{20001, 9}, {9, 1}, {true, false}, 20001 * 9}, 1.0, true);
  check_reduce<double>({{20001, 9}, {9, 1}, {true, false}, 20001 * 9}, 1.0, true);
}

// A permuted, stepped view: shape [7, 6, 5] with strides [1, 14, 84] into a
// buffer of 7 * 2 * 6 * 5 (every other column), reduced over the first and
// last dims.
TEST(ReduceSumEmulated, PermutedSteppedView) {
  check_reduce<float>({{7, 6, 5}, {1, 14, 84}, {true, false, true}, 420}, 1.0);
  check_reduce<double>({{7, 6, 5}, {1, 14, 84}, {false, true, false}, 420}, 2.0);
}

// An empty reduced dim gives zeros (every output written); no kept dims
// gives a copy times scale; no outputs writes nothing.
TEST(ReduceSumEmulated, EmptyAndTrivialShapes) {
  {
    Reduction<float> r({{4, 0, 3}, {0, 3, 1}, {false, true, false}, 0});
    std::vector<float> none;
    const std::vector<float> got = r.cuda_out(none, 1.0);
    ASSERT_EQ(got.size(), 12u);
    for (float v : got) EXPECT_EQ(v, 0.f);
  }
  check_reduce<double>({{5, 3}, {3, 1}, {false, false}, 15}, 3.0);
  {
    Reduction<float> r({{0, 3}, {3, 1}, {false, true}, 0});
    std::vector<float> none;
    EXPECT_TRUE(r.cuda_out(none, 1.0).empty());
  }
  const std::vector<double> in = {1.0, std::nan(""), 2.0};
  Reduction<double> r({{3}, {1}, {true}, 3});
  EXPECT_TRUE(std::isnan(r.cuda_out(in, 1.0)[0]));  // NaN propagates as on the CPU
}

TEST(ReduceSumEmulated, ClearErrors) {
  Reduction<float> r({{3}, {1}, {true}, 3});
  std::vector<int64_t> buf(3);
  HostScratch ws;
  const std::string m =
      emu_error_of([&] { be().reduce_sum(DType::I64, buf.data(), r.keep, r.red, buf.data(), 1.0, ws, nullptr); });
  EXPECT_NE(m.find("reduce_sum (CUDA): dtype int64 is not supported"), std::string::npos) << m;
}

// ---------------------------------------------------------------- global average pooling

template <class T>
void check_pool(int64_t N, int64_t HW, int64_t C) {
  const auto x = random_vec<T>(size_t(N * HW * C), 3 + C);
  const auto gy = random_vec<T>(size_t(N * C), 4 + C);
  std::vector<T> want(size_t(N * C)), gx_want(x.size());
  cpu::global_avg_pool_forward(x.data(), N, HW, C, want.data());
  cpu::global_avg_pool_backward(gy.data(), N, HW, C, gx_want.data());
  auto forward = [&] {
    std::vector<T> out(want.size());
    poison(out);
    be().global_avg_pool_forward(dtype_of<T>(), x.data(), N, HW, C, out.data(), nullptr);
    return out;
  };
  auto backward = [&] {
    std::vector<T> gx(x.size());
    poison(gx);
    be().global_avg_pool_backward(dtype_of<T>(), gy.data(), N, HW, C, gx.data(), nullptr);
    return gx;
  };
  EXPECT_TRUE(all_near(forward(), want, tol<T>()));
  EXPECT_TRUE(same_bits(backward(), gx_want));  // one division, as the CPU: exact
  expect_deterministic(forward, "global_avg_pool_forward");
  expect_deterministic(backward, "global_avg_pool_backward");
}

TEST(GlobalAvgPoolEmulated, Float7x7) { check_pool<float>(3, 49, 37); }
TEST(GlobalAvgPoolEmulated, DoubleManyChannelTiles) { check_pool<double>(2, 3, 1029); }
TEST(GlobalAvgPoolEmulated, FloatOnePixelOneChannel) { check_pool<float>(5, 1, 1); }

// ---------------------------------------------------------------- batch norm

// x [M, C] with a channel offset (|mean| large against the spread: the
// shifted statistics must not cancel), weights and biases read with a stride
// from larger vectors (leading slices).
template <class T>
struct BnProblem {
  int64_t M, C;
  std::vector<T> x, gy, wbuf, bbuf;
  std::vector<double> mean, var, invstd;
  BnProblem(int64_t m, int64_t c, uint64_t seed) : M(m), C(c) {
    x = random_vec<T>(size_t(M * C), seed, -1.0, 1.0);
    for (int64_t i = 0; i < M * C; ++i) x[i] += static_cast<T>(10.0 + (i % C));
    gy = random_vec<T>(size_t(M * C), seed + 1);
    wbuf = random_vec<T>(size_t(3 * C), seed + 2, 0.5, 1.5);
    bbuf = random_vec<T>(size_t(2 * C), seed + 3);
    mean.resize(C);
    var.resize(C);
    invstd.resize(C);
    cpu::bn_batch_stats(x.data(), M, C, mean.data(), var.data());
    for (int64_t c2 = 0; c2 < C; ++c2) invstd[c2] = ofa::kernels::bn_invstd(var[c2], 1e-5);
  }
};

template <class T>
void check_bn_stats(int64_t M, int64_t C) {
  BnProblem<T> p(M, C, 100 + M);
  auto run = [&] {
    std::vector<double> mv(size_t(2 * C));
    poison(mv);
    HostScratch ws;
    be().bn_batch_stats(dtype_of<T>(), p.x.data(), M, C, mv.data(), mv.data() + C, ws, nullptr);
    EXPECT_EQ(ws.calls(), 1u);
    return mv;
  };
  const std::vector<double> got = run();
  EXPECT_TRUE(all_near(std::vector<double>(got.begin(), got.begin() + C), p.mean, 1e-12));
  // The variance (~1/3) from sums of squares of spreads: double rounding of
  // differently ordered sums, relative to the variance.
  EXPECT_TRUE(all_near(std::vector<double>(got.begin() + C, got.end()), p.var, 1e-12));
  expect_deterministic(run, "bn_batch_stats");
}

// 1037 rows: 5 parts of 256 rows (the last short); 3000 rows x 70 channels:
// 12 parts and three channel tiles.
TEST(BatchNormEmulated, BatchStatsFloat) { check_bn_stats<float>(1037, 37); }
TEST(BatchNormEmulated, BatchStatsDouble) { check_bn_stats<double>(3000, 70); }
TEST(BatchNormEmulated, BatchStatsFewRows) { check_bn_stats<float>(2, 5); }

TEST(BatchNormEmulated, FinishAndEvalStatsWithStridedRunningBuffers) {
  const int64_t C = 13, M = 777;
  BnProblem<float> p(M, C, 7);
  // Running buffers: every other element of a larger vector (strides 2 and 3).
  auto rm = random_vec<float>(size_t(2 * C), 8), rv = random_vec<float>(size_t(3 * C), 9, 0.5, 2.0);
  auto rm_want = rm, rv_want = rv;
  cpu::bn_update_running(rm_want.data(), 2, rv_want.data(), 3, p.mean.data(), p.var.data(), C, M, 0.1);
  std::vector<double> invstd(C);
  poison(invstd);
  be().bn_finish_stats(DType::F32, p.mean.data(), p.var.data(), C, M, 1e-5, rm.data(), 2, rv.data(), 3, 0.1,
                       invstd.data(), nullptr);
  EXPECT_TRUE(all_near(invstd, p.invstd, 1e-15));
  EXPECT_TRUE(all_near(rm, rm_want, 1e-7));  // same formula; FMA contraction may differ by one rounding
  EXPECT_TRUE(all_near(rv, rv_want, 1e-7));
  // Without running statistics only invstd is written.
  poison(invstd);
  be().bn_finish_stats(DType::F32, p.mean.data(), p.var.data(), C, M, 1e-5, nullptr, 0, nullptr, 0, 0.1,
                       invstd.data(), nullptr);
  EXPECT_TRUE(all_near(invstd, p.invstd, 1e-15));
  // Evaluation statistics from the strided running buffers.
  std::vector<double> mean(C), inv(C), mean_want(C), inv_want(C);
  for (int64_t c = 0; c < C; ++c) {
    mean_want[c] = rm[c * 2];
    inv_want[c] = ofa::kernels::bn_invstd(rv[c * 3], 1e-3);
  }
  poison(mean);
  poison(inv);
  be().bn_eval_stats(DType::F32, rm.data(), 2, rv.data(), 3, C, 1e-3, mean.data(), inv.data(), nullptr);
  EXPECT_TRUE(same_bits(mean, mean_want));
  EXPECT_TRUE(same_bits(inv, inv_want));
}

template <class T>
void check_bn_forward(int64_t M, int64_t C, bool affine, Act act = Act::Identity) {
  BnProblem<T> p(M, C, 200 + M);
  const T* w = affine ? p.wbuf.data() : nullptr;
  const T* b = affine ? p.bbuf.data() : nullptr;
  std::vector<T> want(p.x.size()), got(p.x.size());
  cpu::bn_forward(p.x.data(), M, C, p.mean.data(), p.invstd.data(), w, 3, b, 2, want.data(), act);
  poison(got);
  EmuSettings s(3, Order::Reverse);
  be().bn_forward(dtype_of<T>(), p.x.data(), M, C, p.mean.data(), p.invstd.data(), w, 3, b, 2, got.data(), act,
                  nullptr);
  // Same arithmetic in T; only an FMA contraction may round differently.
  EXPECT_TRUE(all_near(got, want, std::is_same<T, float>::value ? 1e-6 : 1e-14));
}

TEST(BatchNormEmulated, ForwardFloatAffineStrided) { check_bn_forward<float>(301, 37, true); }
TEST(BatchNormEmulated, ForwardDoubleNoAffine) { check_bn_forward<double>(99, 5, false); }
// The fused activations (BN + act in one pass).
TEST(BatchNormEmulated, ForwardFusedHSwishFloat) { check_bn_forward<float>(301, 37, true, Act::HSwish); }
TEST(BatchNormEmulated, ForwardFusedReluDouble) { check_bn_forward<double>(99, 5, false, Act::Relu); }
TEST(BatchNormEmulated, ForwardFusedRelu6Float) { check_bn_forward<float>(133, 19, true, Act::Relu6); }

// gx, gw, gb against the CPU kernel; in training, in evaluation, and with
// only some of them asked for (the others null, never touched).
// act: the fused activation; the CPU twin recomputes z with the same bias.
template <class T>
void check_bn_backward(int64_t M, int64_t C, bool training, bool want_gx, bool want_gw, bool want_gb,
                       Act act = Act::Identity) {
  BnProblem<T> p(M, C, 300 + M);
  std::vector<T> gx_w(p.x.size()), gw_w(C), gb_w(C);
  cpu::bn_backward(p.x.data(), p.gy.data(), M, C, p.mean.data(), p.invstd.data(), p.wbuf.data(), 3, training,
                   want_gx ? gx_w.data() : nullptr, want_gw ? gw_w.data() : nullptr, want_gb ? gb_w.data() : nullptr, act,
                   p.bbuf.data(), 2);
  auto run = [&] {
    std::vector<T> gx(p.x.size()), gw(C), gb(C);
    poison(gx);
    poison(gw);
    poison(gb);
    HostScratch ws;
    be().bn_backward(dtype_of<T>(), p.x.data(), p.gy.data(), M, C, p.mean.data(), p.invstd.data(), p.wbuf.data(), 3,
                     training, want_gx ? gx.data() : nullptr, want_gw ? gw.data() : nullptr,
                     want_gb ? gb.data() : nullptr, act, p.bbuf.data(), 2, ws, nullptr);
    std::vector<T> all = gx;
    all.insert(all.end(), gw.begin(), gw.end());
    all.insert(all.end(), gb.begin(), gb.end());
    return all;
  };
  const std::vector<T> got = run();
  const std::vector<T> gx(got.begin(), got.begin() + M * C), gw(got.begin() + M * C, got.begin() + M * C + C),
      gb(got.begin() + M * C + C, got.end());
  auto untouched = [](const std::vector<T>& v) {
    for (T e : v)
      if (!std::isnan(e)) return false;
    return true;
  };
  // gx in training subtracts nearly equal terms: a float rounding of the
  // per-channel coefficients shows at ~1e-5 of |gy|.
  if (want_gx) EXPECT_TRUE(all_near(gx, gx_w, std::is_same<T, float>::value ? 2e-5 : 1e-12));
  else EXPECT_TRUE(untouched(gx));
  if (want_gw) EXPECT_TRUE(all_near(gw, gw_w, tol<T>()));
  else EXPECT_TRUE(untouched(gw));
  if (want_gb) EXPECT_TRUE(all_near(gb, gb_w, tol<T>()));
  else EXPECT_TRUE(untouched(gb));
  expect_deterministic(run, "bn_backward");
}

TEST(BatchNormEmulated, BackwardTrainingFloat) { check_bn_backward<float>(1031, 37, true, true, true, true); }
TEST(BatchNormEmulated, BackwardTrainingDouble) { check_bn_backward<double>(2600, 33, true, true, true, true); }
TEST(BatchNormEmulated, BackwardEvalInputOnly) { check_bn_backward<float>(257, 9, false, true, false, false); }
TEST(BatchNormEmulated, BackwardWeightAndBiasOnly) { check_bn_backward<double>(700, 11, true, false, true, true); }
TEST(BatchNormEmulated, BackwardTrainingFusedHSwishFloat) {
  check_bn_backward<float>(1031, 37, true, true, true, true, Act::HSwish);
}
TEST(BatchNormEmulated, BackwardTrainingFusedRelu6Double) {
  check_bn_backward<double>(2600, 33, true, true, true, true, Act::Relu6);
}
TEST(BatchNormEmulated, BackwardEvalFusedReluInputOnly) {
  check_bn_backward<float>(257, 9, false, true, false, false, Act::Relu);
}
TEST(BatchNormEmulated, BackwardFusedHSigmoidWeightAndBiasOnly) {
  check_bn_backward<double>(700, 11, true, false, true, true, Act::HSigmoid);
}

TEST(BatchNormEmulated, ClearErrors) {
  HostScratch ws;
  std::vector<double> buf(16);
  const std::string m = emu_error_of(
      [&] { be().bn_batch_stats(DType::F32, buf.data(), -1, 3, buf.data(), buf.data(), ws, nullptr); });
  EXPECT_NE(m.find("bn_batch_stats (CUDA): bad sizes M -1, C 3"), std::string::npos) << m;
  const std::string m2 = emu_error_of([&] {
    be().bn_forward(DType::I64, buf.data(), 1, 1, buf.data(), buf.data(), nullptr, 0, nullptr, 0, buf.data(),
                    Act::Identity, nullptr);
  });
  EXPECT_NE(m2.find("bn_forward (CUDA): dtype int64 is not supported"), std::string::npos) << m2;
}

}  // namespace
