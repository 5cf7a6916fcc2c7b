// mpi-ranks: 2 3
// Gradient averaging (GradientSync, the code DistributedRunManager runs once
// per optimizer step): W ranks x batch B give the loss, gradients and
// weights of 1 process x batch W*B within float tolerance. Shown on a
// BN-free model (two Linear layers, ReLU, cross-entropy): with BatchNorm in
// training mode each rank normalises with its own batch's statistics (the
// reference has no SyncBN), so the OFA network's losses are not those of the
// big batch by design. Also: bucket layouts (tiny buckets: one tensor per
// bucket; huge: all in one; mixed dtypes), parameters without a gradient,
// different gradient sets refused, and the bucketed broadcast of a state.
// The overlapped form (arm, leaf hook, finish) gives average()'s gradients
// bit for bit, launches buckets while backward runs, and launches them in
// plan order whatever order the hook reports parameters in.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <tuple>

#include "distributed/gradient_sync.h"
#include "engine/random.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "tests/mpi/mpi_test_util.h"
#include "tests/support/tiny_mlp.h"

using namespace ofa;
using ofa::test::has;
using ofa::test::world;

namespace {

int64_t R() { return world()->rank(); }
int64_t W() { return world()->world_size(); }

using Mlp = test::TinyMlp;

std::unique_ptr<nn::SGD> sgd(const Mlp& m) {
  nn::ParamGroup g;
  g.params = m.named_parameters();
  g.lr = 0.1;
  g.momentum = 0.9;
  g.weight_decay = 1e-3;
  return std::make_unique<nn::SGD>(std::vector<nn::ParamGroup>{g});
}

// The global batch of step s: W*B images, labels in [0, 5).
Tensor images(int64_t step, int64_t n) { return test::randn_t({n, 13}, 100 + static_cast<uint64_t>(step), DType::F32); }
Tensor labels(int64_t step, int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = (i * 3 + step) % 5;
  return from_vector<int64_t>(v, {n});
}

// Bucket MB; averaging after backward (false) or overlapped with it (true).
class GradientAveraging : public ::testing::TestWithParam<std::tuple<double, bool>> {};

TEST_P(GradientAveraging, WRanksTimesBatchBMatchOneProcessTimesBatchWB) {
  const int64_t B = 6, N = B * W();
  Mlp dist_model(7), ref_model(7);
  auto dist_opt = sgd(dist_model), ref_opt = sgd(ref_model);
  const double mb = std::get<0>(GetParam());
  const bool overlapped = std::get<1>(GetParam());
  dist::GradientSync sync(world(), mb);
  for (int64_t step = 0; step < 3; ++step) {
    const Tensor x = images(step, N), y = labels(step, N);
    // This rank: its B images.
    dist_model.zero_grad();
    Tensor loss = cross_entropy(dist_model.forward(x.narrow(0, R() * B, B).contiguous()), y.narrow(0, R() * B, B).contiguous());
    if (overlapped) {
      sync.arm(dist_model.named_parameters(), loss);
      {
        LeafGradHookGuard hook(sync.leaf_hook());
        loss.backward();
      }
      sync.finish();
      EXPECT_EQ(sync.last().buckets_in_backward, sync.last().buckets);
    } else {
      loss.backward();
      sync.average(dist_model.named_parameters());
    }
    dist_opt->step();
    std::vector<double> lv = {loss.item()};
    world()->allreduce_sum(lv);
    // The reference: one process, all N images.
    ref_model.zero_grad();
    Tensor ref_loss = cross_entropy(ref_model.forward(x), y);
    ref_loss.backward();
    const auto dp = dist_model.named_parameters(), rp = ref_model.named_parameters();
    for (size_t k = 0; k < dp.size(); ++k)
      EXPECT_TRUE(test::all_close(dp[k].second.grad(), rp[k].second.grad(), 1e-6, 1e-5))
          << "step " << step << " gradient of " << dp[k].first;
    ref_opt->step();
    EXPECT_NEAR(lv[0] / static_cast<double>(W()), ref_loss.item(), 1e-6) << "step " << step;
    for (size_t k = 0; k < dp.size(); ++k)
      EXPECT_TRUE(test::all_close(dp[k].second, rp[k].second, 1e-6, 1e-5)) << "step " << step << " " << dp[k].first;
  }
  EXPECT_EQ(sync.last().tensors, 4);
  EXPECT_EQ(sync.last().elements, 13 * 9 + 9 + 9 * 5 + 5);
  if (mb < 1e-4) EXPECT_EQ(sync.last().buckets, 4);  // every tensor alone
  if (mb >= 1) EXPECT_EQ(sync.last().buckets, 1);
}

// 64 bytes: one bucket per tensor; 0.0002 MB (209 bytes): some share; 25 MB: all in one.
INSTANTIATE_TEST_SUITE_P(BucketSizes, GradientAveraging,
                         ::testing::Combine(::testing::Values(1e-5, 2e-4, 25.0), ::testing::Bool()));

TEST(GradientSync, MixedDtypesAndParametersWithoutAGradient) {
  Tensor a = full({5}, 0.0, DType::F32).set_requires_grad(true);
  Tensor b = full({3, 3}, 0.0, DType::F64).set_requires_grad(true);
  Tensor c = full({2}, 0.0, DType::F32).set_requires_grad(true);  // no gradient: left alone
  Tensor d = full({7}, 0.0, DType::F32).set_requires_grad(true);
  a.set_grad(full({5}, static_cast<double>(R() + 1), DType::F32));
  b.set_grad(full({3, 3}, static_cast<double>(10 * (R() + 1)), DType::F64));
  d.set_grad(full({7}, static_cast<double>(R()), DType::F32));
  dist::GradientSync sync(world(), 1.0);
  sync.average({{"a", a}, {"b", b}, {"c", c}, {"d", d}});
  const double mean = static_cast<double>(W() + 1) / 2.0;
  EXPECT_TRUE(test::all_close(a.grad(), std::vector<double>(5, mean), 1e-7, 0));
  EXPECT_TRUE(test::all_close(b.grad(), std::vector<double>(9, 10 * mean), 1e-12, 0));
  EXPECT_TRUE(test::all_close(d.grad(), std::vector<double>(7, mean - 1), 1e-7, 0));
  EXPECT_FALSE(c.grad().defined());
  // Order d, c, b, a reversed; the F64 tensor splits the F32 ones: 3 buckets.
  EXPECT_EQ(sync.last().buckets, 3);
  EXPECT_EQ(sync.last().tensors, 3);
}

TEST(GradientSync, DifferentGradientSetsAreRefusedOnEveryRank) {
  Tensor a = zeros({4}).set_requires_grad(true), b = zeros({4}).set_requires_grad(true);
  a.set_grad(ones({4}));
  if (R() == 0) b.set_grad(ones({4}));
  dist::GradientSync sync(world(), 1.0);
  const std::string e = test::error_of([&] { sync.average({{"a", a}, {"b", b}}); });
  EXPECT_TRUE(has(e, "rank " + std::to_string(R()) + ": gradient averaging")) << e;
  EXPECT_TRUE(has(e, "different parameters")) << e;
  EXPECT_TRUE(has(e, R() == 0 ? "this rank: 2 tensors" : "this rank: 1 tensors")) << e;
  world()->barrier();
}

// A deeper BN-free model whose second "subnet" skips two layers (OFA's
// elastic depth): in a step of two passes fc2 and fc3 get their gradient from
// the first pass only, and `spare` never gets one.
struct SkipNet : nn::Module {
  std::shared_ptr<nn::Linear> fc1, fc2, fc3, fc4, spare;
  explicit SkipNet(uint64_t seed) {
    Generator g(seed);
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(13, 16, true, &g));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(16, 16, true, &g));
    fc3 = register_module("fc3", std::make_shared<nn::Linear>(16, 16, true, &g));
    spare = register_module("spare", std::make_shared<nn::Linear>(16, 16, true, &g));
    fc4 = register_module("fc4", std::make_shared<nn::Linear>(16, 5, true, &g));
  }
  Tensor forward(const Tensor& x, bool deep) const {
    Tensor h = relu(fc1->forward(x));
    if (deep) h = relu(fc3->forward(relu(fc2->forward(h))));
    return fc4->forward(h);
  }
};

