// The smoke run on real data: Fashion-MNIST images (Debian package
// dataset-fashion-mnist), learned to zero training error and then better than
// chance on test images. Skipped, visibly, when the package is missing.
#include <fstream>

#include "data/idx.h"
#include "nn/optim.h"
#include "nn/smoke_net.h"
#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::test;

namespace {

std::pair<Tensor, Tensor> load(const std::string& split, int64_t n) {
  const std::string dir = data::fashion_mnist_dir();
  data::IdxArray im = data::read_idx(dir + "/" + split + "-images-idx3-ubyte.gz");
  data::IdxArray lb = data::read_idx(dir + "/" + split + "-labels-idx1-ubyte.gz");
  Tensor x = empty({n, 3, 28, 28});
  Tensor y = empty({n}, DType::I64);
  for (int64_t i = 0; i < n; ++i) {
    y.data<int64_t>()[i] = lb.data[i];
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t p = 0; p < 784; ++p) x.data<float>()[(i * 3 + c) * 784 + p] = (im.data[i * 784 + p] / 255.f - 0.286f) / 0.353f;
  }
  return {x, y};
}

TEST(FashionMnistSmoke, LearnsABatchAndGeneralisesAboveChance) {
  if (!std::ifstream(data::fashion_mnist_dir() + "/train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "SKIPPED: Fashion-MNIST not found in " << data::fashion_mnist_dir()
                 << " (install dataset-fashion-mnist)";
  auto [x, y] = load("train", 128);
  nn::SmokeNet net(3, 10, 0);
  nn::ParamGroup hyper;
  hyper.lr = 0.05;
  hyper.momentum = 0.9;
  hyper.nesterov = true;
  nn::SGD opt(nn::make_param_groups(net.named_parameters(), {"bn", "bias"}, hyper));
  double top1 = 0;
  for (int step = 0; step < 300 && top1 < 100.0; ++step) {
    opt.zero_grad();
    Tensor logits = net.forward(x);
    cross_entropy(logits, y, 0.1).backward();
    opt.step();
    top1 = topk_accuracy(logits, y, {1})[0];
  }
  EXPECT_EQ(top1, 100.0);
  auto [tx, ty] = load("t10k", 500);
  NoGradGuard ng;
  net.eval();
  EXPECT_GT(topk_accuracy(net.forward(tx), ty, {1})[0], 40.0);  // chance is 10%
}

}  // namespace
