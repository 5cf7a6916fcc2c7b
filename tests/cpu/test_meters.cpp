// AverageMeter, accuracy meters and the distillation losses against
// hand-computed values.
#include <cmath>

#include "engine/autograd.h"
#include "engine/ops.h"
#include "ofa/kd_loss.h"
#include "ofa/meters.h"
#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::test;

TEST(AverageMeter, WeightedAverage) {
  AverageMeter m;
  EXPECT_EQ(m.avg(), 0.0);
  EXPECT_EQ(m.count(), 0.0);
  m.update(2.0, 3);
  m.update(5.0);
  EXPECT_DOUBLE_EQ(m.val(), 5.0);
  EXPECT_DOUBLE_EQ(m.sum(), 11.0);
  EXPECT_DOUBLE_EQ(m.count(), 4.0);
  EXPECT_DOUBLE_EQ(m.avg(), 2.75);
  m.update(1.0, 0);  // zero weight: val changes, average does not
  EXPECT_DOUBLE_EQ(m.val(), 1.0);
  EXPECT_DOUBLE_EQ(m.avg(), 2.75);
  m.reset();
  EXPECT_EQ(m.sum(), 0.0);
  EXPECT_EQ(m.count(), 0.0);
  EXPECT_TRUE(has(error_of([&] { m.update(1.0, -1); }), "n must be >= 0"));
}

TEST(AverageMeter, TotalsMergeLikeAnAllreduce) {
  // Two "ranks"; the global average is sum of sums / sum of counts.
  AverageMeter a, b;
  a.update(1.0, 2);
  a.update(4.0, 1);
  b.update(10.0, 5);
  std::vector<double> ta = a.totals(), tb = b.totals();
  ASSERT_EQ(ta.size(), 2u);
  std::vector<double> summed = {ta[0] + tb[0], ta[1] + tb[1]};
  AverageMeter g;
  g.set_totals(summed);
  EXPECT_DOUBLE_EQ(g.avg(), 56.0 / 8.0);
  AverageMeter c = a;
  c.merge(tb[0], tb[1]);
  EXPECT_DOUBLE_EQ(c.avg(), 7.0);
  EXPECT_DOUBLE_EQ(c.count(), 8.0);
  EXPECT_TRUE(has(error_of([&] { g.set_totals({1.0}); }), "{sum, count}"));
}

TEST(Accuracy, TopKPercentAndMeters) {
  // 4 rows, 6 classes; targets ranked 1st, 2nd, 6th, 1st.
  Tensor logits = from_vector<double>({0.9, 0.1, 0.0, 0.0, 0.0, 0.0,   //
                                       0.5, 0.6, 0.1, 0.0, 0.0, 0.0,   //
                                       0.1, 0.2, 0.3, 0.4, 0.5, 0.0,   //
                                       0.0, 0.0, 0.0, 0.0, 0.0, 1.0},
                                      {4, 6});
  Tensor target = from_vector<int64_t>({0, 0, 5, 5}, {4});
  const std::vector<double> acc = accuracy(logits, target, {1, 2, 5});
  ASSERT_EQ(acc.size(), 3u);
  EXPECT_DOUBLE_EQ(acc[0], 50.0);
  EXPECT_DOUBLE_EQ(acc[1], 75.0);
  EXPECT_DOUBLE_EQ(acc[2], 75.0);
  AccuracyMeters m;
  m.update(logits, target);
  m.update(logits.narrow(0, 0, 2), target.narrow(0, 0, 2));  // top-1 50%, top-5 100%
  EXPECT_DOUBLE_EQ(m.top1.avg(), (50.0 * 4 + 50.0 * 2) / 6);
  EXPECT_DOUBLE_EQ(m.top5.avg(), (75.0 * 4 + 100.0 * 2) / 6);
  // Fewer than 5 classes: top-5 is measured at K.
  AccuracyMeters small;
  small.update(from_vector<double>({1.0, 0.0, 0.0, 1.0}, {2, 2}), from_vector<int64_t>({1, 1}, {2}));
  EXPECT_DOUBLE_EQ(small.top1.avg(), 50.0);
  EXPECT_DOUBLE_EQ(small.top5.avg(), 100.0);
}

namespace {
// Hand formulas in double for one batch.
double soft_ce_ref(const std::vector<double>& x, const std::vector<double>& t, int64_t n, int64_t k) {
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    double mx = -1e300, mt = -1e300;
    for (int64_t j = 0; j < k; ++j) mx = std::max(mx, x[i * k + j]), mt = std::max(mt, t[i * k + j]);
    double zx = 0, zt = 0;
    for (int64_t j = 0; j < k; ++j) zx += std::exp(x[i * k + j] - mx), zt += std::exp(t[i * k + j] - mt);
    for (int64_t j = 0; j < k; ++j) {
      const double p = std::exp(t[i * k + j] - mt) / zt;
      const double logq = x[i * k + j] - mx - std::log(zx);
      total -= p * logq;
    }
  }
  return total / n;
}
double ce_ls_ref(const std::vector<double>& x, const std::vector<int64_t>& y, int64_t n, int64_t k, double ls) {
  std::vector<double> t(n * k);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < k; ++j) t[i * k + j] = (j == y[i] ? 1.0 - ls : 0.0) + ls / k;
  // Soft CE with an explicit target distribution (not a softmax of it).
  double total = 0;
  for (int64_t i = 0; i < n; ++i) {
    double mx = -1e300;
    for (int64_t j = 0; j < k; ++j) mx = std::max(mx, x[i * k + j]);
    double zx = 0;
    for (int64_t j = 0; j < k; ++j) zx += std::exp(x[i * k + j] - mx);
    for (int64_t j = 0; j < k; ++j) total -= t[i * k + j] * (x[i * k + j] - mx - std::log(zx));
  }
  return total / n;
}
}  // namespace

