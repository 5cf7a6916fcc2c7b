// log_softmax, softmax, cross_entropy (hard labels, label smoothing),
// cross_entropy_soft and mse_loss: forward against naive loops, gradients,
// numerical stability, errors.
#include <cmath>

#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::test;

namespace {

// Naive log_softmax over dimension d of a tensor (row-major values).
std::vector<double> naive_log_softmax(const Tensor& x, int64_t d) {
  const std::vector<double> xv = x.contiguous().to_vector<double>();
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < d; ++i) outer *= x.size(i);
  for (int64_t i = d + 1; i < x.dim(); ++i) inner *= x.size(i);
  const int64_t K = x.size(d);
  std::vector<double> out(xv.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      long double s = 0;
      for (int64_t k = 0; k < K; ++k) s += std::exp(static_cast<long double>(xv[(o * K + k) * inner + i]));
      const double ls = static_cast<double>(std::log(s));
      for (int64_t k = 0; k < K; ++k) out[(o * K + k) * inner + i] = xv[(o * K + k) * inner + i] - ls;
    }
  return out;
}

// The reference's cross_entropy_with_label_smoothing.
double naive_ce(const Tensor& logits, const std::vector<int64_t>& t, double ls) {
  const int64_t N = logits.size(0), K = logits.size(1);
  std::vector<double> lp = naive_log_softmax(logits, 1);
  double total = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      const double tk = (1 - ls) * (k == t[n] ? 1.0 : 0.0) + ls / K;
      total -= tk * lp[n * K + k];
    }
  return total / N;
}

struct SmCase {
  Shape shape;
  int64_t dim;
  DType dt;
};

class SoftmaxCases : public ::testing::TestWithParam<SmCase> {};

TEST_P(SoftmaxCases, LogSoftmaxForwardMatchesNaive) {
  const SmCase c = GetParam();
  Tensor x = mul(randn_t(c.shape, 1, c.dt), 3.0);
  Tensor y = log_softmax(x, c.dim);
  EXPECT_EQ(y.shape(), c.shape);
  const double tol = c.dt == DType::F32 ? 2e-6 : 1e-13;
  EXPECT_TRUE(all_close(y, naive_log_softmax(x, x.wrap_dim(c.dim)), tol, tol));
}

TEST_P(SoftmaxCases, LogSoftmaxExpSumsToOneAlongDim) {
  const SmCase c = GetParam();
  Tensor x = mul(randn_t(c.shape, 2, c.dt), 3.0);
  const int64_t d = x.wrap_dim(c.dim);
  std::vector<double> y = log_softmax(x, c.dim).to_vector<double>();
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < d; ++i) outer *= x.size(i);
  for (int64_t i = d + 1; i < x.dim(); ++i) inner *= x.size(i);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      double s = 0;
      for (int64_t k = 0; k < x.size(d); ++k) s += std::exp(y[(o * x.size(d) + k) * inner + i]);
      EXPECT_NEAR(s, 1.0, c.dt == DType::F32 ? 1e-5 : 1e-13);
    }
}

TEST_P(SoftmaxCases, SoftmaxForwardMatchesNaive) {
  const SmCase c = GetParam();
  Tensor x = mul(randn_t(c.shape, 3, c.dt), 3.0);
  Tensor y = softmax(x, c.dim);
  std::vector<double> want = naive_log_softmax(x, x.wrap_dim(c.dim));
  for (double& v : want) v = std::exp(v);
  const double tol = c.dt == DType::F32 ? 1e-6 : 1e-14;
  EXPECT_TRUE(all_close(y, want, tol, tol));
}

INSTANTIATE_TEST_SUITE_P(Shapes, SoftmaxCases,
                         ::testing::Values(SmCase{{3, 13}, -1, DType::F32}, SmCase{{3, 13}, 1, DType::F64},
                                           SmCase{{3, 13}, 0, DType::F64}, SmCase{{3, 5, 4}, 1, DType::F32},
                                           SmCase{{3, 5, 4}, 1, DType::F64}, SmCase{{2, 3, 4, 5}, 1, DType::F64},
                                           SmCase{{2, 3, 4, 5}, -1, DType::F32}),
                         [](const auto& i) {
                           std::string n;
                           for (int64_t s : i.param.shape) n += (n.empty() ? "" : "x") + std::to_string(s);
                           return n + "_" + dtype_name(i.param.dt) + "_dim" + (i.param.dim < 0 ? "m" + std::to_string(-i.param.dim) : std::to_string(i.param.dim));
                         });

