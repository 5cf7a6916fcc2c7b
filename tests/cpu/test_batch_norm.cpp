// batch_norm: training and evaluation forward against a naive loop, the
// running-statistics update, leading slices of larger parameter vectors,
// gradients (training and evaluation), thread-count independence, errors.
#include <omp.h>

#include <cmath>

#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::test;

namespace {

struct NaiveBn {
  std::vector<double> y, mean, var;  // y row-major NCHW; var biased
};

// Reference over logical (row-major) values. w/b empty = affine off; rm/rv
// non-empty with training=false = evaluation.
NaiveBn naive_bn(const Tensor& x, const std::vector<double>& w, const std::vector<double>& b,
                 const std::vector<double>& rm, const std::vector<double>& rv, bool training, double eps) {
  const std::vector<double> xv = x.contiguous().to_vector<double>();
  const int64_t N = x.size(0), C = x.size(1), HW = x.numel() / (N * C);
  NaiveBn r;
  r.mean.assign(C, 0.0);
  r.var.assign(C, 0.0);
  for (int64_t c = 0; c < C; ++c) {
    long double s = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t p = 0; p < HW; ++p) s += xv[(n * C + c) * HW + p];
    const long double m = s / (N * HW);
    long double v = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t p = 0; p < HW; ++p) v += (xv[(n * C + c) * HW + p] - m) * (xv[(n * C + c) * HW + p] - m);
    r.mean[c] = static_cast<double>(m);
    r.var[c] = static_cast<double>(v / (N * HW));
  }
  r.y.resize(xv.size());
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c) {
      const double m = training ? r.mean[c] : rm[c];
      const double v = training ? r.var[c] : rv[c];
      for (int64_t p = 0; p < HW; ++p) {
        const int64_t i = (n * C + c) * HW + p;
        double y = (xv[i] - m) / std::sqrt(v + eps);
        if (!w.empty()) y = y * w[c] + b[c];
        r.y[i] = y;
      }
    }
  return r;
}

struct BnCase {
  Shape shape;
  DType dt;
};

class BatchNormSizes : public ::testing::TestWithParam<BnCase> {};

TEST_P(BatchNormSizes, TrainingForwardMatchesNaive) {
  const BnCase p = GetParam();
  const int64_t C = p.shape[1];
  Tensor x = add(mul(randn_t(p.shape, 1, p.dt), 2.0), 3.0);  // mean away from 0: exercises the centring
  Tensor w = uniform_t({C}, 2, 0.5, 1.5, p.dt), b = randn_t({C}, 3, p.dt);
  Tensor rm = zeros({C}, p.dt), rv = ones({C}, p.dt);
  Tensor y = batch_norm(x, w, b, rm, rv, true, 0.1, 1e-5);
  EXPECT_EQ(y.shape(), p.shape);
  if (p.shape.size() == 4) EXPECT_TRUE(y.is_contiguous(MemoryFormat::ChannelsLast));
  NaiveBn r = naive_bn(x, w.to_vector<double>(), b.to_vector<double>(), {}, {}, true, 1e-5);
  const double tol = p.dt == DType::F32 ? 2e-5 : 1e-11;
  EXPECT_TRUE(all_close(y, r.y, tol, tol));
}

TEST_P(BatchNormSizes, RunningStatsFollowPyTorchMomentumUpdate) {
  const BnCase p = GetParam();
  const int64_t C = p.shape[1];
  int64_t n = 1;
  for (size_t d = 0; d < p.shape.size(); ++d)
    if (d != 1) n *= p.shape[d];
  Tensor x = randn_t(p.shape, 4, p.dt);
  Tensor rm = randn_t({C}, 5, p.dt), rv = uniform_t({C}, 6, 0.5, 2.0, p.dt);
  const std::vector<double> rm0 = rm.to_vector<double>(), rv0 = rv.to_vector<double>();
  batch_norm(x, Tensor(), Tensor(), rm, rv, true, 0.1, 1e-5);
  NaiveBn r = naive_bn(x, {}, {}, {}, {}, true, 1e-5);
  std::vector<double> want_m(C), want_v(C);
  for (int64_t c = 0; c < C; ++c) {
    want_m[c] = 0.9 * rm0[c] + 0.1 * r.mean[c];
    want_v[c] = 0.9 * rv0[c] + 0.1 * r.var[c] * n / (n - 1);
  }
  const double tol = p.dt == DType::F32 ? 1e-6 : 1e-13;
  EXPECT_TRUE(all_close(rm, want_m, tol, tol));
  EXPECT_TRUE(all_close(rv, want_v, tol, tol));
}