::testing::AssertionResult same_bits(const Tensor& a, const Tensor& b) {
  if (a.defined() != b.defined()) return ::testing::AssertionFailure() << "one is undefined";
  if (!a.defined()) return ::testing::AssertionSuccess();
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return ::testing::AssertionFailure() << "shape or dtype";
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  if (std::memcmp(ca.raw_data(), cb.raw_data(), static_cast<size_t>(a.numel()) * dtype_size(a.dtype())) != 0)
    return ::testing::AssertionFailure() << "the bits differ";
  return ::testing::AssertionSuccess();
}

// One step of two passes (deep, then shallow) on this rank's shard; the
// overlapped form around the last pass, or average() after it.
Tensor two_pass_step(SkipNet& m, dist::GradientSync& sync, int64_t step, bool overlapped, std::vector<int64_t>* seqs) {
  const int64_t B = 4, N = B * W();
  const Tensor x = images(step, N).narrow(0, R() * B, B).contiguous(), y = labels(step, N).narrow(0, R() * B, B).contiguous();
  m.zero_grad();
  cross_entropy(m.forward(x, true), y).backward();
  Tensor last = cross_entropy(m.forward(x, false), y);
  if (!overlapped) {
    last.backward();
    sync.average(m.named_parameters());
    return last;
  }
  sync.arm(m.named_parameters(), last);
  if (seqs) seqs->push_back(world()->last_seq());
  const LeafGradHook h = sync.leaf_hook();
  {
    LeafGradHookGuard guard([&](const Tensor& leaf) {
      h(leaf);
      if (seqs) seqs->push_back(world()->last_seq());
    });
    last.backward();
  }
  sync.finish();
  return last;
}

