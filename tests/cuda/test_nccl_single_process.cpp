// NCCL in one process without MPI (the single-rank NCCL run of
// scripts/gpu_check.sh, whose GPU machine has no Open MPI):
//  - every collective (allreduce sum / average / max, broadcast, allgather)
//    of F32, F64 and I64 CUDA tensors goes through NCCL intact (with one rank
//    each is the identity, allgather a copy), the asynchronous handles too;
//  - the collectives are ordered after the engine's compute stream (which is
//    non-blocking: an order against the legacy default stream would not
//    hold) and the compute queued after wait() sees their result;
//  - GradientSync on the GPU (the buckets' pack, NCCL average, unpack), after
//    backward and overlapped with it, leaves one rank's gradients bit for bit;
//  - a DistributedRunManager stage on `device: cuda` over this communicator
//    logs the losses of a plain RunManager stage on the GPU.
// Reported as skipped without a GPU, on the emulated backend (no NCCL), or in
// a build without CUDA.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <sstream>

#include "engine/cuda_context.h"
#include "tests/support/test_util.h"

#ifdef OFA_WITH_CUDA
#include "distributed/distributed_run_manager.h"
#include "distributed/gradient_sync.h"
#include "distributed/nccl_communicator.h"
#include "ofa/run_data.h"
#include "tests/cpu/fake_fashion_mnist.h"
#include "tests/support/nccl_one_rank.h"
#include "tests/support/run_logs.h"
#include "tests/support/tiny_mlp.h"
#endif

using namespace ofa;