TEST_P(BatchNormSizes, EvalForwardUsesRunningStatsAndLeavesThem) {
  const BnCase p = GetParam();
  const int64_t C = p.shape[1];
  Tensor x = randn_t(p.shape, 7, p.dt);
  Tensor w = uniform_t({C}, 8, 0.5, 1.5, p.dt), b = randn_t({C}, 9, p.dt);
  Tensor rm = randn_t({C}, 10, p.dt), rv = uniform_t({C}, 11, 0.5, 2.0, p.dt);
  const std::vector<double> rm0 = rm.to_vector<double>(), rv0 = rv.to_vector<double>();
  Tensor y = batch_norm(x, w, b, rm, rv, false, 0.1, 1e-3);
  NaiveBn r = naive_bn(x, w.to_vector<double>(), b.to_vector<double>(), rm0, rv0, false, 1e-3);
  const double tol = p.dt == DType::F32 ? 1e-5 : 1e-12;
  EXPECT_TRUE(all_close(y, r.y, tol, tol));
  EXPECT_TRUE(all_close(rm, rm0, 0, 0));
  EXPECT_TRUE(all_close(rv, rv0, 0, 0));
}

INSTANTIATE_TEST_SUITE_P(Shapes, BatchNormSizes,
                         ::testing::Values(BnCase{{3, 13, 7, 7}, DType::F32}, BnCase{{3, 13, 7, 7}, DType::F64},
                                           BnCase{{1, 5, 4, 3}, DType::F32}, BnCase{{1, 5, 4, 3}, DType::F64},
                                           BnCase{{2, 3, 1, 1}, DType::F64}, BnCase{{7, 13}, DType::F32},
                                           BnCase{{7, 13}, DType::F64}),
                         [](const auto& i) {
                           std::string n;
                           for (int64_t s : i.param.shape) n += (n.empty() ? "" : "x") + std::to_string(s);
                           return n + "_" + dtype_name(i.param.dt);
                         });

TEST(BatchNorm, ChannelsLastAndRowMajorInputsAgree) {
  Tensor x = randn_t({3, 13, 7, 7}, 12);
  Tensor w = randn_t({13}, 13), b = randn_t({13}, 14);
  Tensor y1 = batch_norm(x, w, b, Tensor(), Tensor(), true, 0.1, 1e-5);
  Tensor y2 = batch_norm(x.contiguous(MemoryFormat::ChannelsLast), w, b, Tensor(), Tensor(), true, 0.1, 1e-5);
  EXPECT_TRUE(all_close(y1, y2, 0, 0));
}