TEST(GradientSync, OverlappedWithTheLastBackwardGivesAveragesBitsAndWeights) {
  SkipNet a(11), b(11);
  auto opt = [](const SkipNet& m) {
    nn::ParamGroup g;
    g.params = m.named_parameters();
    g.lr = 0.05;
    g.momentum = 0.9;
    g.weight_decay = 1e-3;
    return std::make_unique<nn::SGD>(std::vector<nn::ParamGroup>{g});
  };
  auto opt_a = opt(a), opt_b = opt(b);
  // 1 KB buckets: fc1.weight (832 B) shares one with its bias, the 16x16 weights are alone.
  dist::GradientSync plain(world(), 1.0 / 1024), overlapped(world(), 1.0 / 1024);
  for (int64_t step = 0; step < 4; ++step) {
    two_pass_step(a, plain, step, false, nullptr);
    const int64_t seq_before = world()->last_seq();
    std::vector<int64_t> seqs;
    two_pass_step(b, overlapped, step, true, &seqs);
    const auto pa = a.named_parameters(), pb = b.named_parameters();
    for (size_t k = 0; k < pa.size(); ++k)
      EXPECT_TRUE(same_bits(pa[k].second.grad(), pb[k].second.grad())) << "step " << step << " grad of " << pa[k].first;
    EXPECT_FALSE(b.spare->weight.grad().defined()) << "a parameter without a gradient got one";
    const auto& s = overlapped.last();
    EXPECT_EQ(s.tensors, 8);
    EXPECT_EQ(s.buckets, 5);
    EXPECT_EQ(plain.last().buckets, 5);
    EXPECT_EQ(plain.last().buckets_at_arm, 5);
    // The last pass reaches fc4 and fc1 only; fc4's bucket also holds fc3.bias
    // (final at arm) and comes first in the plan, so nothing goes at arm and
    // everything goes from the hook, i.e. while backward runs.
    EXPECT_EQ(s.buckets_at_arm, 0);
    EXPECT_EQ(s.buckets_in_backward, 5);
    EXPECT_EQ(s.buckets_at_finish, 0);
    // The communicator saw it: 5 allreduces issued between arm and the last
    // leaf report, which backward makes before it returns.
    ASSERT_EQ(seqs.size(), 5u) << "arm, then fc4 and fc1's weights and biases";
    EXPECT_EQ(seqs.back(), seqs.front() + 5);
    opt_a->step();
    opt_b->step();
    for (size_t k = 0; k < pa.size(); ++k)
      EXPECT_TRUE(same_bits(pa[k].second, pb[k].second)) << "step " << step << " weight " << pa[k].first;
  }
  // The averaging did something: every rank holds the same weights, which
  // without it they would not (each rank's gradients differ).
  auto gathered = [](const std::vector<double>& mine) {
    return world()->allgather(from_vector<double>(mine, {static_cast<int64_t>(mine.size())})).to_vector<double>();
  };
  std::vector<double> weights, own_grads;
  for (const auto& kv : b.named_parameters()) weights.push_back(sum(kv.second.detach().to(DType::F64)).item());
  const std::vector<double> all_weights = gathered(weights);
  for (size_t i = 0; i < weights.size(); ++i) EXPECT_EQ(all_weights[i + weights.size()], all_weights[i]) << i;
  SkipNet lone(11);
  lone.zero_grad();
  const int64_t B = 4, N = B * W();
  cross_entropy(lone.forward(images(0, N).narrow(0, R() * B, B).contiguous(), true),
                labels(0, N).narrow(0, R() * B, B).contiguous()).backward();
  own_grads.push_back(sum(lone.fc1->weight.grad()).item());
  const std::vector<double> all_grads = gathered(own_grads);
  EXPECT_NE(all_grads[0], all_grads[1]) << "the ranks' gradients did not differ: the comparison above proves nothing";
}

