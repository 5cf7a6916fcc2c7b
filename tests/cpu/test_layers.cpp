// Basic layers: PyTorch's names and state_dict order, the reference's
// initialisation, BN's batch counter, and the depthwise route of Conv2d.
#include <cmath>

#include "nn/init.h"
#include "nn/layers.h"
#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::test;

namespace {

std::vector<std::string> keys(const nn::NamedTensors& t) {
  std::vector<std::string> k;
  for (auto& [n, v] : t) k.push_back(n);
  return k;
}

TEST(Layers, StateDictNamesAreTorchs) {
  EXPECT_EQ(keys(nn::BatchNorm2d(4).state_dict()),
            (std::vector<std::string>{"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}));
  EXPECT_EQ(keys(nn::Conv2d(3, 8, 3).state_dict()), (std::vector<std::string>{"weight"}));
  EXPECT_EQ(keys(nn::Conv2d(3, 8, 1, 1, 1, true).state_dict()), (std::vector<std::string>{"weight", "bias"}));
  EXPECT_EQ(keys(nn::Linear(5, 2).state_dict()), (std::vector<std::string>{"weight", "bias"}));
}

TEST(Layers, BatchNormCountsTrainingBatchesOnly) {
  nn::BatchNorm2d bn(3);
  Tensor x = randn_t({2, 3, 4, 4}, 1, DType::F32);
  bn.forward(x);
  bn.forward(x);
  EXPECT_EQ(bn.num_batches_tracked.item(), 2.0);
  bn.eval();
  bn.forward(x);
  EXPECT_EQ(bn.num_batches_tracked.item(), 2.0);
}

TEST(Layers, HeFoutInitialisationHasTheReferencesStd) {
  Generator g(3);
  nn::Conv2d c(64, 128, 3, 1, 1, false, &g);
  const double want = std::sqrt(2.0 / (3 * 3 * 128));
  Tensor w = c.weight.detach();
  const double m = mean(w).item();
  const double sd = std::sqrt(mean(mul(w, w)).item() - m * m);
  EXPECT_NEAR(m, 0.0, want * 0.02);
  EXPECT_NEAR(sd, want, want * 0.02);
}

TEST(Layers, LinearInitUniformWithinBoundAndZeroBias) {
  Generator g(4);
  nn::Linear l(100, 50, true, &g);
  const double bound = 0.1;
  std::vector<float> w = l.weight.to_vector<float>();
  float mn = 1, mx = -1;
  for (float v : w) mn = std::min(mn, v), mx = std::max(mx, v);
  EXPECT_GE(mn, -bound);
  EXPECT_LT(mx, bound);
  EXPECT_LT(mn, -0.09);  // the whole range is used
  EXPECT_GT(mx, 0.09);
  EXPECT_EQ(sum(l.bias).item(), 0.0);
}

TEST(Layers, DepthwiseConv2dLayerEqualsGroupedConv) {
  Generator g(5);
  nn::Conv2d dw(6, 6, 5, 2, 6, false, &g);
  Tensor x = randn_t({2, 6, 9, 7}, 6, DType::F32);
  Tensor y = dw.forward(x);
  Tensor ref = conv2d(x, dw.weight, Tensor(), {{2, 2}, {2, 2}, 6});
  EXPECT_TRUE(all_close(y, ref, 1e-5, 1e-5));
}

TEST(Layers, GroupsMustDivideChannels) { EXPECT_THROW(nn::Conv2d(6, 9, 3, 1, 4), Error); }

}  // namespace