TEST(BatchNorm, LeadingSlicesOfLargerVectorsUpdateOnlyTheSlice) {
  // The OFA dynamic BN: the first C entries of stored [20] vectors.
  const int64_t C = 13, F = 20;
  Tensor x = randn_t({3, C, 5, 5}, 15);
  Tensor w_full = uniform_t({F}, 16, 0.5, 1.5), b_full = randn_t({F}, 17);
  Tensor rm_full = randn_t({F}, 18), rv_full = uniform_t({F}, 19, 0.5, 2.0);
  const std::vector<double> rm0 = rm_full.to_vector<double>(), rv0 = rv_full.to_vector<double>();
  Tensor y = batch_norm(x, w_full.narrow(0, 0, C), b_full.narrow(0, 0, C), rm_full.narrow(0, 0, C),
                        rv_full.narrow(0, 0, C), true, 0.1, 1e-5);
  std::vector<double> wv = w_full.to_vector<double>(), bv = b_full.to_vector<double>();
  NaiveBn r = naive_bn(x, {wv.begin(), wv.begin() + C}, {bv.begin(), bv.begin() + C}, {}, {}, true, 1e-5);
  EXPECT_TRUE(all_close(y, r.y, 1e-11, 1e-11));
  std::vector<double> rm1 = rm_full.to_vector<double>(), rv1 = rv_full.to_vector<double>();
  const int64_t n = 3 * 25;
  for (int64_t c = 0; c < F; ++c) {
    if (c < C) {
      EXPECT_NEAR(rm1[c], 0.9 * rm0[c] + 0.1 * r.mean[c], 1e-13) << c;
      EXPECT_NEAR(rv1[c], 0.9 * rv0[c] + 0.1 * r.var[c] * n / (n - 1), 1e-13) << c;
    } else {
      EXPECT_EQ(rm1[c], rm0[c]) << "entry " << c << " beyond the slice changed";
      EXPECT_EQ(rv1[c], rv0[c]) << "entry " << c << " beyond the slice changed";
    }
  }
}

TEST(BatchNorm, StridedRunningStatsAreReadAndWrittenThroughTheirStride) {
  // Every other entry of a [2C] vector: a non-unit stride.
  const int64_t C = 5;
  Tensor x = randn_t({4, C, 3, 3}, 20);
  Tensor rm_full = randn_t({2 * C}, 21), rv_full = uniform_t({2 * C}, 22, 0.5, 2.0);
  const std::vector<double> rm0 = rm_full.to_vector<double>(), rv0 = rv_full.to_vector<double>();
  Tensor rm = rm_full.slice(0, 0, 2 * C, 2), rv = rv_full.slice(0, 0, 2 * C, 2);
  Tensor ye = batch_norm(x, Tensor(), Tensor(), rm, rv, false, 0.1, 1e-5);
  std::vector<double> rme, rve;
  for (int64_t c = 0; c < C; ++c) rme.push_back(rm0[2 * c]), rve.push_back(rv0[2 * c]);
  EXPECT_TRUE(all_close(ye, naive_bn(x, {}, {}, rme, rve, false, 1e-5).y, 1e-12, 1e-12));
  batch_norm(x, Tensor(), Tensor(), rm, rv, true, 0.1, 1e-5);
  std::vector<double> rm1 = rm_full.to_vector<double>();
  NaiveBn r = naive_bn(x, {}, {}, {}, {}, true, 1e-5);
  for (int64_t c = 0; c < C; ++c) {
    EXPECT_NEAR(rm1[2 * c], 0.9 * rm0[2 * c] + 0.1 * r.mean[c], 1e-13);
    EXPECT_EQ(rm1[2 * c + 1], rm0[2 * c + 1]);
  }
}

TEST(BatchNorm, AffineOffForwardMatchesNaive) {
  Tensor x = randn_t({3, 13, 7, 7}, 23);
  Tensor y = batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5);
  EXPECT_TRUE(all_close(y, naive_bn(x, {}, {}, {}, {}, true, 1e-5).y, 1e-11, 1e-11));
}

TEST(BatchNorm, GradCheckTrainingXWeightBias) {
  Tensor x = randn_t({3, 5, 3, 3}, 24).set_requires_grad(true);
  Tensor w = uniform_t({5}, 25, 0.5, 1.5).set_requires_grad(true), b = randn_t({5}, 26).set_requires_grad(true);
  Tensor rm = zeros({5}, DType::F64), rv = ones({5}, DType::F64);
  EXPECT_TRUE(grad_check(
      [&](const std::vector<Tensor>& in) { return batch_norm(in[0], in[1], in[2], rm, rv, true, 0.1, 1e-5); },
      {x, w, b}));
}