namespace {

#ifdef OFA_WITH_CUDA

#define OFA_REQUIRE_NCCL()                                                                           \
  do {                                                                                               \
    OFA_REQUIRE_CUDA();                                                                              \
    if (::ofa::cuda_emulated()) GTEST_SKIP() << "SKIPPED: the emulated CUDA backend has no NCCL";   \
  } while (0)

std::shared_ptr<dist::NcclCommunicator> nccl() {
  dist::CommOptions opt;
  opt.timeout_s = 60;
  return std::make_shared<dist::NcclCommunicator>(dist::single_process_nccl_host(), opt);
}

TEST(NcclSingleProcess, CollectivesOfEveryDtypeAreTheIdentity) {
  OFA_REQUIRE_NCCL();
  auto c = nccl();
  EXPECT_STREQ(c->host().name(), "single process");
  EXPECT_EQ(c->device(), Device::cuda(0));
  test::expect_one_rank_collectives(*c);
  // A CPU tensor is refused, naming the device.
  const std::string m = test::error_of([&] { c->allreduce(test::nccl_ramp(DType::F32, 3), dist::ReduceOp::Sum); });
  EXPECT_TRUE(test::has(m, "lives on cpu")) << m;
}

// `in` is produced by a long chain of kernels queued on the compute stream
// just before the allgather, into memory whose previous contents (-1) differ:
// an allgather not ordered after them copies stale or half-written values.
// The compute after wait() (out * 2) must see the gathered values.
TEST(NcclSingleProcess, CollectivesFollowTheComputeStreamAndPrecedeWhatFollowsWait) {
  OFA_REQUIRE_NCCL();
  auto c = nccl();
  EXPECT_EQ(c->compute_stream(), static_cast<void*>(cuda_stream(0)));
  const Device gpu = Device::cuda(0);
  const int64_t n = int64_t{1} << 24;
  for (int round = 0; round < 3; ++round) {
    Tensor out = full({1, n}, -1.0, DType::F32, gpu);
    Tensor x = full({n}, 1.0, DType::F32, gpu);
    for (int k = 0; k < 40; ++k) x = add(mul(x, 1.0), 0.5);  // 1 + 40 * 0.5 = 21, exactly
    auto w = c->allgather_async(x, out);
    w->wait();
    const Tensor twice = mul(out, 2.0);
    const std::vector<float> v = twice.to(Device::cpu()).to_vector<float>();
    int64_t wrong = 0;
    for (float f : v) wrong += f != 42.0f;
    EXPECT_EQ(wrong, 0) << "round " << round << ": elements not 2 * 21 (stale or unordered data)";
  }
}

// Buckets of 1e-4 MB (one tensor each) and 1 MB (all in one), after backward
// and overlapped with it: one rank's average is its own gradient, bit for bit.
TEST(NcclSingleProcess, GradientSyncOnTheGpuKeepsOneRanksGradientsBitForBit) {
  OFA_REQUIRE_NCCL();
  auto c = nccl();
  const Device gpu = Device::cuda(0);
  for (double mb : {1e-4, 1.0}) {
    for (bool overlapped : {false, true}) {
      test::TinyMlp m(3);
      m.to(gpu);
      const Tensor x = test::randn_t({6, 13}, 11, DType::F32).to(gpu);
      const Tensor y = from_vector<int64_t>({0, 1, 2, 3, 4, 2}, {6}).to(gpu);
      Tensor loss = cross_entropy(m.forward(x), y);
      dist::GradientSync sync(c, mb);
      std::vector<std::vector<float>> before;
      if (overlapped) {
        // The reference gradients from a separate pass, then the overlapped one.
        Tensor again = cross_entropy(m.forward(x), y);
        again.backward();
        for (const auto& [name, p] : m.named_parameters()) before.push_back(p.grad().to(Device::cpu()).to_vector<float>());
        m.zero_grad();
        sync.arm(m.named_parameters(), loss);
        {
          LeafGradHookGuard hook(sync.leaf_hook());
          loss.backward();
        }
        sync.finish();
        EXPECT_EQ(sync.last().buckets_in_backward, sync.last().buckets) << "mb " << mb;
      } else {
        loss.backward();
        for (const auto& [name, p] : m.named_parameters()) before.push_back(p.grad().to(Device::cpu()).to_vector<float>());
        sync.average(m.named_parameters());
      }
      EXPECT_EQ(sync.last().tensors, 4);
      EXPECT_EQ(sync.last().buckets, mb < 1e-3 ? 4 : 1);
      const auto ps = m.named_parameters();
      for (size_t k = 0; k < ps.size(); ++k) {
        ASSERT_TRUE(ps[k].second.grad().device().is_cuda()) << ps[k].first;
        EXPECT_EQ(ps[k].second.grad().to(Device::cpu()).to_vector<float>(), before[k])
            << ps[k].first << " mb " << mb << (overlapped ? " overlapped" : "");
      }
    }
  }
}

// One training stage on the GPU, plain and through DistributedRunManager over
// single-process NCCL (init_lr = base_lr * 1, the same shard, state broadcast
// and gradient averaging through NCCL): the same logged losses. cuDNN's
// weight-gradient algorithms may add in a different order from run to run,
// hence the relative 1e-5 rather than equality.
TEST(NcclSingleProcess, ADistributedRunManagerStageLogsThePlainStagesLosses) {
  OFA_REQUIRE_NCCL();
  test::TempDir tmp;
  const std::string data_dir = tmp.path() + "/data";
  std::filesystem::create_directories(data_dir);
  test::write_fake_fashion_mnist(data_dir, 48, 16);
  auto config = [&](const std::string& run) {
    const std::string yaml = "task: kernel\ndataset: fashion_mnist\ndata_path: " + data_dir + "\npath: " + tmp.path() +
                             "/" + run +
                             "\ndevice: cuda\nkd_ratio: 0\nvalid_size: 8\nbase_batch_size: 8\nimage_size: [32]\n"
                             "valid_image_size: [32]\nn_epochs: 1\nwarmup_epochs: 0\ndynamic_batch_size: 2\n"
                             "max_train_batches: 4\nprint_frequency: 1\nbn_calib_images: 8\nbn_calib_batch_size: 8\n"
                             "n_worker: 1\nvalidate_before_training: false\n";
    return run_config_from_yaml_string(yaml, "test.yaml", {});
  };
  std::ostringstream out;
  RunOptions o;
  o.out = &out;
  const RunConfig plain = config("plain"), distributed = config("nccl");
  {
    RunManager rm(plain, std::make_shared<const RunData>(open_run_data(plain)), o);
    rm.start(false);
    ASSERT_EQ(rm.train(), StageOutcome::Finished);
  }
  auto c = nccl();
  {
    DistributedRunManager rm(distributed, std::make_shared<const RunData>(open_run_data(distributed)), o, c);
    rm.start(false);
    ASSERT_EQ(rm.train(), StageOutcome::Finished);
    EXPECT_GT(rm.last_sync().buckets, 0);
  }
  EXPECT_GT(c->last_seq(), 0);  // the state broadcast and the averaging went through NCCL
  const auto lp = test::train_losses(plain.path), ln = test::train_losses(distributed.path);
  ASSERT_EQ(lp.size(), 4u);
  ASSERT_EQ(ln.size(), lp.size());
  for (size_t i = 0; i < lp.size(); ++i) {
    EXPECT_EQ(ln[i].first, lp[i].first);
    EXPECT_NEAR(ln[i].second, lp[i].second, 1e-5 * std::abs(lp[i].second)) << "step " << lp[i].first;
  }
  EXPECT_TRUE(std::filesystem::exists(distributed.path + "/final.safetensors"));
}

#else

TEST(NcclSingleProcess, CollectivesOfEveryDtypeAreTheIdentity) {
  GTEST_SKIP() << "SKIPPED: this build has no CUDA, so no NCCL communicator";
}

#endif

}  // namespace
