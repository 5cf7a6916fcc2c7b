// add, sub, mul (with broadcasting), scalar ops and the activations.
#include <cmath>

#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::test;

namespace {

double ref_act(const std::string& name, double x) {
  auto r6 = [](double v) { return std::min(std::max(v, 0.0), 6.0); };
  if (name == "relu") return std::max(x, 0.0);
  if (name == "relu6") return r6(x);
  if (name == "hswish") return x * r6(x + 3) / 6;
  return r6(x + 3) / 6;  // hsigmoid
}

Tensor apply_act(const std::string& name, const Tensor& x) {
  if (name == "relu") return relu(x);
  if (name == "relu6") return relu6(x);
  if (name == "hswish") return hswish(x);
  return hsigmoid(x);
}

class Activation : public ::testing::TestWithParam<std::string> {};

TEST_P(Activation, ForwardMatchesNaiveFloat32) {
  // Values spread over every piece of the piecewise functions, kinks included.
  Tensor x = uniform_t({3, 13, 7, 7}, 1, -8, 8, DType::F32);
  {
    NoGradGuard ng;
    x.data<float>()[0] = 0.f;
    x.data<float>()[1] = 6.f;
    x.data<float>()[2] = -3.f;
    x.data<float>()[3] = 3.f;
  }
  Tensor y = apply_act(GetParam(), x);
  std::vector<float> xv = x.to_vector<float>();
  std::vector<double> want(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) want[i] = ref_act(GetParam(), xv[i]);
  EXPECT_TRUE(all_close(y, want, 1e-6, 1e-6));
}

TEST_P(Activation, KeepsChannelsLastLayout) {
  Tensor x = uniform_t({2, 5, 3, 3}, 2, -5, 5).contiguous(MemoryFormat::ChannelsLast);
  Tensor y = apply_act(GetParam(), x);
  EXPECT_TRUE(y.is_contiguous(MemoryFormat::ChannelsLast));
  Tensor yc = apply_act(GetParam(), x.contiguous());
  EXPECT_TRUE(all_close(y, yc, 0, 0));
}

TEST_P(Activation, GradCheck) {
  // Odd sizes; points near the kinks are skipped by the checker, not loosened.
  Tensor x = uniform_t({3, 13, 7, 7}, 3, -8, 8).set_requires_grad(true);
  GradCheckReport rep;
  EXPECT_TRUE(grad_check([&](const std::vector<Tensor>& in) { return apply_act(GetParam(), in[0]); }, {x}, {}, &rep));
  EXPECT_GT(rep.checked, 3 * 13 * 7 * 7 * 9 / 10);
}

TEST_P(Activation, GradientAtKinksMatchesTheReference) {
  // What PyTorch's autograd gives the OFA reference's formulas at the kinks
  // (see kernels/common/activation_math.h): relu'(0) = 0; relu6' = 0 at 0
  // and 6; hswish' = 0 at -3 and 1 at 3; hsigmoid' = 0 at -3 and 3.
  Tensor x = from_vector<double>({0, 6, -3, 3}, {4}).set_requires_grad(true);
  sum(apply_act(GetParam(), x)).backward();
  std::vector<double> want;
  if (GetParam() == "relu") want = {0, 1, 0, 1};
  if (GetParam() == "relu6") want = {0, 0, 0, 1};
  if (GetParam() == "hswish") want = {0.5, 1, 0, 1};
  if (GetParam() == "hsigmoid") want = {1.0 / 6, 0, 0, 0};
  EXPECT_TRUE(all_close(x.grad(), want, 1e-12, 0));
}

INSTANTIATE_TEST_SUITE_P(Ops, Activation, ::testing::Values("relu", "relu6", "hswish", "hsigmoid"));

TEST(Binary, AddBroadcastForwardAgainstNaive) {
  Tensor a = randn_t({3, 13, 7, 7}, 4), b = randn_t({13, 1, 1}, 5);
  Tensor y = add(a, b);
  std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>(), want(av.size());
  for (int64_t n = 0, i = 0; n < 3; ++n)
    for (int64_t c = 0; c < 13; ++c)
      for (int64_t p = 0; p < 49; ++p, ++i) want[i] = av[i] + bv[c];
  EXPECT_TRUE(all_close(y, want, 1e-12, 0));
}

TEST(Binary, BroadcastMulChannelsLastForwardAgainstNaive) {
  // The SE pattern: x [N, C, H, W] channels-last times s [N, C, 1, 1].
  Tensor x = randn_t({3, 13, 7, 7}, 6).contiguous(MemoryFormat::ChannelsLast), s = randn_t({3, 13, 1, 1}, 7);
  Tensor y = mul(x, s);
  EXPECT_TRUE(y.is_contiguous(MemoryFormat::ChannelsLast));
  std::vector<double> xv = x.contiguous().to_vector<double>(), sv = s.to_vector<double>(), want(xv.size());
  for (int64_t n = 0, i = 0; n < 3; ++n)
    for (int64_t c = 0; c < 13; ++c)
      for (int64_t p = 0; p < 49; ++p, ++i) want[i] = xv[i] * sv[n * 13 + c];
  EXPECT_TRUE(all_close(y, want, 1e-12, 0));
}

TEST(Binary, SubForward) {
  Tensor a = randn_t({5, 3}, 8), b = randn_t({3}, 9);
  std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>(), want(15);
  for (int i = 0; i < 15; ++i) want[i] = av[i] - bv[i % 3];
  EXPECT_TRUE(all_close(sub(a, b), want, 1e-12, 0));
}

TEST(Binary, IncompatibleShapesNameBoth) {
  try {
    add(randn_t({3, 4}, 1), randn_t({5}, 2));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[3, 4]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[5]"), std::string::npos) << e.what();
  }
}

TEST(Binary, AddGradCheckBroadcast) {
  Tensor a = randn_t({3, 5, 7}, 10).set_requires_grad(true), b = randn_t({5, 1}, 11).set_requires_grad(true);
  EXPECT_TRUE(grad_check([](const std::vector<Tensor>& in) { return add(in[0], in[1]); }, {a, b}));
}

TEST(Binary, SubGradCheckBroadcast) {
  Tensor a = randn_t({3, 5}, 12).set_requires_grad(true), b = randn_t({3, 1}, 13).set_requires_grad(true);
  EXPECT_TRUE(grad_check([](const std::vector<Tensor>& in) { return sub(in[0], in[1]); }, {a, b}));
}

TEST(Binary, MulGradCheckBroadcastChannelsLast) {
  Tensor x = randn_t({3, 13, 7, 7}, 14).set_requires_grad(true), s = randn_t({3, 13, 1, 1}, 15).set_requires_grad(true);
  EXPECT_TRUE(grad_check(
      [](const std::vector<Tensor>& in) { return mul(in[0].contiguous(MemoryFormat::ChannelsLast), in[1]); }, {x, s}));
}

TEST(Binary, ScalarOpsForwardAndGradCheck) {
  Tensor x = randn_t({7, 3}, 16).set_requires_grad(true);
  std::vector<double> xv = x.to_vector<double>(), want(21);
  for (int i = 0; i < 21; ++i) want[i] = xv[i] * 2.5 + 1.0;
  EXPECT_TRUE(all_close(add(mul(x, 2.5), 1.0), want, 1e-12, 0));
  EXPECT_TRUE(grad_check([](const std::vector<Tensor>& in) { return add(mul(in[0], -1.5), 3.0); }, {x}));
}

TEST(Binary, Float32AndFloat64Agree) {
  Tensor a = randn_t({4, 9}, 17), b = randn_t({4, 9}, 18);
  Tensor y64 = mul(add(a, b), b);
  Tensor y32 = mul(add(a.to(DType::F32), b.to(DType::F32)), b.to(DType::F32));
  EXPECT_TRUE(all_close(y32, y64, 1e-5, 1e-5));
}

}  // namespace

namespace {
// The row-broadcast fast path with the broadcast operand first: operand order
// must survive the swap (sub is not symmetric).
TEST(Binary, BroadcastFirstOperandKeepsOrderChannelsLast) {
  Tensor x = randn_t({3, 13, 7, 7}, 30).contiguous(MemoryFormat::ChannelsLast), s = randn_t({3, 13, 1, 1}, 31);
  std::vector<double> xv = x.contiguous().to_vector<double>(), sv = s.to_vector<double>(), d(xv.size()), m(xv.size());
  for (int64_t n = 0, i = 0; n < 3; ++n)
    for (int64_t c = 0; c < 13; ++c)
      for (int64_t p = 0; p < 49; ++p, ++i) {
        d[i] = sv[n * 13 + c] - xv[i];
        m[i] = sv[n * 13 + c] * xv[i];
      }
  EXPECT_TRUE(all_close(sub(s, x), d, 1e-12, 0));
  EXPECT_TRUE(all_close(mul(s, x), m, 1e-12, 0));
  std::vector<double> neg(d.size());
  for (size_t i = 0; i < d.size(); ++i) neg[i] = -d[i];
  EXPECT_TRUE(all_close(sub(x, s), neg, 1e-12, 0));
}
}  // namespace