TEST(BatchNorm, GradCheckTrainingOneImageSeveralPixels) {
  Tensor x = randn_t({1, 3, 2, 3}, 27).set_requires_grad(true);
  Tensor w = randn_t({3}, 28).set_requires_grad(true), b = randn_t({3}, 29).set_requires_grad(true);
  EXPECT_TRUE(grad_check(
      [&](const std::vector<Tensor>& in) {
        return batch_norm(in[0], in[1], in[2], Tensor(), Tensor(), true, 0.1, 1e-5);
      },
      {x, w, b}));
}

TEST(BatchNorm, GradCheckEvalXWeightBias) {
  Tensor x = randn_t({3, 5, 3, 3}, 30).set_requires_grad(true);
  Tensor w = randn_t({5}, 31).set_requires_grad(true), b = randn_t({5}, 32).set_requires_grad(true);
  Tensor rm = randn_t({5}, 33), rv = uniform_t({5}, 34, 0.5, 2.0);
  EXPECT_TRUE(grad_check(
      [&](const std::vector<Tensor>& in) { return batch_norm(in[0], in[1], in[2], rm, rv, false, 0.1, 1e-5); },
      {x, w, b}));
}

TEST(BatchNorm, GradCheckTwoDimensionalInput) {
  Tensor x = randn_t({4, 5}, 35).set_requires_grad(true);
  Tensor w = randn_t({5}, 36).set_requires_grad(true), b = randn_t({5}, 37).set_requires_grad(true);
  EXPECT_TRUE(grad_check(
      [&](const std::vector<Tensor>& in) {
        return batch_norm(in[0], in[1], in[2], Tensor(), Tensor(), true, 0.1, 1e-5);
      },
      {x, w, b}));
  Tensor rm = randn_t({5}, 38), rv = uniform_t({5}, 39, 0.5, 2.0);
  EXPECT_TRUE(grad_check(
      [&](const std::vector<Tensor>& in) { return batch_norm(in[0], in[1], in[2], rm, rv, false, 0.1, 1e-5); },
      {x, w, b}));
}

TEST(BatchNorm, GradCheckAffineOff) {
  Tensor x = randn_t({3, 4, 2, 2}, 40).set_requires_grad(true);
  EXPECT_TRUE(grad_check(
      [&](const std::vector<Tensor>& in) {
        return batch_norm(in[0], Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5);
      },
      {x}));
}

TEST(BatchNorm, GradCheckThroughLeadingSlicesOfLargerParameters) {
  Tensor x = randn_t({3, 4, 2, 2}, 41).set_requires_grad(true);
  Tensor w_full = randn_t({7}, 42).set_requires_grad(true), b_full = randn_t({7}, 43).set_requires_grad(true);
  EXPECT_TRUE(grad_check(
      [&](const std::vector<Tensor>& in) {
        return batch_norm(in[0], in[1].narrow(0, 0, 4), in[2].narrow(0, 0, 4), Tensor(), Tensor(), true, 0.1, 1e-5);
      },
      {x, w_full, b_full}));
  // Entries beyond the slice get exactly zero.
  std::vector<double> gw = w_full.grad().to_vector<double>();
  for (int c = 4; c < 7; ++c) EXPECT_EQ(gw[c], 0.0);
}

TEST(BatchNorm, GradientsAccumulateOverTwoBackwards) {
  Tensor x = randn_t({3, 5, 3, 3}, 44).set_requires_grad(true);
  Tensor w = randn_t({5}, 45).set_requires_grad(true), b = randn_t({5}, 46).set_requires_grad(true);
  Tensor R = randn_t({3, 5, 3, 3}, 47);
  auto loss = [&] { return sum(mul(batch_norm(x, w, b, Tensor(), Tensor(), true, 0.1, 1e-5), R)); };
  loss().backward();
  const std::vector<double> gx1 = x.grad().to_vector<double>(), gw1 = w.grad().to_vector<double>(),
                            gb1 = b.grad().to_vector<double>();
  loss().backward();
  auto twice = [](std::vector<double> v) {
    for (double& e : v) e *= 2;
    return v;
  };
  EXPECT_TRUE(all_close(x.grad(), twice(gx1), 1e-12, 1e-12));
  EXPECT_TRUE(all_close(w.grad(), twice(gw1), 1e-12, 1e-12));
  EXPECT_TRUE(all_close(b.grad(), twice(gb1), 1e-12, 1e-12));
}