TEST(KdLoss, SoftCrossEntropyAgainstTeacherSoftmax) {
  const std::vector<double> x = {1.0, 2.0, 0.5, -1.0, 0.0, 3.0};
  const std::vector<double> t = {0.2, 1.5, -0.3, 2.0, 0.1, 0.4};
  const double expected = soft_ce_ref(x, t, 2, 3);
  for (DType dt : {DType::F32, DType::F64}) {
    Tensor logits = from_vector<double>(x, {2, 3});
    Tensor teacher = from_vector<double>(t, {2, 3});
    if (dt == DType::F32) logits = logits.to(dt), teacher = teacher.to(dt);
    const double got = kd_loss(logits, teacher, "ce").item();
    EXPECT_NEAR(got, expected, dt == DType::F64 ? 1e-14 : 1e-6);
  }
}

TEST(KdLoss, MseOnLogits) {
  Tensor logits = from_vector<double>({1.0, 2.0, 0.5, -1.0}, {2, 2});
  Tensor teacher = from_vector<double>({0.0, 2.5, 0.5, 1.0}, {2, 2});
  EXPECT_NEAR(kd_loss(logits, teacher, "mse").item(), (1.0 + 0.25 + 0.0 + 4.0) / 4, 1e-15);
}

TEST(KdLoss, NoGradientIntoTheTeacher) {
  Tensor logits = randn_t({3, 5}, 1);
  Tensor teacher = randn_t({3, 5}, 2);
  logits.set_requires_grad(true);
  teacher.set_requires_grad(true);
  for (const char* type : {"ce", "mse"}) {
    Tensor loss = kd_loss(logits, teacher, type);
    loss.backward();
    EXPECT_FALSE(teacher.grad().defined()) << type;
    EXPECT_TRUE(logits.grad().defined()) << type;
  }
}

TEST(KdLoss, GradientOfKdCe) {
  // d/dx mean_n(-sum p log softmax(x)) = (softmax(x) - p) / N.
  Tensor logits = randn_t({3, 4}, 3);
  Tensor teacher = randn_t({3, 4}, 4);
  logits.set_requires_grad(true);
  kd_loss(logits, teacher, "ce").backward();
  Tensor expected = mul(sub(softmax(logits.detach(), 1), softmax(teacher, 1)), 1.0 / 3);
  EXPECT_TRUE(all_close(logits.grad(), expected, 1e-14, 1e-12));
}

TEST(KdLoss, TrainLossCombinesAsTheReference) {
  const std::vector<double> x = {1.0, 2.0, 0.5, -1.0, 0.0, 3.0};
  const std::vector<double> t = {0.2, 1.5, -0.3, 2.0, 0.1, 0.4};
  const std::vector<int64_t> y = {2, 0};
  Tensor logits = from_vector<double>(x, {2, 3});
  Tensor teacher = from_vector<double>(t, {2, 3});
  Tensor labels = from_vector<int64_t>(y, {2});
  const double ce = ce_ls_ref(x, y, 2, 3, 0.1);
  const double kd_ce = soft_ce_ref(x, t, 2, 3);
  double mse = 0;
  for (size_t i = 0; i < x.size(); ++i) mse += (x[i] - t[i]) * (x[i] - t[i]);
  mse /= x.size();
  EXPECT_NEAR(train_loss(logits, labels, 0.1, Tensor(), 0.0, "ce").item(), ce, 1e-14);
  EXPECT_NEAR(train_loss(logits, labels, 0.1, teacher, 0.0, "ce").item(), ce, 1e-14);  // kd_ratio 0: no teacher term
  EXPECT_NEAR(train_loss(logits, labels, 0.1, teacher, 1.0, "ce").item(), kd_ce + ce, 1e-14);
  EXPECT_NEAR(train_loss(logits, labels, 0.1, teacher, 0.5, "mse").item(), 0.5 * mse + ce, 1e-14);
  EXPECT_NEAR(train_loss(logits, labels, 0.0, teacher, 2.0, "ce").item(), 2.0 * kd_ce + ce_ls_ref(x, y, 2, 3, 0.0),
              1e-14);
}

TEST(KdLoss, ErrorsNameTheProblem) {
  Tensor logits = randn_t({2, 3}, 5);
  Tensor labels = from_vector<int64_t>({0, 1}, {2});
  EXPECT_TRUE(has(error_of([&] { kd_loss(logits, randn_t({2, 3}, 6), "kl"); }), "unknown kd_type 'kl'"));
  const std::string shapes = error_of([&] { kd_loss(logits, randn_t({2, 4}, 6), "ce"); });
  EXPECT_TRUE(has(shapes, "[2, 3]") && has(shapes, "[2, 4]")) << shapes;
  EXPECT_TRUE(has(error_of([&] { train_loss(logits, labels, 0.1, Tensor(), 1.0, "ce"); }), "needs teacher_logits"));
}
