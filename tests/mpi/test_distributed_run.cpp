// mpi-ranks: 2
// DistributedRunManager on the OFA supernet: every rank holds the same
// weights after N steps (and without gradient averaging they would not: the
// ranks train on different shards), rank 0's checkpoint is what every rank
// holds, a stop request on one rank stops every rank after the same step,
// the meters and the log describe every rank's images, and the keys it
// cannot honour are refused.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>

#include "tests/mpi/dist_fixture.h"

using namespace ofa;
using namespace ofa::test;

namespace {

int64_t R() { return world()->rank(); }
int64_t W() { return world()->world_size(); }

// A manager that skips the gradient averaging: the negative control.
class NoSyncManager : public DistributedRunManager {
 public:
  using DistributedRunManager::DistributedRunManager;

 protected:
  void last_backward(const Tensor& loss) override { loss.backward(); }
  void sync_gradients() override {}
};

nn::NamedTensors run_and_keep_params(const RunConfig& cfg, bool sync) {
  auto data = std::make_shared<const RunData>(open_run_data(cfg));
  std::ostringstream out;
  RunOptions o;
  o.out = &out;
  std::unique_ptr<DistributedRunManager> rm;
  if (sync) rm = std::make_unique<DistributedRunManager>(cfg, data, o, world());
  else rm = std::make_unique<NoSyncManager>(cfg, data, o, world());
  rm->start(false);
  EXPECT_EQ(rm->train(), StageOutcome::Stopped);
  if (sync) {
    EXPECT_GT(rm->last_sync().tensors, 50);
    EXPECT_LE(rm->last_sync().tensors, static_cast<int64_t>(rm->net().named_parameters().size()));
    EXPECT_GT(rm->last_sync().elements, 1000000);
    if (R() == 0) EXPECT_TRUE(has(out.str(), "distributed: 2 ranks (mpi), gradients of")) << out.str();
  }
  nn::NamedTensors params;
  for (const auto& [name, p] : rm->net().named_parameters()) params.emplace_back(name, p.detach().clone());
  return params;
}

TEST(DistributedRun, EveryRankHoldsTheSameWeightsAfterNStepsAndRankZerosCheckpointIsThem) {
  DistFixture f;
  const RunConfig cfg = f.config("sync", {"stop_after_steps=2"});
  const nn::NamedTensors params = run_and_keep_params(cfg, true);
  const auto rows = gathered_checksums(params);
  for (int64_t r = 1; r < W(); ++r)
    for (size_t k = 0; k < params.size(); ++k)
      ASSERT_EQ(rows[static_cast<size_t>(r)][k], rows[0][k]) << "rank " << r << " differs in " << params[k].first;
  // The checkpoint rank 0 wrote holds exactly every rank's parameters.
  const auto cks = list_checkpoints(cfg.path + "/checkpoint");
  ASSERT_EQ(cks.size(), 1u);
  const SafetensorsFile ck = read_training_checkpoint(cks[0]);
  EXPECT_EQ(train_state_of(ck).step, 2);
  size_t compared = 0;
  for (const auto& [name, p] : params)
    for (const auto& [cname, t] : ck.tensors)
      if (cname == name) {
        ASSERT_EQ(0, std::memcmp(t.contiguous().raw_data(), p.contiguous().raw_data(),
                                 static_cast<size_t>(p.numel()) * dtype_size(p.dtype())))
            << name;
        ++compared;
      }
  EXPECT_EQ(compared, params.size());

  // Negative control: without the averaging the ranks drift apart.
  const nn::NamedTensors lone = run_and_keep_params(f.config("nosync", {"stop_after_steps=2"}), false);
  const auto lone_rows = gathered_checksums(lone);
  size_t differ = 0;
  for (size_t k = 0; k < lone.size(); ++k) differ += lone_rows[1][k] != lone_rows[0][k];
  EXPECT_GT(differ, lone.size() / 2) << "the shards did not differ: the test above proves nothing";
  world()->barrier();
}

// Every gradient of the supernet (different on every rank: different
// images) concatenated into one float32 vector.
Tensor flat_grads(const nn::NamedTensors& params) {
  int64_t n = 0;
  for (const auto& kv : params)
    if (kv.second.grad().defined()) n += kv.second.numel();
  Tensor flat = empty({n}, DType::F32);
  int64_t off = 0;
  for (const auto& kv : params) {
    const Tensor g = kv.second.grad();
    if (!g.defined()) continue;
    flat.narrow(0, off, g.numel()).view(g.shape()).copy_(g);
    off += g.numel();
  }
  return flat;
}

TEST(DistributedRun, SyncGradientsAveragesEverySupernetGradientInBuckets) {
  DistFixture f;
  const RunConfig cfg = f.config("grads", {"allreduce_bucket_mb=1"});
  auto data = std::make_shared<const RunData>(open_run_data(cfg));
  DistributedRunManager rm(cfg, data, RunOptions{}, world());
  rm.net().train();
  const Tensor x = randn_t({3, 3, 24, 24}, 50 + static_cast<uint64_t>(R()), DType::F32);
  const Tensor y = from_vector<int64_t>({R() % 10, 3, 7}, {3});
  cross_entropy(rm.net().forward(x), y).backward();
  const Tensor before = flat_grads(rm.net().named_parameters());
  const Tensor all = world()->allgather(before);  // [W, n]: every rank's own gradients
  rm.sync_gradients_now();
  const Tensor after = flat_grads(rm.net().named_parameters());
  ASSERT_EQ(after.numel(), before.numel());
  const Tensor want = mean(all.to(DType::F64), {0});
  EXPECT_TRUE(all_close(after.to(DType::F64), want, 1e-9, 1e-5));
  EXPECT_FALSE(all_close(before.to(DType::F64), want, 1e-9, 1e-5)) << "the ranks' gradients did not differ";
  EXPECT_GE(rm.last_sync().buckets, before.numel() * 4 / (1 << 20));
  EXPECT_EQ(rm.last_sync().elements, before.numel());
}

TEST(DistributedRun, OverlappedAveragingGivesTheWeightsOfAveragingAfterBackwardBitForBit) {
  DistFixture f;
  // 2 subnets per step (the kernel stage: the kernel transforms a subnet does
  // not use get no gradient in its pass), 1 MB buckets: several of them.
  auto run = [&](const std::string& name, bool overlap, dist::GradientSync::Stats* stats) {
    const RunConfig cfg = f.config(name, {"stop_after_steps=2", "dynamic_batch_size=2", "allreduce_bucket_mb=1",
                                          std::string("overlap_grad_sync=") + (overlap ? "true" : "false")});
    auto data = std::make_shared<const RunData>(open_run_data(cfg));
    std::ostringstream out;
    RunOptions o;
    o.out = &out;
    DistributedRunManager rm(cfg, data, o, world());
    rm.start(false);
    EXPECT_EQ(rm.train(), StageOutcome::Stopped);
    *stats = rm.last_sync();
    if (R() == 0) EXPECT_TRUE(has(out.str(), "launched during the last backward pass")) << out.str();
    nn::NamedTensors params;
    for (const auto& [pname, p] : rm.net().named_parameters()) params.emplace_back(pname, p.detach().clone());
    return params;
  };
  dist::GradientSync::Stats so, sp;
  const nn::NamedTensors overlapped = run("overlap", true, &so), plain = run("plain", false, &sp);
  ASSERT_EQ(overlapped.size(), plain.size());
  for (size_t k = 0; k < plain.size(); ++k) {
    const Tensor a = overlapped[k].second.contiguous(), b = plain[k].second.contiguous();
    ASSERT_EQ(0, std::memcmp(a.raw_data(), b.raw_data(), static_cast<size_t>(a.numel()) * dtype_size(a.dtype())))
        << "rank " << R() << ": " << plain[k].first << " differs";
  }
  EXPECT_EQ(so.tensors, sp.tensors);
  EXPECT_EQ(so.buckets, sp.buckets);
  EXPECT_GE(so.buckets, 4) << "the test needs several buckets";
  EXPECT_EQ(so.buckets_at_arm + so.buckets_in_backward + so.buckets_at_finish, so.buckets);
  // The plan starts with the classifier, which every pass reaches: nothing
  // goes at arm, and every bucket goes from the leaf hook, before backward
  // returns (the one of the first conv with its gradient, the last report).
  EXPECT_EQ(so.buckets_in_backward, so.buckets) << "at arm " << so.buckets_at_arm << ", at finish "
                                                << so.buckets_at_finish;
  EXPECT_EQ(sp.buckets_in_backward, 0);
  EXPECT_EQ(sp.buckets_at_arm, sp.buckets);
  world()->barrier();
}

TEST(DistributedRun, AStopRequestOnOneRankStopsEveryRankAfterTheSameStepWithItsSignal) {
  DistFixture f;
  const RunConfig cfg = f.config("stop");
  if (R() == W() - 1) request_stop(SIGTERM);
  std::string log;
  const StageOutcome r = run_dist_stage(cfg, false, &log);
  const int sig = stop_signal();
  clear_stop_request();
  EXPECT_EQ(r, StageOutcome::Stopped);
  EXPECT_EQ(sig, SIGTERM) << "every rank reports the signal (and exits with 128 + it)";
  if (R() == 0) {
    EXPECT_TRUE(has(log, "stopped by signal 15")) << log;
    const auto cks = list_checkpoints(cfg.path + "/checkpoint");
    ASSERT_EQ(cks.size(), 1u);
    EXPECT_TRUE(has(cks[0], "step000000001.safetensors")) << cks[0];
  }
  world()->barrier();
}

TEST(DistributedRun, MetersAndLogDescribeEveryRanksImages) {
  DistFixture f;
  const RunConfig cfg = f.config("meters", {"stop_after_steps=2"});
  ASSERT_EQ(run_dist_stage(cfg, false), StageOutcome::Stopped);
  if (R() == 0) {
    const SafetensorsFile ck = read_training_checkpoint(list_checkpoints(cfg.path + "/checkpoint").back());
    const auto st = nlohmann::json::parse(ck.metadata.at("train_state"));
    // 2 steps x 4 images x W ranks.
    EXPECT_EQ(st["loss_meter"][1].get<double>(), 8.0 * static_cast<double>(W()));
    EXPECT_EQ(st["top1_meter"][1].get<double>(), 8.0 * static_cast<double>(W()));
    EXPECT_EQ(st["world_size"].get<int64_t>(), W());
    EXPECT_EQ(train_losses(cfg).size(), 2u);
    // The first step's lr = init_lr = base_lr * world size (cosine from there).
    std::ifstream in(cfg.path + "/logs/metrics.jsonl");
    std::string line;
    bool first = true;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line);
      if (j["event"] != "train" || !first) continue;
      first = false;
      EXPECT_NEAR(j["lr"].get<double>(), cfg.base_lr * static_cast<double>(W()), 1e-12);
    }
    EXPECT_FALSE(first);
  }
  world()->barrier();
}