TEST(LogSoftmax, StableForHugeLogits) {
  Tensor x = from_vector<float>({1000.f, 1001.f, 999.f, -1000.f, -1001.f, -1002.f}, {2, 3});
  std::vector<double> y = log_softmax(x).to_vector<double>();
  std::vector<double> s = softmax(x).to_vector<double>();
  for (double v : y) EXPECT_TRUE(std::isfinite(v));
  const double l = std::log(std::exp(-1.0) + 1.0 + std::exp(-2.0));
  // Both rows are {0, -1, -2} shifted (in different orders): the same log-sum-exp l.
  EXPECT_NEAR(y[1], -l, 1e-6);
  EXPECT_NEAR(y[0], -1 - l, 1e-6);
  EXPECT_NEAR(y[3], -l, 1e-6);
  EXPECT_NEAR(y[5], -2 - l, 1e-6);
  EXPECT_NEAR(s[1], std::exp(-l), 1e-6);
  EXPECT_NEAR(s[4], std::exp(-1 - l), 1e-6);
}

TEST(LogSoftmax, NonContiguousInput) {
  Tensor x = randn_t({13, 3}, 4).transpose(0, 1);  // [3, 13] with column strides
  EXPECT_TRUE(all_close(log_softmax(x, 1), naive_log_softmax(x, 1), 1e-13, 1e-13));
}

TEST(LogSoftmax, GradCheckLastDim) {
  Tensor x = randn_t({3, 7}, 5).set_requires_grad(true);
  EXPECT_TRUE(grad_check([](const std::vector<Tensor>& in) { return log_softmax(in[0], -1); }, {x}));
}

TEST(LogSoftmax, GradCheckMiddleDim) {
  Tensor x = randn_t({2, 5, 3}, 6).set_requires_grad(true);
  EXPECT_TRUE(grad_check([](const std::vector<Tensor>& in) { return log_softmax(in[0], 1); }, {x}));
}

TEST(Softmax, GradCheckLastDim) {
  Tensor x = randn_t({3, 7}, 7).set_requires_grad(true);
  EXPECT_TRUE(grad_check([](const std::vector<Tensor>& in) { return softmax(in[0], -1); }, {x}));
}

TEST(Softmax, GradCheckFirstDim) {
  Tensor x = randn_t({4, 3, 2}, 8).set_requires_grad(true);
  EXPECT_TRUE(grad_check([](const std::vector<Tensor>& in) { return softmax(in[0], 0); }, {x}));
}

TEST(Softmax, BadDimNamesTheShape) {
  const std::string m = error_of([] { softmax(randn_t({3, 4}, 1), 2); });
  EXPECT_NE(m.find("[3, 4]"), std::string::npos) << m;
}

// ---------------------------------------------------------------- cross entropy

TEST(CrossEntropy, HandComputedValue) {
  // log(e^1 + e^2 + e^3) - 3.
  Tensor x = from_vector<double>({1, 2, 3}, {1, 3});
  EXPECT_NEAR(cross_entropy(x, from_vector<int64_t>({2}, {1})).item(), 0.40760596444438030, 1e-15);
}

class CrossEntropyCases : public ::testing::TestWithParam<std::tuple<double, DType>> {};

TEST_P(CrossEntropyCases, ForwardMatchesNaive) {
  const double ls = std::get<0>(GetParam());
  const DType dt = std::get<1>(GetParam());
  Tensor x = mul(randn_t({7, 13}, 9, dt), 2.0);
  std::vector<int64_t> t = {0, 12, 5, 5, 3, 7, 11};
  Tensor y = cross_entropy(x, from_vector<int64_t>(t, {7}), ls);
  EXPECT_EQ(y.dim(), 0);
  EXPECT_EQ(y.dtype(), dt);
  const double tol = dt == DType::F32 ? 2e-6 : 1e-13;
  EXPECT_NEAR(y.item(), naive_ce(x, t, ls), tol);
}

std::string ce_case_name(const ::testing::TestParamInfo<std::tuple<double, DType>>& i) {
  return std::string(std::get<0>(i.param) == 0.0 ? "ls0" : "ls01") + "_" + dtype_name(std::get<1>(i.param));
}

INSTANTIATE_TEST_SUITE_P(Smoothing, CrossEntropyCases,
                         ::testing::Combine(::testing::Values(0.0, 0.1), ::testing::Values(DType::F32, DType::F64)),
                         ce_case_name);

TEST(CrossEntropy, GradCheckNoSmoothing) {
  Tensor x = randn_t({3, 5}, 10).set_requires_grad(true);
  Tensor t = from_vector<int64_t>({4, 0, 4}, {3});
  EXPECT_TRUE(grad_check([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], t, 0.0); }, {x}));
}

