// Tensor metadata, views without copies, layouts, copies, and the RNG.
#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::test;

namespace {

Tensor iota(const Shape& shape) {
  Tensor t = empty(shape, DType::F64);
  double* p = t.data<double>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<double>(i);
  return t;
}

TEST(Tensor, ContiguousStridesAndNumel) {
  Tensor t = empty({3, 13, 7, 7});
  EXPECT_EQ(t.strides(), (Shape{637, 49, 7, 1}));
  EXPECT_EQ(t.numel(), 3 * 13 * 49);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_FALSE(t.is_contiguous(MemoryFormat::ChannelsLast));
  EXPECT_EQ(t.dtype(), DType::F32);
  EXPECT_TRUE(t.device().is_cpu());
}

TEST(Tensor, ChannelsLastStridesAndRoundTrip) {
  Tensor t = iota({3, 13, 7, 5});
  Tensor cl = t.contiguous(MemoryFormat::ChannelsLast);
  EXPECT_EQ(cl.strides(), (Shape{7 * 5 * 13, 1, 5 * 13, 13}));
  EXPECT_TRUE(cl.is_contiguous(MemoryFormat::ChannelsLast));
  EXPECT_EQ(cl.suggest_memory_format(), MemoryFormat::ChannelsLast);
  // Element (n, c, h, w) sits at n*455 + h*65 + w*13 + c.
  EXPECT_EQ(cl.data<double>()[1 * 455 + 2 * 65 + 3 * 13 + 4], t.data<double>()[1 * 455 + 4 * 35 + 2 * 5 + 3]);
  EXPECT_TRUE(all_close(cl.contiguous(), t, 0, 0));
}

TEST(Tensor, NarrowIsAViewOnAnyDimension) {
  Tensor t = iota({4, 6, 5});
  for (int64_t d = 0; d < 3; ++d) {
    Tensor v = t.narrow(d, 1, 2);
    EXPECT_EQ(v.impl()->storage, t.impl()->storage) << "dim " << d;
    EXPECT_EQ(v.size(d), 2);
    EXPECT_EQ(v.offset(), t.stride(d));
  }
  Tensor v = t.narrow(1, 2, 3);
  std::vector<double> got = v.to_vector<double>();
  for (int64_t a = 0, i = 0; a < 4; ++a)
    for (int64_t b = 0; b < 3; ++b)
      for (int64_t c = 0; c < 5; ++c, ++i) EXPECT_EQ(got[i], a * 30 + (b + 2) * 5 + c);
}

TEST(Tensor, CentreCropOfA7x7WeightIsAView) {
  Tensor w = iota({13, 1, 7, 7});
  for (int64_t k : {3, 5, 7}) {
    const int64_t off = 3 - k / 2;
    Tensor c = w.narrow(0, 0, 5).narrow(2, off, k).narrow(3, off, k);
    EXPECT_EQ(c.impl()->storage, w.impl()->storage);
    EXPECT_EQ(c.strides(), (Shape{49, 49, 7, 1}));
    EXPECT_EQ(c.offset(), off * 7 + off);
    EXPECT_EQ(c.is_contiguous(), k == 7);  // the full 7x7 of a leading channel slice is contiguous
    EXPECT_EQ(c.contiguous().to_vector<double>()[k * k - 1], (off + k - 1) * 7 + off + k - 1);
  }
}

TEST(Tensor, WritesThroughAViewReachTheBase) {
  Tensor t = zeros({4, 4}, DType::F64);
  Tensor v = t.narrow(0, 1, 2).narrow(1, 1, 2);
  v.fill_(7.0);
  std::vector<double> got = t.to_vector<double>();
  for (int i = 0; i < 16; ++i) EXPECT_EQ(got[i], (i / 4 >= 1 && i / 4 <= 2 && i % 4 >= 1 && i % 4 <= 2) ? 7.0 : 0.0);
}

TEST(Tensor, SliceWithStepAndNegativeBounds) {
  Tensor t = iota({10});
  EXPECT_EQ(t.slice(0, 1, 8, 3).to_vector<double>(), (std::vector<double>{1, 4, 7}));
  EXPECT_EQ(t.slice(0, -3, 10).to_vector<double>(), (std::vector<double>{7, 8, 9}));
}

TEST(Tensor, SelectDropsADimension) {
  Tensor t = iota({3, 4});
  Tensor r = t.select(1, -1);
  EXPECT_EQ(r.shape(), (Shape{3}));
  EXPECT_EQ(r.to_vector<double>(), (std::vector<double>{3, 7, 11}));
}

TEST(Tensor, PermuteAndTranspose) {
  Tensor t = iota({2, 3, 4});
  Tensor p = t.permute({2, 0, 1});
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(p.strides(), (Shape{1, 12, 4}));
  std::vector<double> got = p.contiguous().to_vector<double>();
  for (int64_t c = 0, i = 0; c < 4; ++c)
    for (int64_t a = 0; a < 2; ++a)
      for (int64_t b = 0; b < 3; ++b, ++i) EXPECT_EQ(got[i], a * 12 + b * 4 + c);
  EXPECT_EQ(t.transpose(0, 2).shape(), (Shape{4, 3, 2}));
  EXPECT_THROW(t.permute({0, 0, 1}), Error);
}

TEST(Tensor, ExpandUsesZeroStrides) {
  Tensor t = iota({3, 1});
  Tensor e = t.expand({2, 3, 4});
  EXPECT_EQ(e.strides(), (Shape{0, 1, 0}));
  EXPECT_EQ(e.contiguous().to_vector<double>()[4 * 2 + 3], 2.0);
  EXPECT_THROW(t.expand({2, 2}), Error);  // 3 cannot become 2
}

TEST(Tensor, ReshapeViewsWhenPossibleAndCopiesOtherwise) {
  Tensor t = iota({4, 6});
  Tensor r = t.reshape({2, 2, -1});
  EXPECT_EQ(r.shape(), (Shape{2, 2, 6}));
  EXPECT_EQ(r.impl()->storage, t.impl()->storage);
  Tensor tt = t.transpose(0, 1);
  EXPECT_THROW(tt.view({24}), Error);
  Tensor f = tt.reshape({24});
  EXPECT_NE(f.impl()->storage, t.impl()->storage);
  EXPECT_EQ(f.to_vector<double>()[1], 6.0);
  EXPECT_EQ(t.flatten().shape(), (Shape{24}));
  EXPECT_EQ(iota({2, 3, 4}).flatten(1).shape(), (Shape{2, 12}));
  EXPECT_THROW(t.reshape({5, -1}), Error);
}

TEST(Tensor, UnsqueezeSqueeze) {
  Tensor t = iota({3, 4});
  EXPECT_EQ(t.unsqueeze(0).shape(), (Shape{1, 3, 4}));
  EXPECT_EQ(t.unsqueeze(-1).shape(), (Shape{3, 4, 1}));
  EXPECT_EQ(t.unsqueeze(1).squeeze(1).shape(), (Shape{3, 4}));
}

TEST(Tensor, IsDenseRecognisesPermutations) {
  EXPECT_TRUE(iota({2, 3, 4}).permute({1, 2, 0}).is_dense());
  EXPECT_FALSE(iota({4, 6}).narrow(1, 0, 3).is_dense());
  EXPECT_FALSE(iota({3, 1}).expand({3, 5}).is_dense());
}

TEST(Tensor, CopyBetweenLayoutsAndDtypes) {
  Tensor src = iota({2, 3, 4, 5});
  Tensor dst = empty({2, 3, 4, 5}, DType::F32, Device::cpu(), MemoryFormat::ChannelsLast);
  dst.copy_(src);
  EXPECT_TRUE(all_close(dst, src, 0, 0));
  Tensor i64 = src.to(DType::I64);
  EXPECT_EQ(i64.to_vector<int64_t>()[119], 119);
}

TEST(Tensor, DataChecksDtype) {
  Tensor t = empty({2});
  EXPECT_THROW(t.data<double>(), Error);
}

TEST(Tensor, OutOfRangeDimensionNamesIt) {
  Tensor t = empty({2, 3});
  try {
    t.narrow(2, 0, 1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dimension 2"), std::string::npos) << e.what();
  }
  EXPECT_THROW(t.narrow(1, 2, 2), Error);
}

TEST(Tensor, ItemAndCreation) {
  EXPECT_EQ(scalar_tensor(2.5).item(), 2.5);
  EXPECT_EQ(full({2, 2}, 3.0).to_vector<float>(), (std::vector<float>(4, 3.f)));
  EXPECT_EQ(arange(4).to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_THROW(from_vector<float>({1, 2, 3}, {2, 2}), Error);
  EXPECT_THROW(empty({2}).item(), Error);
}

TEST(Tensor, ToCudaWithoutADeviceFailsClearly) {
  if (cuda_available()) GTEST_SKIP() << "SKIPPED: a GPU is present; this checks the CPU-only error path";
  const std::string m = error_of([] { empty({2}).to(Device::cuda()); });
  EXPECT_TRUE(has(m, "OFA_CUDA_EMULATION=1")) << m;  // says how to run the CUDA kernels anyway
}

// ---------------------------------------------------------------- RNG

TEST(Random, SameSeedSameNumbersAndStateRestores) {
  Generator g(42);
  Tensor a = rand({1000}, DType::F32, &g);
  GeneratorState s = g.state();
  Tensor b = randn({37}, DType::F64, &g);
  Tensor c = randn({37}, DType::F64, &g);
  g.set_state(s);
  Tensor b2 = randn({37}, DType::F64, &g);
  EXPECT_TRUE(all_close(b, b2, 0, 0));
  EXPECT_FALSE(all_close(b, c, 1e-3, 0));
  Generator h(42);
  EXPECT_TRUE(all_close(rand({1000}, DType::F32, &h), a, 0, 0));
  Generator other(43);
  EXPECT_FALSE(all_close(rand({1000}, DType::F32, &other), a, 1e-3, 0));
}

TEST(Random, DrawDoesNotDependOnLayout) {
  Generator g1(7), g2(7);
  Tensor a = empty({2, 3, 4, 5}, DType::F64);
  Tensor b = empty({2, 3, 4, 5}, DType::F64, Device::cpu(), MemoryFormat::ChannelsLast);
  normal_(a, 0, 1, &g1);
  normal_(b, 0, 1, &g2);
  EXPECT_TRUE(all_close(a, b, 0, 0));
}

TEST(Random, UniformNormalBernoulliMoments) {
  Generator g(1);
  Tensor u = rand({200000}, DType::F64, &g);
  std::vector<double> uv = u.to_vector<double>();
  double mn = 1, mx = 0;
  for (double x : uv) mn = std::min(mn, x), mx = std::max(mx, x);
  EXPECT_GE(mn, 0.0);
  EXPECT_LT(mx, 1.0);
  EXPECT_NEAR(mean(u).item(), 0.5, 0.005);
  Tensor n = randn({200000}, DType::F64, &g);
  EXPECT_NEAR(mean(n).item(), 0.0, 0.01);
  EXPECT_NEAR(mean(mul(n, n)).item(), 1.0, 0.02);
  Tensor m = empty({200000}, DType::F32);
  bernoulli_(m, 0.3, &g);
  EXPECT_NEAR(mean(m).item(), 0.3, 0.005);
  for (float x : m.to_vector<float>()) ASSERT_TRUE(x == 0.f || x == 1.f);
}

TEST(Random, DefaultGeneratorIsSeeded) {
  manual_seed(5);
  Tensor a = rand({10});
  manual_seed(5);
  EXPECT_TRUE(all_close(rand({10}), a, 0, 0));
}

// The test main resets the default generator before every test, so a test's
// random weights do not depend on the tests run before it in the process. In
// a whole-file run this test follows DefaultGeneratorIsSeeded, which leaves
// seed 5 with 10 numbers drawn; the listener is checked directly as well.
TEST(Random, EveryTestStartsFromTheInitialDefaultGenerator) {
  EXPECT_EQ(default_generator().state(), (GeneratorState{0, 0}));
  manual_seed(9);
  (void)rand({3});
  ResetDefaultGenerator().OnTestStart(*::testing::UnitTest::GetInstance()->current_test_info());
  EXPECT_EQ(default_generator().state(), (GeneratorState{0, 0}));
  Generator fresh(0);
  EXPECT_TRUE(all_close(rand({4}), rand({4}, DType::F32, &fresh), 0, 0));
}

}  // namespace

namespace {
TEST(Tensor, ShapesTooLargeToAddressAreRefused) {
  EXPECT_THROW(empty({0, int64_t(1) << 32, int64_t(1) << 32}), Error);
  EXPECT_THROW(empty({int64_t(1) << 40, int64_t(1) << 30}), Error);
  EXPECT_EQ(empty({0, 5}).numel(), 0);
}
}  // namespace