TEST(GradientSync, BucketsGoInPlanOrderWhateverOrderTheHookReportsParameters) {
  // Four parameters of distinct sizes, 64-byte buckets: one bucket each, so an
  // allreduce issued out of order would be a descriptor mismatch (a CommError).
  std::vector<Tensor> p;
  nn::NamedTensors params;
  for (int64_t i = 0; i < 4; ++i) {
    p.push_back(zeros({20 + i}).set_requires_grad(true));
    params.emplace_back("p" + std::to_string(i), p.back());
  }
  Tensor loss = zeros({});
  for (const Tensor& t : p) loss = add(loss, sum(t));
  for (int64_t i = 0; i < 4; ++i) p[static_cast<size_t>(i)].set_grad(full({20 + i}, static_cast<double>(R() + 10 * i)));
  dist::GradientSync sync(world(), 1e-5);
  sync.arm(params, loss);  // every parameter is reached: nothing is final yet
  EXPECT_EQ(sync.last().buckets, 4);
  EXPECT_EQ(sync.last().buckets_at_arm, 0);
  // The plan is p3, p2, p1, p0. Rank 0 reports p0 first (plan order reversed:
  // nothing can go before the last report), the others p3 first (each report
  // completes the next bucket).
  std::vector<size_t> order = {0, 1, 2, 3};
  if (R() != 0) std::reverse(order.begin(), order.end());
  const LeafGradHook h = sync.leaf_hook();
  std::vector<int64_t> launched;
  const int64_t seq0 = world()->last_seq();
  for (size_t k : order) {
    h(p[k]);
    launched.push_back(world()->last_seq() - seq0);
  }
  sync.finish();
  EXPECT_EQ(launched, R() == 0 ? std::vector<int64_t>({0, 0, 0, 4}) : std::vector<int64_t>({1, 2, 3, 4}));
  EXPECT_EQ(sync.last().buckets_in_backward, 4);
  const double mean_rank = static_cast<double>(W() - 1) / 2.0;
  for (int64_t i = 0; i < 4; ++i)
    EXPECT_TRUE(test::all_close(p[static_cast<size_t>(i)].grad(),
                                std::vector<double>(static_cast<size_t>(20 + i), mean_rank + 10 * i), 1e-12, 0))
        << "p" << i;
  // An unfinished arm is refused, and so is a finish without one.
  sync.arm(params, loss);
  EXPECT_TRUE(has(test::error_of([&] { sync.arm(params, loss); }), "never finished"));
  sync.finish();
  EXPECT_TRUE(has(test::error_of([&] { sync.finish(); }), "nothing is armed"));
}

TEST(GradientSync, BroadcastTensorsGivesEveryRankRootsState) {
  for (int64_t root : {int64_t{0}, W() - 1}) {
    std::vector<Tensor> ts = {full({3, 4}, static_cast<double>(R()), DType::F32),
                              full({}, static_cast<double>(R() * 5), DType::I64),
                              full({2, 2}, static_cast<double>(R()) + 0.5, DType::F64),
                              full({9}, static_cast<double>(-R()), DType::F32).narrow(0, 2, 5)};
    dist::broadcast_tensors(*world(), ts, root, 16);
    EXPECT_TRUE(test::all_close(ts[0], std::vector<double>(12, static_cast<double>(root)), 0, 0));
    EXPECT_EQ(ts[1].item(), static_cast<double>(root * 5));
    EXPECT_TRUE(test::all_close(ts[2], std::vector<double>(4, static_cast<double>(root) + 0.5), 0, 0));
    EXPECT_TRUE(test::all_close(ts[3], std::vector<double>(5, static_cast<double>(-root)), 0, 0));
  }
}

TEST(GradientSync, SignaturesDependOnNamesSizesDtypesAndOrder) {
  const nn::NamedTensors a = {{"x", zeros({3})}, {"y", zeros({4})}};
  EXPECT_EQ(dist::tensor_list_signature(a), dist::tensor_list_signature({{"x", zeros({3})}, {"y", ones({4})}}));
  EXPECT_NE(dist::tensor_list_signature(a), dist::tensor_list_signature({{"y", zeros({4})}, {"x", zeros({3})}}));
  EXPECT_NE(dist::tensor_list_signature(a), dist::tensor_list_signature({{"x", zeros({3})}, {"y", zeros({5})}}));
  EXPECT_NE(dist::tensor_list_signature(a),
            dist::tensor_list_signature({{"x", zeros({3})}, {"y", zeros({4}, DType::F64)}}));
}

}  // namespace