TEST(CrossEntropy, GradCheckLabelSmoothing) {
  Tensor x = randn_t({3, 5}, 10).set_requires_grad(true);
  Tensor t = from_vector<int64_t>({4, 0, 4}, {3});
  EXPECT_TRUE(grad_check([&](const std::vector<Tensor>& in) { return cross_entropy(in[0], t, 0.1); }, {x}));
}

TEST(CrossEntropy, FusedGradientIsSoftmaxMinusTargetOverN) {
  const double ls = 0.1;
  Tensor x = randn_t({4, 6}, 11).set_requires_grad(true);
  std::vector<int64_t> t = {1, 5, 0, 1};
  cross_entropy(x, from_vector<int64_t>(t, {4}), ls).backward();
  std::vector<double> p = naive_log_softmax(x, 1), want(24);
  for (int n = 0; n < 4; ++n)
    for (int k = 0; k < 6; ++k)
      want[n * 6 + k] = (std::exp(p[n * 6 + k]) - ((1 - ls) * (k == t[n]) + ls / 6)) / 4;
  EXPECT_TRUE(all_close(x.grad(), want, 1e-15, 1e-13));
}

TEST(CrossEntropy, GradientsAccumulateOverTwoBackwards) {
  Tensor x = randn_t({3, 5}, 12).set_requires_grad(true);
  Tensor t = from_vector<int64_t>({1, 2, 3}, {3});
  cross_entropy(x, t, 0.1).backward();
  std::vector<double> g1 = x.grad().to_vector<double>();
  cross_entropy(x, t, 0.1).backward();
  for (double& v : g1) v *= 2;
  EXPECT_TRUE(all_close(x.grad(), g1, 1e-16, 1e-14));
}

TEST(CrossEntropy, ScaledLossScalesTheGradient) {
  // The incoming gradient (here 2.5) multiplies the fused gradient.
  Tensor x = randn_t({3, 5}, 13).set_requires_grad(true);
  Tensor t = from_vector<int64_t>({1, 2, 3}, {3});
  cross_entropy(x, t).backward();
  std::vector<double> g1 = x.grad().to_vector<double>();
  x.set_grad(Tensor());
  mul(cross_entropy(x, t), 2.5).backward();
  for (double& v : g1) v *= 2.5;
  EXPECT_TRUE(all_close(x.grad(), g1, 1e-16, 1e-14));
}

TEST(CrossEntropy, BadLabelIsNamedWithTheClassCount) {
  const std::string m = error_of([] { cross_entropy(randn_t({3, 10}, 14), from_vector<int64_t>({1, 12, 3}, {3})); });
  EXPECT_NE(m.find("12"), std::string::npos) << m;
  EXPECT_NE(m.find("K = 10"), std::string::npos) << m;
  const std::string neg = error_of([] { cross_entropy(randn_t({2, 10}, 14), from_vector<int64_t>({-1, 0}, {2})); });
  EXPECT_NE(neg.find("-1"), std::string::npos) << neg;
}

TEST(CrossEntropy, TargetShapeAndTypeAreChecked) {
  const std::string m = error_of([] { cross_entropy(randn_t({3, 10}, 15), from_vector<int64_t>({1, 2}, {2})); });
  EXPECT_NE(m.find("[2]"), std::string::npos) << m;
  EXPECT_NE(m.find("[3, 10]"), std::string::npos) << m;
  const std::string f = error_of([] { cross_entropy(randn_t({3, 10}, 15), randn_t({3}, 16)); });
  EXPECT_NE(f.find("int64"), std::string::npos) << f;
}

// ---------------------------------------------------------------- soft targets

TEST(CrossEntropySoft, ForwardMatchesNaive) {
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor x = mul(randn_t({7, 13}, 17, dt), 2.0);
    Tensor s = softmax(randn_t({7, 13}, 18, dt), 1);
    std::vector<double> lp = naive_log_softmax(x, 1), sv = s.to_vector<double>();
    double want = 0;
    for (size_t i = 0; i < lp.size(); ++i) want -= sv[i] * lp[i];
    want /= 7;
    EXPECT_NEAR(cross_entropy_soft(x, s).item(), want, dt == DType::F32 ? 2e-6 : 1e-13);
  }
}

