// The engine trains: a small MobileNetV3-like network of the engine's ops
// (stem conv, BN, h-swish, 1x1 expand, depthwise 5x5 read from a 7x7 weight,
// SE, project, head, classifier) learns a fixed batch to zero training error.
#include "nn/optim.h"
#include "nn/smoke_net.h"
#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::test;

namespace {

struct RunResult {
  std::vector<double> losses;
  double final_top1 = 0;
  int64_t steps = 0;
};

// Random images with random labels: only memorisation can fit them, so
// reaching zero error shows that every gradient reaches its parameter.
RunResult train_fixed_batch(int64_t max_steps, uint64_t seed) {
  Tensor x = randn_t({32, 3, 16, 16}, seed, DType::F32);
  std::vector<int64_t> labels(32);
  for (int64_t i = 0; i < 32; ++i) labels[i] = (i * 7 + 3) % 10;
  Tensor y = from_vector<int64_t>(labels, {32});
  nn::SmokeNet net(3, 10, seed);
  nn::ParamGroup hyper;
  hyper.lr = 0.05;
  hyper.momentum = 0.9;
  hyper.nesterov = true;
  hyper.weight_decay = 3e-5;
  nn::SGD opt(nn::make_param_groups(net.named_parameters(), {"bn", "bias"}, hyper));
  RunResult r;
  for (r.steps = 0; r.steps < max_steps; ++r.steps) {
    opt.zero_grad();
    Tensor logits = net.forward(x);
    Tensor loss = cross_entropy(logits, y, 0.0);
    loss.backward();
    opt.step();
    r.losses.push_back(loss.item());
    r.final_top1 = topk_accuracy(logits, y, {1})[0];
    if (r.final_top1 == 100.0) break;
  }
  return r;
}

TEST(TrainingSmoke, SmallConvNetLearnsAFixedBatchToZeroTrainingError) {
  RunResult r = train_fixed_batch(200, 1);
  EXPECT_EQ(r.final_top1, 100.0) << "after " << r.steps << " steps, loss " << r.losses.back();
  EXPECT_LT(r.losses.back(), r.losses.front() * 0.5) << "loss did not fall: " << r.losses.front() << " -> " << r.losses.back();
}

TEST(TrainingSmoke, SameSeedGivesBitIdenticalLosses) {
  RunResult a = train_fixed_batch(8, 2), b = train_fixed_batch(8, 2);
  ASSERT_EQ(a.losses.size(), b.losses.size());
  for (size_t i = 0; i < a.losses.size(); ++i) EXPECT_EQ(a.losses[i], b.losses[i]) << "step " << i;
  RunResult c = train_fixed_batch(8, 3);
  EXPECT_NE(a.losses[0], c.losses[0]);
}

}  // namespace
