// The tape: backward through views and broadcasts, accumulation over several
// backward passes, no-grad scopes, and the gradient checker itself.
#include <algorithm>

#include "engine/autograd.h"
#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::test;

namespace {

TEST(Autograd, GradientsAccumulateOverTwoBackwards) {
  Tensor w = randn_t({3, 5}, 1).set_requires_grad(true);
  Tensor x = randn_t({3, 5}, 2);
  sum(mul(w, x)).backward();
  std::vector<double> g1 = w.grad().to_vector<double>();
  sum(mul(w, x)).backward();
  std::vector<double> g2 = w.grad().to_vector<double>();
  for (size_t i = 0; i < g1.size(); ++i) EXPECT_DOUBLE_EQ(g2[i], 2 * g1[i]);
  w.zero_grad();
  EXPECT_EQ(sum(w.grad()).item(), 0.0);
  sum(mul(w, x)).backward();
  EXPECT_TRUE(all_close(w.grad(), g1, 0, 0));
}

TEST(Autograd, TwoSubnetsSumIntoTheFullWeightGradient) {
  // The OFA pattern: two "subnets" use different leading slices of one weight.
  Tensor w = randn_t({6, 4}, 3).set_requires_grad(true);
  sum(w.narrow(0, 0, 2)).backward();
  sum(mul(w.narrow(0, 0, 4), 2.0)).backward();
  std::vector<double> g = w.grad().to_vector<double>();
  for (int r = 0; r < 6; ++r)
    for (int c = 0; c < 4; ++c) EXPECT_EQ(g[r * 4 + c], r < 2 ? 3.0 : (r < 4 ? 2.0 : 0.0)) << r << "," << c;
}

TEST(Autograd, NoGradGuardRecordsNothing) {
  Tensor w = randn_t({3}, 4).set_requires_grad(true);
  Tensor y;
  {
    NoGradGuard ng;
    y = mul(w, 2.0);
    EXPECT_TRUE(GradMode::enabled() == false);
  }
  EXPECT_TRUE(GradMode::enabled());
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.grad_fn(), nullptr);
}

TEST(Autograd, BackwardNeedsAScalarOrAGradient) {
  Tensor w = randn_t({3}, 5).set_requires_grad(true);
  Tensor y = mul(w, 3.0);
  EXPECT_THROW(y.backward(), Error);
  y.backward(ones({3}, DType::F64));
  EXPECT_TRUE(all_close(w.grad(), std::vector<double>{3, 3, 3}, 0, 0));
  EXPECT_THROW(randn_t({1}, 6).backward(), Error);  // nothing requires grad
}

TEST(Autograd, InPlaceOnALeafThatRequiresGradIsRefused) {
  Tensor w = randn_t({3}, 7).set_requires_grad(true);
  EXPECT_THROW(w.fill_(0.0), Error);
  NoGradGuard ng;
  w.fill_(1.0);
  EXPECT_EQ(sum(w).item(), 3.0);
}

TEST(Autograd, DiamondGraphSumsBothPaths) {
  Tensor x = randn_t({4}, 8).set_requires_grad(true);
  Tensor a = mul(x, 2.0), b = mul(x, x);
  sum(add(a, b)).backward();
  std::vector<double> xv = x.to_vector<double>(), g = x.grad().to_vector<double>();
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(g[i], 2 + 2 * xv[i], 1e-12);
}

// What a LeafGradHook saw: which leaf, and a copy of its grad at that moment.
struct HookLog {
  std::vector<TensorImpl*> leaves;
  std::vector<Tensor> grads;
  LeafGradHook hook() {
    return [this](const Tensor& leaf) {
      leaves.push_back(leaf.impl());
      grads.push_back(leaf.grad().defined() ? leaf.grad().clone() : Tensor());
    };
  }
  int64_t count(const Tensor& t) const { return std::count(leaves.begin(), leaves.end(), t.impl()); }
  Tensor grad_of(const Tensor& t) const {
    for (size_t i = 0; i < leaves.size(); ++i)
      if (leaves[i] == t.impl()) return grads[i];
    return Tensor();
  }
};