TEST(BatchNorm, BackwardFloat32MatchesFloat64) {
  Tensor x64 = randn_t({3, 13, 7, 7}, 48).set_requires_grad(true);
  Tensor w64 = randn_t({13}, 49).set_requires_grad(true), b64 = randn_t({13}, 50).set_requires_grad(true);
  Tensor x32 = x64.detach().to(DType::F32).set_requires_grad(true);
  Tensor w32 = w64.detach().to(DType::F32).set_requires_grad(true);
  Tensor b32 = b64.detach().to(DType::F32).set_requires_grad(true);
  Tensor R = randn_t({3, 13, 7, 7}, 51);
  sum(mul(batch_norm(x64, w64, b64, Tensor(), Tensor(), true, 0.1, 1e-5), R)).backward();
  sum(mul(batch_norm(x32, w32, b32, Tensor(), Tensor(), true, 0.1, 1e-5), R.to(DType::F32))).backward();
  EXPECT_TRUE(all_close(x32.grad(), x64.grad(), 1e-5, 1e-4));
  EXPECT_TRUE(all_close(w32.grad(), w64.grad(), 1e-4, 1e-5));
  EXPECT_TRUE(all_close(b32.grad(), b64.grad(), 1e-4, 1e-5));
}

TEST(BatchNorm, RunningStatsNeverRequireGradAndGetNoGraph) {
  Tensor x = randn_t({3, 5, 2, 2}, 52).set_requires_grad(true);
  Tensor rm = zeros({5}, DType::F64), rv = ones({5}, DType::F64);
  Tensor y = batch_norm(x, Tensor(), Tensor(), rm, rv, true, 0.1, 1e-5);
  EXPECT_TRUE(y.requires_grad());
  EXPECT_FALSE(rm.requires_grad());
  EXPECT_FALSE(rv.requires_grad());
  Tensor bad = zeros({5}, DType::F64).set_requires_grad(true);
  EXPECT_THROW(batch_norm(x, Tensor(), Tensor(), bad, rv, true, 0.1, 1e-5), Error);
}

TEST(BatchNorm, ResultDoesNotDependOnThreadCount) {
  // Large enough for the parallel paths (M * C > 32768).
  Tensor x = add(mul(randn_t({4, 24, 24, 24}, 53, DType::F32), 3.0), 5.0).set_requires_grad(true);
  Tensor w = randn_t({24}, 54, DType::F32).set_requires_grad(true), b = randn_t({24}, 55, DType::F32);
  Tensor R = randn_t({4, 24, 24, 24}, 56, DType::F32);
  auto run = [&](int threads, std::vector<float>* y, std::vector<float>* rm, std::vector<float>* gx,
                 std::vector<float>* gw) {
    const int prev = omp_get_max_threads();
    omp_set_num_threads(threads);
    x.set_grad(Tensor());
    w.set_grad(Tensor());
    Tensor rmt = zeros({24}), rvt = ones({24});
    Tensor out = batch_norm(x, w, b, rmt, rvt, true, 0.1, 1e-5);
    sum(mul(out, R)).backward();
    omp_set_num_threads(prev);
    *y = out.to_vector<float>();
    *rm = rvt.to_vector<float>();
    *gx = x.grad().to_vector<float>();
    *gw = w.grad().to_vector<float>();
  };
  std::vector<float> y1, r1, gx1, gw1, y4, r4, gx4, gw4;
  run(1, &y1, &r1, &gx1, &gw1);
  run(4, &y4, &r4, &gx4, &gw4);
  EXPECT_EQ(y1, y4);
  EXPECT_EQ(r1, r4);
  EXPECT_EQ(gx1, gx4);
  EXPECT_EQ(gw1, gw4);
}