TEST(DistributedRun, ValidationAndTheEpochEndWorkOnEveryRank) {
  DistFixture f;
  const RunConfig cfg = f.config("finish", {"max_train_batches=1"});
  std::string log;
  ASSERT_EQ(run_dist_stage(cfg, false, &log), StageOutcome::Finished);
  if (R() == 0) {
    EXPECT_TRUE(std::filesystem::exists(cfg.path + "/final.safetensors"));
    EXPECT_TRUE(has(log, "Valid")) << log;
  } else {
    EXPECT_TRUE(log.empty()) << "only rank 0 prints: " << log;
  }
  world()->barrier();
}

TEST(DistributedRun, KeysItCannotHonourAreRefused) {
  DistFixture f;
  for (const char* key : {"fp16_allreduce=true", "independent_distributed_sampling=true",
                          "not_sync_distributed_image_size=true"}) {
    const RunConfig cfg = f.config("refused", {key});
    auto data = std::make_shared<const RunData>(open_run_data(cfg));
    const std::string e = error_of([&] { DistributedRunManager rm(cfg, data, RunOptions{}, world()); });
    const std::string name = std::string(key).substr(0, std::string(key).find('='));
    EXPECT_TRUE(has(e, "key '" + name + "'")) << e;
    EXPECT_TRUE(has(e, "not implemented")) << e;
  }
  world()->barrier();
}

}  // namespace