TEST(LeafGradHook, FiresOncePerLeafAfterItsLastContributionWithTheFinalValue) {
  // w reaches the loss by three paths of different lengths (directly, through
  // one op, through three), and twice through one op (mul(w, w)); v by one.
  Tensor w = randn_t({5}, 21).set_requires_grad(true);
  Tensor v = randn_t({5}, 22).set_requires_grad(true);
  Tensor x = randn_t({5}, 23);  // a leaf that does not require grad
  HookLog log;
  Tensor a = mul(w, 2.0), h = relu(add(mul(w, w), v)), deep = hswish(mul(add(w, 1.0), x));
  Tensor loss = add(add(sum(w), sum(mul(a, x))), add(sum(h), sum(deep)));
  {
    LeafGradHookGuard guard(log.hook());
    loss.backward();
  }
  EXPECT_EQ(log.leaves.size(), 2u) << "one call per leaf that requires grad, none for x, a, h, deep or loss";
  EXPECT_EQ(log.count(w), 1);
  EXPECT_EQ(log.count(v), 1);
  // The value the hook saw is the final one (every path already summed in).
  EXPECT_TRUE(all_close(log.grad_of(w), w.grad(), 0, 0));
  EXPECT_TRUE(all_close(log.grad_of(v), v.grad(), 0, 0));
  // And it holds all three paths: compare with a backward per path.
  std::vector<double> per_path(5, 0.0);
  for (const Tensor& part : {sum(w), sum(mul(mul(w, 2.0), x)), sum(relu(add(mul(w, w), v))),
                             sum(hswish(mul(add(w, 1.0), x)))}) {
    w.set_grad(Tensor());
    part.backward();
    const std::vector<double> g = w.grad().to_vector<double>();
    for (size_t i = 0; i < g.size(); ++i) per_path[i] += g[i];
  }
  EXPECT_TRUE(all_close(log.grad_of(w), per_path, 1e-12, 1e-12));
}

TEST(LeafGradHook, ReportsTheAccumulatedGradOfASecondPassAndOnlyInsideItsScope) {
  Tensor w = randn_t({3}, 24).set_requires_grad(true);
  sum(mul(w, 3.0)).backward();  // no hook: nothing recorded anywhere
  HookLog outer, inner;
  {
    LeafGradHookGuard g1(outer.hook());
    {
      LeafGradHookGuard g2(inner.hook());
      sum(mul(w, 2.0)).backward();  // grad 3 + 2
    }
    sum(w).backward();  // the outer hook is back: grad 3 + 2 + 1
  }
  sum(w).backward();  // none again
  ASSERT_EQ(inner.leaves.size(), 1u);
  ASSERT_EQ(outer.leaves.size(), 1u);
  EXPECT_TRUE(all_close(inner.grads[0], std::vector<double>(3, 5.0), 0, 0));
  EXPECT_TRUE(all_close(outer.grads[0], std::vector<double>(3, 6.0), 0, 0));
  EXPECT_TRUE(all_close(w.grad(), std::vector<double>(3, 7.0), 0, 0));
}

TEST(LeafGradHook, ReachableLeavesAreTheLeavesThatRequireGrad) {
  Tensor w = randn_t({4}, 25).set_requires_grad(true);
  Tensor v = randn_t({4}, 26).set_requires_grad(true);
  Tensor unused = randn_t({4}, 27).set_requires_grad(true);
  Tensor x = randn_t({4}, 28);
  Tensor loss = sum(add(mul(w, x), mul(mul(v, w), 2.0)));
  std::vector<TensorImpl*> got;
  for (const Tensor& t : reachable_leaves(loss)) got.push_back(t.impl());
  std::sort(got.begin(), got.end());
  std::vector<TensorImpl*> want = {w.impl(), v.impl()};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
  EXPECT_TRUE(reachable_leaves(sum(x)).empty());
  // The same set as the hook then reports.
  HookLog log;
  {
    LeafGradHookGuard guard(log.hook());
    loss.backward();
  }
  std::sort(log.leaves.begin(), log.leaves.end());
  EXPECT_EQ(log.leaves, want);
  EXPECT_FALSE(unused.grad().defined());
}

TEST(Autograd, SavedTensorsAreFreedUnlessRetained) {
  Tensor x = randn_t({4}, 9).set_requires_grad(true);
  Tensor l = sum(mul(x, x));
  l.backward(Tensor(), /*retain_graph=*/true);
  l.backward();
  EXPECT_TRUE(all_close(x.grad(), mul(x, 4.0).detach(), 1e-12, 0));
  EXPECT_THROW(l.backward(), Error);
}

TEST(Autograd, ViewGradCheckNarrowPermuteExpandReshape) {
  Tensor x = randn_t({3, 4, 5}, 10).set_requires_grad(true);
  EXPECT_TRUE(grad_check(
      [](const std::vector<Tensor>& in) {
        Tensor v = in[0].narrow(1, 1, 2).permute({2, 0, 1}).reshape({5, 6});
        return mul(v, v.select(1, 0).unsqueeze(1).expand({5, 6}));
      },
      {x}));
}

