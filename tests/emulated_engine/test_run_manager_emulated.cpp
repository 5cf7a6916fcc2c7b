// Training on `device: cuda` with the CUDA backend emulated on the CPU: the
// loader's pinned batches and their asynchronous upload, a RunManager stage
// against the same stage on the CPU, checkpoints written from the device and
// a bit-identical resume on it, and the error for a device that is not there.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "engine/cuda_context.h"
#include "engine/safetensors.h"
#include "ofa/run_data.h"
#include "ofa/run_manager.h"
#include "tests/cpu/fake_fashion_mnist.h"
#include "tests/support/run_logs.h"
#include "tests/support/emulated_cuda_env.h"
#include "tests/support/test_util.h"

namespace fs = std::filesystem;
using namespace ofa;

namespace {


struct Fixture {
  test::TempDir tmp;
  std::string data_dir;
  Fixture() {
    data_dir = tmp.path() + "/data";
    fs::create_directories(data_dir);
    test::write_fake_fashion_mnist(data_dir, 48, 16);
  }
  // A kernel-task stage without a teacher, small because the emulation is
  // slow: 1 epoch of 2 batches of 4 images at 24x24, 2 subnets per step,
  // dropout, then the validation of 2 subnets with BN recalibration.
  RunConfig config(const std::string& run, const std::vector<std::string>& overrides = {}) const {
    const std::string yaml = "task: kernel\n"
                             "dataset: fashion_mnist\n"
                             "data_path: " + data_dir + "\n"
                             "path: " + tmp.path() + "/" + run + "\n"
                             "kd_ratio: 0\n"
                             "valid_size: 8\n"
                             "base_batch_size: 4\n"
                             "image_size: [24]\n"
                             "valid_image_size: [24]\n"
                             "n_epochs: 1\n"
                             "warmup_epochs: 0\n"
                             "dynamic_batch_size: 2\n"
                             "max_train_batches: 2\n"
                             "print_frequency: 1\n"
                             "bn_calib_images: 4\n"
                             "bn_calib_batch_size: 4\n"
                             "n_worker: 1\n"
                             "dropout: 0.2\n"
                             "validate_before_training: false\n";
    return run_config_from_yaml_string(yaml, "test.yaml", overrides);
  }
};

StageOutcome run_stage(const RunConfig& cfg, bool resume, Device* used = nullptr) {
  auto data = std::make_shared<const RunData>(open_run_data(cfg));
  std::ostringstream out;
  RunOptions o;
  o.out = &out;
  RunManager rm(cfg, data, o);
  if (used) *used = rm.device();
  // The network and the optimizer live on the configured device.
  for (const auto& [name, p] : rm.net().named_parameters()) EXPECT_EQ(p.device(), rm.device()) << name;
  rm.start(resume);
  return rm.train();
}

TEST(LoaderPinnedEmulated, PinnedBatchesHoldTheSameValuesAndUploadAsynchronously) {
  Fixture f;
  const RunConfig cfg = f.config("x");
  RunData d = open_run_data(cfg);
  auto batches = [&](bool pin) {
    data::LoaderOptions o;
    o.batch_size = 8;
    o.image_size = {24, 28};
    o.n_worker = 2;
    o.seed = 5;
    o.pin_memory = pin;
    data::DistributedSampler s(d.train->size(), {});
    data::DataLoader l(d.train, s, o);
    l.set_epoch(1);
    std::vector<data::Batch> out;
    data::Batch b;
    while (l.next(b)) out.push_back(b);
    return out;
  };
  const auto plain = batches(false), pinned = batches(true);
  ASSERT_EQ(plain.size(), pinned.size());
  ASSERT_GE(plain.size(), 2u);
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_FALSE(plain[i].images.is_pinned());
    EXPECT_TRUE(pinned[i].images.is_pinned()) << "batch " << i;
    EXPECT_TRUE(pinned[i].labels.is_pinned()) << "batch " << i;
    EXPECT_EQ(plain[i].images.to_vector<float>(), pinned[i].images.to_vector<float>()) << "batch " << i;
    EXPECT_EQ(plain[i].labels.to_vector<int64_t>(), pinned[i].labels.to_vector<int64_t>()) << "batch " << i;
    data::Batch up = pinned[i];
    up.to_device(Device::cuda(0));
    EXPECT_TRUE(up.images.device().is_cuda());
    EXPECT_TRUE(up.labels.device().is_cuda());
    EXPECT_EQ(up.images.strides(), pinned[i].images.strides());  // channels-last kept
    EXPECT_EQ(up.images.to_vector<float>(), plain[i].images.to_vector<float>()) << "batch " << i;
    EXPECT_EQ(up.labels.to_vector<int64_t>(), plain[i].labels.to_vector<int64_t>()) << "batch " << i;
  }
}