// ---------------------------------------------------------------- fused BN + activation

Tensor unfused_act(Act a, const Tensor& z) {
  switch (a) {
    case Act::Relu: return relu(z);
    case Act::Relu6: return relu6(z);
    case Act::HSwish: return hswish(z);
    case Act::HSigmoid: return hsigmoid(z);
    case Act::Identity: return z;
  }
  return z;
}

struct FusedCase {
  Act act;
  DType dt;
  bool training;
  Shape shape;
};

class BatchNormActFused : public ::testing::TestWithParam<FusedCase> {};

// batch_norm_act is the two ops one after the other, bit for bit: output,
// running statistics and every gradient (the fused backward recomputes z from
// x with the same per-channel coefficients the forward used).
TEST_P(BatchNormActFused, EqualsBatchNormThenActivationBitForBit) {
  const FusedCase fc = GetParam();
  const int64_t C = fc.shape[1];
  // A spread of z over about [-8, 8]: every kink (0, 6, -3, 3) is crossed.
  Tensor x0 = add(mul(randn_t(fc.shape, 60, fc.dt), 2.0), 1.0);
  Tensor w0 = uniform_t({C + 2}, 61, 1.0, 3.0, fc.dt), b0 = mul(randn_t({C + 2}, 62, fc.dt), 2.0);
  Tensor R = randn_t(fc.shape, 63, fc.dt);
  struct Out {
    std::vector<double> y, rm, rv, gx, gw, gb;
  };
  auto run = [&](bool fused) {
    Tensor x = x0.detach().clone().set_requires_grad(true);
    Tensor w = w0.detach().clone().set_requires_grad(true), b = b0.detach().clone().set_requires_grad(true);
    Tensor rm = mul(randn_t({C + 2}, 64, fc.dt), 0.5), rv = uniform_t({C + 2}, 65, 0.5, 2.0, fc.dt);
    Tensor wn = w.narrow(0, 0, C), bn = b.narrow(0, 0, C), rmn = rm.narrow(0, 0, C), rvn = rv.narrow(0, 0, C);
    Tensor y = fused ? batch_norm_act(x, wn, bn, rmn, rvn, fc.training, 0.1, 1e-5, fc.act)
                     : unfused_act(fc.act, batch_norm(x, wn, bn, rmn, rvn, fc.training, 0.1, 1e-5));
    sum(mul(y, R)).backward();
    return Out{y.contiguous().to_vector<double>(), rm.to_vector<double>(), rv.to_vector<double>(),
               x.grad().contiguous().to_vector<double>(), w.grad().to_vector<double>(), b.grad().to_vector<double>()};
  };
  const Out f = run(true), u = run(false);
  EXPECT_EQ(f.y, u.y);
  EXPECT_EQ(f.rm, u.rm);
  EXPECT_EQ(f.rv, u.rv);
  EXPECT_EQ(f.gx, u.gx);
  EXPECT_EQ(f.gw, u.gw);
  EXPECT_EQ(f.gb, u.gb);
  // The case is not trivial: the activation clips some values (at the low
  // end, and at 6 for relu6) and passes others.
  int64_t low = 0, high = 0;
  for (double y : f.y) {
    low += y == 0.0;
    high += y == 6.0;
  }
  if (fc.act != Act::Identity) {
    EXPECT_GT(low, 0);
    EXPECT_LT(low + high, static_cast<int64_t>(f.y.size()));
  }
  if (fc.act == Act::Relu6) EXPECT_GT(high, 0);
}

