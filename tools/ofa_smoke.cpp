// ofa_smoke: proves the engine trains. A small MobileNetV3-like network
// (nn/smoke_net.h) learns a fixed batch of Fashion-MNIST training images to
// zero training error, then is evaluated on held-out test images.
// Exit status 0 only when the batch was learned within --max-steps.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "data/idx.h"
#include "engine/autograd.h"
#include "engine/ops.h"
#include "nn/optim.h"
#include "nn/smoke_net.h"

using namespace ofa;

namespace {

struct Options {
  std::string data_dir = data::fashion_mnist_dir();
  int64_t batch = 128;
  int64_t max_steps = 300;
  int64_t test_images = 1000;
  double lr = 0.05;
  uint64_t seed = 0;
};

void usage(FILE* out) {
  std::fprintf(out,
               "usage: ofa_smoke [--data-dir DIR] [--batch N] [--max-steps N] [--test-images N] [--lr X] [--seed S]\n"
               "\n"
               "Trains a small MobileNetV3-like network on one fixed batch of Fashion-MNIST\n"
               "training images until it classifies every image of the batch correctly, then\n"
               "reports accuracy on test images. Exits 0 when the batch was learned.\n"
               "\n"
               "  --data-dir DIR     Fashion-MNIST IDX files (default %s,\n"
               "                     or $OFA_FASHION_MNIST_DIR; Debian package dataset-fashion-mnist)\n"
               "  --batch N          images in the fixed training batch (default 128)\n"
               "  --max-steps N      give up after N SGD steps (default 300)\n"
               "  --test-images N    test images to evaluate on afterwards (default 1000, 0 to skip)\n"
               "  --lr X             SGD learning rate, momentum 0.9 Nesterov (default 0.05)\n"
               "  --seed S           initialisation seed (default 0)\n",
               data::fashion_mnist_dir().c_str());
}

int64_t parse_int(const char* flag, const char* v) {
  char* end = nullptr;
  long long x = std::strtoll(v, &end, 10);
  if (!*v || *end || x < 0) throw Error(std::string(flag) + ": expected a non-negative integer, got '" + v + "'");
  return x;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      usage(stdout);
      std::exit(0);
    }
    if (i + 1 >= argc) throw Error("unknown option or missing value: " + a + " (see --help)");
    const char* v = argv[++i];
    if (a == "--data-dir") o.data_dir = v;
    else if (a == "--batch") o.batch = parse_int("--batch", v);
    else if (a == "--max-steps") o.max_steps = parse_int("--max-steps", v);
    else if (a == "--test-images") o.test_images = parse_int("--test-images", v);
    else if (a == "--seed") o.seed = static_cast<uint64_t>(parse_int("--seed", v));
    else if (a == "--lr") o.lr = std::atof(v);
    else throw Error("unknown option " + a + " (see --help)");
  }
  if (o.batch < 1) throw Error("--batch must be at least 1");
  return o;
}

// The first n images of an IDX pair as [n, 3, 28, 28] (grey replicated to
// three channels, normalised with Fashion-MNIST's mean and std) and labels.
std::pair<Tensor, Tensor> load(const std::string& dir, const std::string& split, int64_t n) {
  data::IdxArray im = data::read_idx(dir + "/" + split + "-images-idx3-ubyte.gz");
  data::IdxArray lb = data::read_idx(dir + "/" + split + "-labels-idx1-ubyte.gz");
  OFA_CHECK(im.shape.size() == 3 && lb.shape.size() == 1 && im.shape[0] == lb.shape[0], dir, "/", split,
            ": images and labels do not match");
  n = std::min(n, im.shape[0]);
  const int64_t H = im.shape[1], W = im.shape[2];
  Tensor x = empty({n, 3, H, W});
  Tensor y = empty({n}, DType::I64);
  float* px = x.data<float>();
  int64_t* py = y.data<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    py[i] = lb.data[i];
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t p = 0; p < H * W; ++p) px[(i * 3 + c) * H * W + p] = (im.data[i * H * W + p] / 255.f - 0.2860f) / 0.3530f;
  }
  return {x, y};
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Options o = parse(argc, argv);
    auto [x, y] = load(o.data_dir, "train", o.batch);
    std::printf("ofa_smoke: %lld Fashion-MNIST training images from %s, %s build, %s\n",
                static_cast<long long>(x.size(0)), o.data_dir.c_str(), cuda_available() ? "CUDA" : "CPU", "float32");
    nn::SmokeNet net(3, 10, o.seed);
    int64_t n_params = 0;
    for (auto& [name, p] : net.named_parameters()) n_params += p.numel();
    std::printf("network: %lld parameters in %zu tensors\n", static_cast<long long>(n_params), net.named_parameters().size());
    nn::ParamGroup hyper;
    hyper.lr = o.lr;
    hyper.momentum = 0.9;
    hyper.nesterov = true;
    hyper.weight_decay = 3e-5;
    nn::SGD opt(nn::make_param_groups(net.named_parameters(), {"bn", "bias"}, hyper));

    auto t0 = std::chrono::steady_clock::now();
    int64_t step = 0;
    double top1 = 0, loss_v = 0;
    for (; step < o.max_steps; ++step) {
      net.train();
      opt.zero_grad();
      Tensor logits = net.forward(x);
      Tensor loss = cross_entropy(logits, y, 0.1);
      loss.backward();
      opt.step();
      loss_v = loss.item();
      if (!std::isfinite(loss_v)) throw Error("loss became " + std::to_string(loss_v) + " at step " + std::to_string(step));
      top1 = topk_accuracy(logits, y, {1})[0];
      if (step % 10 == 0 || top1 == 100.0)
        std::printf("step %4lld  loss %.4f  train top-1 %6.2f%%\n", static_cast<long long>(step), loss_v, top1);
      if (top1 == 100.0) break;
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const int64_t steps_run = std::min(step + 1, o.max_steps);
    std::printf("trained %lld steps in %.1f s (%.0f images/s forward+backward+update)\n",
                static_cast<long long>(steps_run), secs, steps_run * x.size(0) / secs);
    if (o.test_images > 0) {
      auto [tx, ty] = load(o.data_dir, "t10k", o.test_images);
      NoGradGuard ng;
      net.eval();
      std::vector<double> acc = topk_accuracy(net.forward(tx), ty, {1, 5});
      std::printf("test (%lld images, learned from only %lld): top-1 %.2f%%, top-5 %.2f%%\n",
                  static_cast<long long>(tx.size(0)), static_cast<long long>(x.size(0)), acc[0], acc[1]);
    }
    if (top1 < 100.0) {
      std::fprintf(stderr, "ofa_smoke: FAILED: the batch was not learned in %lld steps (train top-1 %.2f%%)\n",
                   static_cast<long long>(o.max_steps), top1);
      return 1;
    }
    std::printf("ofa_smoke: OK: the network learned the batch to zero training error\n");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ofa_smoke: error: %s\n", e.what());
    return 2;
  }
}
