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
#include <gtest/gtest.h>

#include <cmath>

#include "distributed/gradient_sync.h"
#include "engine/random.h"
#include "nn/layers.h"
#include "nn/optim.h"
#include "tests/mpi/mpi_test_util.h"

using namespace ofa;
using ofa::test::has;
using ofa::test::world;

namespace {

int64_t R() { return world()->rank(); }
int64_t W() { return world()->world_size(); }

struct Mlp : nn::Module {
  std::shared_ptr<nn::Linear> fc1, fc2;
  explicit Mlp(uint64_t seed) {
    Generator g(seed);
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(13, 9, true, &g));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(9, 5, true, &g));
    // Non-zero biases, the same on every rank.
    fc1->bias.detach().copy_(test::randn_t({9}, seed + 1, DType::F32));
    fc2->bias.detach().copy_(test::randn_t({5}, seed + 2, DType::F32));
  }
  Tensor forward(const Tensor& x) const { return fc2->forward(relu(fc1->forward(x))); }
};

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

class GradientAveraging : public ::testing::TestWithParam<double> {};  // bucket MB

TEST_P(GradientAveraging, WRanksTimesBatchBMatchOneProcessTimesBatchWB) {
  const int64_t B = 6, N = B * W();
  Mlp dist_model(7), ref_model(7);
  auto dist_opt = sgd(dist_model), ref_opt = sgd(ref_model);
  dist::GradientSync sync(world(), GetParam());
  for (int64_t step = 0; step < 3; ++step) {
    const Tensor x = images(step, N), y = labels(step, N);
    // This rank: its B images.
    dist_model.zero_grad();
    Tensor loss = cross_entropy(dist_model.forward(x.narrow(0, R() * B, B).contiguous()), y.narrow(0, R() * B, B).contiguous());
    loss.backward();
    sync.average(dist_model.named_parameters());
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
  if (GetParam() < 1e-4) EXPECT_EQ(sync.last().buckets, 4);  // every tensor alone
  if (GetParam() >= 1) EXPECT_EQ(sync.last().buckets, 1);
}

// 64 bytes: one bucket per tensor; 0.0002 MB (209 bytes): some share; 25 MB: all in one.
INSTANTIATE_TEST_SUITE_P(BucketSizes, GradientAveraging, ::testing::Values(1e-5, 2e-4, 25.0));

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