TEST(Autograd, CentreCropViewGradientLandsInsideTheCrop) {
  Tensor w = randn_t({2, 1, 7, 7}, 11).set_requires_grad(true);
  sum(w.narrow(2, 2, 3).narrow(3, 2, 3)).backward();
  std::vector<double> g = w.grad().to_vector<double>();
  for (int c = 0; c < 2; ++c)
    for (int i = 0; i < 7; ++i)
      for (int j = 0; j < 7; ++j)
        EXPECT_EQ(g[c * 49 + i * 7 + j], (i >= 2 && i < 5 && j >= 2 && j < 5) ? 1.0 : 0.0);
}

TEST(Autograd, CopyAndDtypeConversionPassGradients) {
  Tensor x = randn_t({3, 2, 2, 2}, 12).set_requires_grad(true);
  EXPECT_TRUE(grad_check(
      [](const std::vector<Tensor>& in) { return mul(in[0].contiguous(MemoryFormat::ChannelsLast), 3.0).clone(); },
      {x}));
}

// The checker must catch a wrong backward: a deliberately broken op.
struct WrongBackward final : Node {
  std::vector<Tensor> apply(std::vector<Tensor>&& g) override { return {mul(g[0], 1.01)}; }
  std::string name() const override { return "WrongBackward"; }
};

TEST(GradCheck, CatchesAWrongGradient) {
  Tensor x = randn_t({5}, 13).set_requires_grad(true);
  auto broken = [](const std::vector<Tensor>& in) {
    Tensor y = in[0].detach().clone();
    if (any_requires_grad({&in[0]})) set_history(y, std::make_shared<WrongBackward>(), {&in[0]});
    return y;
  };
  EXPECT_FALSE(grad_check(broken, {x}));
}

TEST(GradCheck, RefusesWhenMostPointsAreKinks) {
  // relu of exact zeros: every point is a kink, so nothing could be proven.
  Tensor x = zeros({6}, DType::F64).set_requires_grad(true);
  EXPECT_FALSE(grad_check([](const std::vector<Tensor>& in) { return relu(in[0]); }, {x}));
}

// ---------------------------------------------------------------- reductions

TEST(Reduce, SumAndMeanOverDimsAgainstNaive) {
  Tensor x = randn_t({3, 13, 7, 7}, 14);
  std::vector<double> xv = x.to_vector<double>();
  Tensor s = sum(x, {0, 2}, true);
  EXPECT_EQ(s.shape(), (Shape{1, 13, 1, 7}));
  std::vector<double> want(13 * 7, 0.0);
  for (int n = 0; n < 3; ++n)
    for (int c = 0; c < 13; ++c)
      for (int h = 0; h < 7; ++h)
        for (int w = 0; w < 7; ++w) want[c * 7 + w] += xv[((n * 13 + c) * 7 + h) * 7 + w];
  EXPECT_TRUE(all_close(s, want, 1e-12, 1e-12));
  Tensor m = mean(x, {0, 2});
  EXPECT_EQ(m.shape(), (Shape{13, 7}));
  for (double& v : want) v /= 21.0;
  EXPECT_TRUE(all_close(m, want, 1e-12, 1e-12));
  double total = 0;
  for (double v : xv) total += v;
  EXPECT_NEAR(sum(x).item(), total, 1e-10);
  EXPECT_NEAR(mean(x.contiguous(MemoryFormat::ChannelsLast)).item(), total / xv.size(), 1e-12);
}

TEST(Reduce, SumGradCheck) {
  Tensor x = randn_t({3, 4, 5}, 15).set_requires_grad(true);
  EXPECT_TRUE(grad_check([](const std::vector<Tensor>& in) { return sum(in[0], {1}, false); }, {x}));
}

TEST(Reduce, MeanGradCheckNegativeDims) {
  Tensor x = randn_t({3, 4, 5}, 16).set_requires_grad(true);
  EXPECT_TRUE(grad_check([](const std::vector<Tensor>& in) { return mean(in[0], {-1, 0}, true); }, {x}));
}

TEST(Reduce, SumToUndoesBroadcast) {
  Tensor x = randn_t({2, 3, 4}, 17).set_requires_grad(true);
  Tensor s = sum_to(x, {3, 1});
  EXPECT_EQ(s.shape(), (Shape{3, 1}));
  EXPECT_TRUE(all_close(s, sum(x, {0, 2}).reshape({3, 1}), 1e-12, 0));
  EXPECT_TRUE(grad_check([](const std::vector<Tensor>& in) { return sum_to(in[0], {3, 1}); }, {x}));
  EXPECT_THROW(sum_to(x, {5}), Error);
}

TEST(Reduce, Float32SumIsAccumulatedInDouble) {
  Tensor x = full({1 << 20}, 0.1, DType::F32);
  EXPECT_NEAR(sum(x).item(), 0.1f * (1 << 20), 1e-2);
}

}  // namespace
