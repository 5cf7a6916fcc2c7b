// ofa_eval on the CUDA backend against the CPU on the same checkpoint:
//  - the actions in float64: BN recalibration, the evaluation logits and one
//    training step (loss, logits, every gradient, parameter and buffer after
//    the SGD step), tightly;
//  - the tool with --device cuda (float32): dumps written from the device
//    through the host, with the CPU run's names, shapes and dtypes, and the
//    logits after recalibration within float32 tolerance;
//  - the data mode: a random subnet recalibrated and evaluated on a small
//    Fashion-MNIST-format folder (pinned loader batches uploaded to the GPU).
// The CUDA kernels sum in other orders than the CPU's (and cuDNN / cuBLAS, or
// the emulation's reference loops for them, in theirs), so tolerances are
// scaled by each tensor's largest magnitude. On the GPU (cuda.*) and on the
// emulated backend (cuda_emulated.*); sizes are small for the emulation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/py_random.h"
#include "engine/safetensors.h"
#include "ofa/eval_data.h"
#include "ofa/eval_tensors.h"
#include "tests/cpu/fake_fashion_mnist.h"
#include "tests/support/test_util.h"

using namespace ofa;
namespace fs = std::filesystem;

namespace {

double max_abs(const Tensor& t) {
  double m = 0;
  for (double v : t.to(Device::cpu()).to(DType::F64).contiguous().to_vector<double>()) m = std::max(m, std::fabs(v));
  return m;
}

struct EvalFixture {
  test::TempDir tmp;
  std::string ck, in, calib, cfg;
  // Images of res x res pixels; n_calib calibration images.
  explicit EvalFixture(int64_t res = 32, int64_t n_calib = 4) {
    ck = tmp.file("supernet.safetensors");
    nn::OFAMobileNetV3 net(10, 0.1, 1e-5, 0.0);
    nn::save_supernet_checkpoint(ck, net);
    in = tmp.file("in.safetensors");
    save_safetensors(in, {{"images", test::randn_t({2, 3, res, res}, 5, DType::F32)},
                          {"labels", from_vector<int64_t>({3, 7}, {2})}});
    calib = tmp.file("calib.safetensors");
    save_safetensors(calib, {{"images", test::randn_t({n_calib, 3, res, res}, 6, DType::F32)}});
    cfg = tmp.file("run.yaml");
    std::ofstream(cfg) << "base_lr: 0.05\nmomentum: 0.9\nweight_decay: 3e-5\nlabel_smoothing: 0.1\n";
  }
  SafetensorsFile run(const std::string& device, const std::vector<std::string>& extra) const {
    const std::string dump = tmp.file("out_" + device + ".safetensors");
    std::vector<std::string> a = {"--checkpoint", ck, "--sample-seed", "11", "--tensors", in, "--dump", dump, "--device", device};
    a.insert(a.end(), extra.begin(), extra.end());
    std::ostringstream out;
    nn::run_ofa_eval(nn::parse_eval_args(a), out);
    return load_safetensors(dump);
  }
};

void expect_dumps_close(const SafetensorsFile& cpu, const SafetensorsFile& gpu, double rel) {
  ASSERT_EQ(cpu.tensors.size(), gpu.tensors.size());
  for (size_t i = 0; i < cpu.tensors.size(); ++i) {
    const auto& [name, a] = cpu.tensors[i];
    ASSERT_EQ(gpu.tensors[i].first, name);
    const Tensor& b = gpu.tensors[i].second;
    ASSERT_EQ(a.shape(), b.shape()) << name;
    ASSERT_EQ(a.dtype(), b.dtype()) << name;
    if (a.dtype() == DType::I64) {
      EXPECT_EQ(a.to_vector<int64_t>(), b.to_vector<int64_t>()) << name;
      continue;
    }
    EXPECT_TRUE(test::all_close(b, a, rel * std::max(max_abs(a), 1e-3), rel)) << name;
  }
}

// The actions themselves in float64 (the network converted, as the CUDA
// tests of the models do): BN recalibration, the evaluation logits and one
// training step on the GPU give the CPU's values to 1e-7 of each tensor's
// largest magnitude. In float32 the same step is ill-conditioned here (batch
// norm in training mode over 2 images at 1x1 in the last stages), so the
// tool-level test below checks it loosely and this one checks it tightly.
TEST(EvalCuda, RecalibrationLogitsAndTrainStepMatchTheCpuInFloat64) {
  OFA_REQUIRE_CUDA();
  EvalFixture f;
  auto open = [&](Device d) {
    nn::NetCheckpoint ck = nn::load_net_checkpoint(f.ck);
    PyRandom rng(11);
    ck.supernet->sample_active_subnet(rng);
    ck.module().to(DType::F64);
    ck.module().to(d);
    return ck;
  };
  const nn::NetCheckpoint cpu = open(Device::cpu()), gpu = open(Device::cuda(0));
  EXPECT_TRUE(gpu.module().device().is_cuda());
  const Tensor calib = test::randn_t({4, 3, 32, 32}, 6, DType::F64);
  const Tensor images = test::randn_t({2, 3, 32, 32}, 5, DType::F64);
  const Tensor labels = from_vector<int64_t>({3, 7}, {2});
  nn::recalibrate_bn(cpu, calib, 2);
  nn::recalibrate_bn(gpu, calib, 2);
  SafetensorsFile a, b;
  for (const auto& [name, t] : cpu.module().named_buffers()) a.tensors.emplace_back("recal." + name, t.clone());
  for (const auto& [name, t] : gpu.module().named_buffers()) b.tensors.emplace_back("recal." + name, t.to(Device::cpu()));
  a.tensors.emplace_back("logits", nn::eval_logits(cpu, images));
  const Tensor gl = nn::eval_logits(gpu, images);
  EXPECT_TRUE(gl.device().is_cuda());
  b.tensors.emplace_back("logits", gl.to(Device::cpu()));
  nn::TrainStepHyper h;
  h.lr = 0.05;
  for (auto& kv : nn::train_step(cpu, images, labels, h)) a.tensors.push_back(kv);
  for (auto& [name, t] : nn::train_step(gpu, images, labels, h)) b.tensors.emplace_back(name, t.to(Device::cpu()));
  ASSERT_GT(a.tensors.size(), 200u);
  expect_dumps_close(a, b, 1e-7);
}

// The largest |x - ref| over the elements (x float32, ref float64, both on the host).
double max_err(const Tensor& x, const Tensor& ref) {
  const std::vector<double> a = x.to(Device::cpu()).to(DType::F64).contiguous().to_vector<double>();
  const std::vector<double> b = ref.to(Device::cpu()).contiguous().to_vector<double>();
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// The tool on --device cuda (float32, as checkpoints are): the dumps written
// from the device have the CPU run's names, shapes and dtypes, and every value
// is finite; the logits (and the training step's loss) of both devices are
// within 1e-4 of the largest value of the float64 truth (the same actions on
// the CPU in float64). At 64 px (2x2 in the last stage) and with
// recalibration over 8 images in batches of 4 the net is well-conditioned:
// measured float32 errors 6e-6 of the scale at most (emulated backend; no
// TF32: cuBLAS runs in pedantic math, cuDNN in FMA math). At 32 px with 4
// calibration images, batch norm over 2 values at 1x1 made logits of 4e4
// whose float32 error, on either device, was 1e-2 of them and more.
TEST(EvalCuda, TheToolOnTheDeviceWritesTheCpuRunsDumps) {
  OFA_REQUIRE_CUDA();
  EvalFixture f(64, 8);
  const std::vector<std::string> calib = {"--calib-tensors", f.calib, "--calib-batch-size", "4"};
  std::vector<std::string> step = calib;
  for (const char* a : {"--train-step", "--config"}) step.push_back(a);
  step.push_back(f.cfg);
  // The float64 truth of both commands (the same actions on the CPU).
  nn::NetCheckpoint ck = nn::load_net_checkpoint(f.ck);
  PyRandom rng(11);
  ck.supernet->sample_active_subnet(rng);
  ck.module().to(DType::F64);
  const SafetensorsFile in = load_safetensors(f.in);
  nn::recalibrate_bn(ck, load_safetensors(f.calib).at("images").to(DType::F64), 4);
  const Tensor x64 = in.at("images").to(DType::F64);
  const Tensor truth_logits = nn::eval_logits(ck, x64);
  const nn::TrainStepHyper h = nn::train_step_hyper_from_config(f.cfg);
  const NamedTensorList truth_step = nn::train_step(ck, x64, in.at("labels"), h);

  for (bool train : {false, true}) {
    const SafetensorsFile cpu = f.run("cpu", train ? step : calib), gpu = f.run("cuda", train ? step : calib);
    ASSERT_EQ(gpu.tensors.size(), cpu.tensors.size());
    ASSERT_EQ(cpu.tensors.size(), train ? truth_step.size() : 1u);
    for (size_t i = 0; i < cpu.tensors.size(); ++i) {
      const auto& [name, a] = cpu.tensors[i];
      const Tensor& b = gpu.tensors[i].second;
      ASSERT_EQ(gpu.tensors[i].first, name);
      ASSERT_EQ(b.shape(), a.shape()) << name;
      ASSERT_EQ(b.dtype(), a.dtype()) << name;
      ASSERT_TRUE(b.device().is_cpu()) << name;
      if (b.dtype() == DType::F32)
        for (float v : b.to_vector<float>()) ASSERT_TRUE(std::isfinite(v)) << name;
    }
    // The outputs: logits (and the loss of the step).
    for (const std::string name : train ? std::vector<std::string>{"loss", "logits"} : std::vector<std::string>{"logits"}) {
      Tensor truth = truth_logits;
      if (train)
        for (const auto& [n, t] : truth_step)
          if (n == name) truth = t;
      const double e_cpu = max_err(cpu.at(name), truth), e_gpu = max_err(gpu.at(name), truth);
      std::printf("%s %s: float32 error against float64: cpu %.3g, cuda %.3g (|truth| max %.3g)\n",
                  train ? "train step" : "eval", name.c_str(), e_cpu, e_gpu, max_abs(truth));
      // The CPU's own bound says the setup is well-conditioned; the device's is the test.
      EXPECT_LE(e_cpu, 1e-4 * max_abs(truth)) << name << (train ? " (train step)" : " (eval)") << ", cpu";
      EXPECT_LE(e_gpu, 1e-4 * max_abs(truth)) << name << (train ? " (train step)" : " (eval)") << ", cuda";
    }
  }
}

TEST(EvalCuda, DataModeMatchesTheCpu) {
  OFA_REQUIRE_CUDA();
  test::TempDir tmp;
  const std::string data = tmp.file("fmnist");
  fs::create_directories(data);
  test::write_fake_fashion_mnist(data, 16, 8);
  const std::string ck = tmp.file("supernet.safetensors");
  nn::save_supernet_checkpoint(ck, nn::OFAMobileNetV3(10, 0.1, 1e-5, 0.0));
  auto eval = [&](const std::string& device) {
    std::ostringstream out, err;
    const std::vector<std::string> a = {"--checkpoint", ck, "--data", "fashion_mnist", "--data-path", data, "--random",
                                        "1", "--seed", "3", "--image-sizes", "28", "--calib-images", "16",
                                        "--calib-batch-size", "16", "--batch-size", "2", "--workers", "1", "--device",
                                        device};
    return run_eval_data(nn::parse_eval_args(a), out, err, false);
  };
  const std::vector<SubnetResult> cpu = eval("cpu"), gpu = eval("cuda");
  ASSERT_EQ(cpu.size(), 1u);
  ASSERT_EQ(gpu.size(), 1u);
  EXPECT_EQ(gpu[0].name, cpu[0].name);
  EXPECT_EQ(gpu[0].info.macs, cpu[0].info.macs);
  EXPECT_NEAR(gpu[0].metrics.loss, cpu[0].metrics.loss, 1e-4 * std::fabs(cpu[0].metrics.loss));
  // An untrained net's logits are close together: one of the 8 images may flip.
  EXPECT_LE(std::fabs(gpu[0].metrics.top1 - cpu[0].metrics.top1), 100.0 / 8 + 1e-9);
}

}  // namespace
