// global_avg_pool2d (forward against a naive mean, gradients, layouts) and
// dropout (identity when off, mask statistics, seeding, backward mask).
#include <omp.h>

#include <cmath>

#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::test;

namespace {

std::vector<double> naive_gap(const Tensor& x) {
  const std::vector<double> xv = x.contiguous().to_vector<double>();
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  std::vector<double> out(N * C, 0.0);
  for (int64_t i = 0; i < N * C; ++i) {
    long double s = 0;
    for (int64_t p = 0; p < HW; ++p) s += xv[i * HW + p];
    out[i] = static_cast<double>(s / HW);
  }
  return out;
}

class GlobalAvgPoolDtype : public ::testing::TestWithParam<DType> {};

TEST_P(GlobalAvgPoolDtype, ForwardMatchesNaiveOddSizes) {
  const DType dt = GetParam();
  for (const Shape& s : {Shape{3, 13, 7, 7}, Shape{1, 130, 5, 3}, Shape{2, 3, 1, 1}}) {
    Tensor x = randn_t(s, 1, dt);
    Tensor y = global_avg_pool2d(x);
    EXPECT_EQ(y.shape(), (Shape{s[0], s[1], 1, 1}));
    EXPECT_TRUE(y.is_contiguous(MemoryFormat::ChannelsLast));
    const double tol = dt == DType::F32 ? 1e-6 : 1e-14;
    EXPECT_TRUE(all_close(y, naive_gap(x), tol, tol)) << shape_str(s);
  }
}

INSTANTIATE_TEST_SUITE_P(Dtypes, GlobalAvgPoolDtype, ::testing::Values(DType::F32, DType::F64),
                         [](const ::testing::TestParamInfo<DType>& i) { return std::string(dtype_name(i.param)); });

TEST(GlobalAvgPool, ChannelsLastInputGivesTheSameResult) {
  Tensor x = randn_t({3, 13, 7, 7}, 2);
  EXPECT_TRUE(all_close(global_avg_pool2d(x.contiguous(MemoryFormat::ChannelsLast)), global_avg_pool2d(x), 0, 0));
}

TEST(GlobalAvgPool, NonContiguousInput) {
  // A centre crop of a larger image: strided, neither layout.
  Tensor big = randn_t({3, 13, 9, 9}, 3);
  Tensor x = big.narrow(2, 1, 7).narrow(3, 1, 7);
  EXPECT_TRUE(all_close(global_avg_pool2d(x), naive_gap(x), 1e-14, 1e-14));
}

TEST(GlobalAvgPool, GradCheck) {
  Tensor x = randn_t({3, 5, 3, 3}, 4).set_requires_grad(true);
  EXPECT_TRUE(grad_check([](const std::vector<Tensor>& in) { return global_avg_pool2d(in[0]); }, {x}));
}

TEST(GlobalAvgPool, GradCheckChannelsLastInputAndManyChannels) {
  Tensor x = randn_t({1, 70, 2, 3}, 5).set_requires_grad(true);
  EXPECT_TRUE(grad_check(
      [](const std::vector<Tensor>& in) { return global_avg_pool2d(in[0].contiguous(MemoryFormat::ChannelsLast)); },
      {x}));
}

TEST(GlobalAvgPool, GradientsAccumulateOverTwoBackwards) {
  Tensor x = randn_t({3, 5, 3, 3}, 6).set_requires_grad(true);
  Tensor R = randn_t({3, 5, 1, 1}, 7);
  sum(mul(global_avg_pool2d(x), R)).backward();
  std::vector<double> g1 = x.grad().to_vector<double>();
  sum(mul(global_avg_pool2d(x), R)).backward();
  for (double& v : g1) v *= 2;
  EXPECT_TRUE(all_close(x.grad(), g1, 1e-15, 1e-14));
}

TEST(GlobalAvgPool, ResultDoesNotDependOnThreadCount) {
  Tensor x = randn_t({2, 100, 20, 20}, 8, DType::F32);
  const int prev = omp_get_max_threads();
  omp_set_num_threads(1);
  std::vector<float> a = global_avg_pool2d(x).to_vector<float>();
  omp_set_num_threads(4);
  std::vector<float> b = global_avg_pool2d(x).to_vector<float>();
  omp_set_num_threads(prev);
  EXPECT_EQ(a, b);
}

TEST(GlobalAvgPool, RefusesNon4DInput) {
  try {
    global_avg_pool2d(randn_t({3, 13, 7}, 9));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[3, 13, 7]"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------- dropout

TEST(Dropout, EvalAndZeroProbabilityReturnTheInputItself) {
  Tensor x = randn_t({3, 13}, 10).set_requires_grad(true);
  EXPECT_EQ(dropout(x, 0.5, false).impl(), x.impl());
  EXPECT_EQ(dropout(x, 0.0, true).impl(), x.impl());
}

TEST(Dropout, TrainingKeepsAboutOneMinusPAndScales) {
  const double p = 0.3;
  Tensor x = uniform_t({100, 100}, 11, 1.0, 2.0);  // never 0, so dropped means dropped
  Generator g(42);
  Tensor y = dropout(x, p, true, &g);
  std::vector<double> xv = x.to_vector<double>(), yv = y.to_vector<double>();
  int64_t kept = 0;
  for (size_t i = 0; i < xv.size(); ++i) {
    if (yv[i] == 0.0) continue;
    ++kept;
    EXPECT_NEAR(yv[i], xv[i] / (1 - p), 1e-12) << i;
  }
  const double frac = static_cast<double>(kept) / xv.size();
  EXPECT_NEAR(frac, 1 - p, 0.02);  // 10000 draws: sd ~ 0.0046
}

TEST(Dropout, SameSeedSameMaskAndTheGeneratorAdvances) {
  Tensor x = uniform_t({7, 13}, 12, 1.0, 2.0, DType::F32);
  Generator g1(7), g2(7);
  std::vector<float> a = dropout(x, 0.5, true, &g1).to_vector<float>();
  std::vector<float> b = dropout(x, 0.5, true, &g2).to_vector<float>();
  EXPECT_EQ(a, b);
  std::vector<float> c = dropout(x, 0.5, true, &g1).to_vector<float>();
  EXPECT_NE(a, c) << "a second draw from the same generator repeated the mask";
  Generator g3(8);
  EXPECT_NE(a, dropout(x, 0.5, true, &g3).to_vector<float>());
}

TEST(Dropout, DefaultGeneratorFollowsManualSeed) {
  Tensor x = uniform_t({9, 11}, 13, 1.0, 2.0);
  manual_seed(123);
  std::vector<double> a = dropout(x, 0.4, true).to_vector<double>();
  manual_seed(123);
  std::vector<double> b = dropout(x, 0.4, true).to_vector<double>();
  EXPECT_EQ(a, b);
}

TEST(Dropout, MaskDoesNotDependOnMemoryLayout) {
  Tensor x = uniform_t({3, 13, 7, 7}, 14, 1.0, 2.0);
  Generator g1(9), g2(9);
  Tensor a = dropout(x, 0.5, true, &g1);
  Tensor b = dropout(x.contiguous(MemoryFormat::ChannelsLast), 0.5, true, &g2);
  EXPECT_TRUE(b.is_contiguous(MemoryFormat::ChannelsLast));
  EXPECT_TRUE(all_close(a, b, 0, 0));
}

TEST(Dropout, BackwardUsesTheForwardMask) {
  const double p = 0.25;
  Tensor x = uniform_t({5, 13}, 15, 1.0, 2.0).set_requires_grad(true);
  Generator g(3);
  Tensor y = dropout(x, p, true, &g);
  sum(y).backward();
  std::vector<double> yv = y.to_vector<double>(), gv = x.grad().to_vector<double>();
  for (size_t i = 0; i < yv.size(); ++i) EXPECT_EQ(gv[i], yv[i] == 0.0 ? 0.0 : 1.0 / (1 - p)) << i;
}

TEST(Dropout, GradCheckWithAFixedSeed) {
  Tensor x = randn_t({3, 13}, 16).set_requires_grad(true);
  EXPECT_TRUE(grad_check(
      [](const std::vector<Tensor>& in) {
        Generator g(5);  // the same mask on every evaluation
        return dropout(in[0], 0.3, true, &g);
      },
      {x}));
}

TEST(Dropout, GradientsAccumulateOverTwoBackwards) {
  Tensor x = randn_t({4, 6}, 17).set_requires_grad(true);
  Generator g(11);
  Tensor y = dropout(x, 0.5, true, &g);
  Tensor R = randn_t({4, 6}, 18);
  sum(mul(y, R)).backward(Tensor(), true);
  std::vector<double> g1 = x.grad().to_vector<double>();
  sum(mul(y, R)).backward();
  for (double& v : g1) v *= 2;
  EXPECT_TRUE(all_close(x.grad(), g1, 0, 0));
}

TEST(Dropout, ProbabilityOneDropsEverything) {
  Tensor x = randn_t({3, 5}, 19);
  Generator g(1);
  EXPECT_TRUE(all_close(dropout(x, 1.0, true, &g), std::vector<double>(15, 0.0), 0, 0));
}

TEST(Dropout, BadProbabilityIsRefused) {
  try {
    dropout(randn_t({3}, 20), 1.5, true);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("1.5"), std::string::npos) << e.what();
  }
}

}  // namespace