INSTANTIATE_TEST_SUITE_P(
    Acts, BatchNormActFused,
    ::testing::Values(FusedCase{Act::Relu, DType::F32, true, {3, 13, 7, 7}},
                      FusedCase{Act::Relu6, DType::F64, true, {4, 9, 5, 3}},
                      FusedCase{Act::HSwish, DType::F32, true, {5, 24, 9, 9}},
                      FusedCase{Act::HSwish, DType::F64, false, {3, 13, 7, 7}},
                      FusedCase{Act::HSigmoid, DType::F32, false, {2, 7, 11, 5}},
                      FusedCase{Act::Relu6, DType::F32, true, {37, 21}},
                      FusedCase{Act::Identity, DType::F32, true, {3, 13, 7, 7}},
                      // Large enough for the parallel loops (M * C > 32768).
                      FusedCase{Act::HSwish, DType::F32, true, {4, 40, 16, 16}}),
    [](const ::testing::TestParamInfo<FusedCase>& i) {
      return std::string(kernels::act_name(i.param.act)) + (i.param.dt == DType::F32 ? "_f32" : "_f64") +
             (i.param.training ? "_train" : "_eval") + "_" + std::to_string(i.index);
    });

TEST(BatchNormAct, GradCheckTrainingHSwishThroughSlices) {
  Tensor x = randn_t({3, 4, 3, 3}, 66).set_requires_grad(true);
  Tensor w = uniform_t({6}, 67, 1.0, 3.0).set_requires_grad(true), b = randn_t({6}, 68).set_requires_grad(true);
  EXPECT_TRUE(grad_check(
      [&](const std::vector<Tensor>& in) {
        return batch_norm_act(in[0], in[1].narrow(0, 0, 4), in[2].narrow(0, 0, 4), Tensor(), Tensor(), true, 0.1,
                              1e-5, Act::HSwish);
      },
      {x, w, b}));
}

TEST(BatchNormAct, GradCheckEvalRelu6AffineOff) {
  Tensor x = mul(randn_t({3, 5, 2, 3}, 69), 4.0).set_requires_grad(true);
  Tensor rm = randn_t({5}, 70), rv = uniform_t({5}, 71, 0.5, 2.0);
  EXPECT_TRUE(grad_check(
      [&](const std::vector<Tensor>& in) {
        return batch_norm_act(in[0], Tensor(), Tensor(), rm, rv, false, 0.1, 1e-5, Act::Relu6);
      },
      {x}));
}

TEST(BatchNormAct, OneNodeInTheGraphNamedAfterTheActivation) {
  Tensor x = randn_t({3, 4, 2, 2}, 72).set_requires_grad(true);
  Tensor y = batch_norm_act(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5, Act::HSwish);
  ASSERT_TRUE(y.grad_fn());
  EXPECT_EQ(y.grad_fn()->name(), "BatchNormActBackward(hswish)");
  EXPECT_EQ(batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5).grad_fn()->name(),
            "BatchNormBackward");
}

TEST(BatchNorm, WrongWeightShapeNamesBothShapes) {
  try {
    batch_norm(randn_t({3, 13, 7, 7}, 57), randn_t({12}, 58), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("weight"), std::string::npos) << m;
    EXPECT_NE(m.find("[12]"), std::string::npos) << m;
    EXPECT_NE(m.find("[3, 13, 7, 7]"), std::string::npos) << m;
  }
}

TEST(BatchNorm, BadInputsAreRefused) {
  auto msg = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(msg([] { batch_norm(randn_t({3, 4, 5}, 1), Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5); })
                .find("[3, 4, 5]"),
            std::string::npos);
  EXPECT_NE(msg([] { batch_norm(randn_t({1, 4, 1, 1}, 1), Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5); })
                .find("more than one value per channel"),
            std::string::npos);
  EXPECT_NE(msg([] { batch_norm(randn_t({2, 4}, 1), Tensor(), Tensor(), Tensor(), Tensor(), false, 0.1, 1e-5); })
                .find("running_mean"),
            std::string::npos);
  EXPECT_NE(msg([] {
              batch_norm(randn_t({2, 4}, 1), randn_t({4}, 2, DType::F32), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5);
            }).find("float32"),
            std::string::npos);
}

}  // namespace