// The same stage on the CPU and on the (emulated) GPU: same subnets, same
// batches, same dropout masks (Philox on both). The first step's loss (the
// forward of the initial weights) agrees closely. Later steps are not
// compared: in float32 the kernels round differently (other summation orders;
// the emulation's reference loops for cuBLAS and cuDNN) and batch norm over
// 4 values per channel at 1x1 amplifies that after an update by many orders
// (tests/cuda/test_model_cuda.cpp checks the steps themselves in float64).
// The CUDA run's checkpoint is written from the host and loads on the CPU.
TEST(RunManagerEmulated, ACudaStageTrainsLikeTheCpuStage) {
  Fixture f;
  const RunConfig cpu = f.config("cpu"), gpu = f.config("gpu", {"device=cuda"});
  Device used;
  ASSERT_EQ(run_stage(cpu, false, &used), StageOutcome::Finished);
  EXPECT_TRUE(used.is_cpu());
  ASSERT_EQ(run_stage(gpu, false, &used), StageOutcome::Finished);
  EXPECT_TRUE(used.is_cuda());
  const auto lc = test::train_losses(cpu.path), lg = test::train_losses(gpu.path);
  ASSERT_EQ(lc.size(), 2u);  // 2 batches, print_frequency 1
  ASSERT_EQ(lg.size(), lc.size());
  EXPECT_EQ(lg[0].first, 1);
  EXPECT_NEAR(lg[0].second, lc[0].second, 1e-5 * std::abs(lc[0].second));
  for (const auto& [step, loss] : lg) EXPECT_TRUE(std::isfinite(loss)) << "step " << step;
  SafetensorsFile fc = load_safetensors(cpu.path + "/final.safetensors"),
                  fg = load_safetensors(gpu.path + "/final.safetensors");
  ASSERT_EQ(fc.tensors.size(), fg.tensors.size());
  for (size_t i = 0; i < fc.tensors.size(); ++i) {
    ASSERT_EQ(fc.tensors[i].first, fg.tensors[i].first);
    const Tensor& b = fg.tensors[i].second;
    ASSERT_TRUE(b.device().is_cpu());
    ASSERT_EQ(fc.tensors[i].second.shape(), b.shape()) << fc.tensors[i].first;
    ASSERT_EQ(fc.tensors[i].second.dtype(), b.dtype()) << fc.tensors[i].first;
    if (b.dtype() == DType::F32)
      for (float v : b.to_vector<float>()) ASSERT_TRUE(std::isfinite(v)) << fc.tensors[i].first;
    else if (b.dtype() == DType::I64)  // num_batches_tracked: counted on the device as on the host
      EXPECT_EQ(b.to_vector<int64_t>(), fc.tensors[i].second.to_vector<int64_t>()) << fc.tensors[i].first;
  }
}

// A checkpoint written from the device (moved to the host, CRC over the host
// bytes) resumes on the device bit for bit.
TEST(RunManagerEmulated, ACudaRunResumesBitIdentically) {
  Fixture f;
  const RunConfig a = f.config("a", {"device=cuda"});
  ASSERT_EQ(run_stage(a, false), StageOutcome::Finished);
  const RunConfig b = f.config("b", {"device=cuda", "stop_after_steps=1"});
  ASSERT_EQ(run_stage(b, false), StageOutcome::Stopped);
  ASSERT_EQ(run_stage(f.config("b", {"device=cuda"}), true), StageOutcome::Finished);
  EXPECT_EQ(test::train_losses(b.path), test::train_losses(a.path));  // exact doubles
  test::expect_same_tensors(a.path + "/final.safetensors", b.path + "/final.safetensors");
}

TEST(RunManagerEmulated, AMissingDeviceNamesTheRemedies) {
  Fixture f;
  try {
    run_stage(f.config("x", {"device=cuda:3"}), false);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_TRUE(test::has(m, "'cuda:3'")) << m;
    EXPECT_TRUE(test::has(m, "only 1 CUDA device(s)")) << m;
    EXPECT_TRUE(test::has(m, "device: cpu")) << m;
  }
}

}  // namespace