TEST(CrossEntropySoft, OneHotTargetEqualsHardCrossEntropy) {
  Tensor x = randn_t({5, 9}, 19).set_requires_grad(true);
  std::vector<int64_t> t = {8, 0, 3, 3, 6};
  std::vector<double> oh(45, 0.0);
  for (int n = 0; n < 5; ++n) oh[n * 9 + t[n]] = 1.0;
  Tensor soft = from_vector<double>(oh, {5, 9});
  Tensor hard_t = from_vector<int64_t>(t, {5});
  EXPECT_NEAR(cross_entropy_soft(x, soft).item(), cross_entropy(x, hard_t).item(), 1e-14);
  cross_entropy_soft(x, soft).backward();
  std::vector<double> gs = x.grad().to_vector<double>();
  x.set_grad(Tensor());
  cross_entropy(x, hard_t).backward();
  EXPECT_TRUE(all_close(x.grad(), gs, 1e-16, 1e-14));
}

TEST(CrossEntropySoft, SmoothedSoftTargetEqualsLabelSmoothing) {
  const double ls = 0.1;
  const int K = 6;
  Tensor x = randn_t({4, K}, 20);
  std::vector<int64_t> t = {5, 0, 2, 2};
  std::vector<double> st(4 * K, ls / K);
  for (int n = 0; n < 4; ++n) st[n * K + t[n]] += 1 - ls;
  EXPECT_NEAR(cross_entropy_soft(x, from_vector<double>(st, {4, K})).item(),
              cross_entropy(x, from_vector<int64_t>(t, {4}), ls).item(), 1e-14);
}

TEST(CrossEntropySoft, GradCheckLogitsOnly) {
  Tensor x = randn_t({3, 5}, 21).set_requires_grad(true);
  Tensor s = softmax(randn_t({3, 5}, 22), 1);
  EXPECT_TRUE(grad_check([&](const std::vector<Tensor>& in) { return cross_entropy_soft(in[0], s); }, {x}));
  EXPECT_FALSE(s.requires_grad());
}

TEST(CrossEntropySoft, GradCheckLogitsAndSoftTarget) {
  // Unnormalised soft targets too: the gradient is softmax * sum(soft) - soft.
  Tensor x = randn_t({3, 5}, 23).set_requires_grad(true);
  Tensor s = uniform_t({3, 5}, 24, 0.0, 1.0).set_requires_grad(true);
  EXPECT_TRUE(grad_check([](const std::vector<Tensor>& in) { return cross_entropy_soft(in[0], in[1]); }, {x, s}));
}

TEST(CrossEntropySoft, ShapeMismatchNamesBothShapes) {
  const std::string m = error_of([] { cross_entropy_soft(randn_t({3, 5}, 1), randn_t({3, 4}, 2)); });
  EXPECT_NE(m.find("[3, 5]"), std::string::npos) << m;
  EXPECT_NE(m.find("[3, 4]"), std::string::npos) << m;
}

// ---------------------------------------------------------------- mse

TEST(MseLoss, ForwardMatchesNaive) {
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor a = randn_t({3, 13, 7, 7}, 25, dt), b = randn_t({3, 13, 7, 7}, 26, dt);
    std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
    double want = 0;
    for (size_t i = 0; i < av.size(); ++i) want += (av[i] - bv[i]) * (av[i] - bv[i]);
    want /= av.size();
    EXPECT_NEAR(mse_loss(a, b).item(), want, dt == DType::F32 ? 1e-6 : 1e-14);
  }
}

TEST(MseLoss, MixedLayoutsAgree) {
  Tensor a = randn_t({3, 5, 4, 4}, 27), b = randn_t({3, 5, 4, 4}, 28);
  EXPECT_NEAR(mse_loss(a.contiguous(MemoryFormat::ChannelsLast), b).item(), mse_loss(a, b).item(), 1e-15);
}

TEST(MseLoss, GradCheckBoth) {
  Tensor a = randn_t({3, 5}, 29).set_requires_grad(true), b = randn_t({3, 5}, 30).set_requires_grad(true);
  EXPECT_TRUE(grad_check([](const std::vector<Tensor>& in) { return mse_loss(in[0], in[1]); }, {a, b}));
}

TEST(MseLoss, GradientsAccumulateOverTwoBackwards) {
  Tensor a = randn_t({4, 3}, 31).set_requires_grad(true), b = randn_t({4, 3}, 32);
  mse_loss(a, b).backward();
  std::vector<double> g1 = a.grad().to_vector<double>();
  mse_loss(a, b).backward();
  for (double& v : g1) v *= 2;
  EXPECT_TRUE(all_close(a.grad(), g1, 1e-16, 1e-14));
}

TEST(MseLoss, ShapeMismatchNamesBothShapes) {
  const std::string m = error_of([] { mse_loss(randn_t({3, 5}, 1), randn_t({5, 3}, 2)); });
  EXPECT_NE(m.find("[3, 5]"), std::string::npos) << m;
  EXPECT_NE(m.find("[5, 3]"), std::string::npos) << m;
}

}  // namespace
