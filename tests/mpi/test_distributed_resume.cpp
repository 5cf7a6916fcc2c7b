// mpi-ranks: 2
// A 2-rank run stopped mid-epoch (stop_after_steps) and resumed continues the
// loss sequence of an uninterrupted 2-rank run exactly (every rank resumes
// its own shard at rank 0's loader position, with rank 0's weights,
// optimizer state, meters and random streams), and ends with the same
// weights.
#include <gtest/gtest.h>

#include "tests/mpi/dist_fixture.h"

using namespace ofa;
using namespace ofa::test;

namespace {

TEST(DistributedResume, AResumedRunContinuesTheLossSequenceOfAnUninterruptedOne) {
  DistFixture f;
  // 2 epochs of 3 steps, 2 subnets per step, dropout: the random streams matter.
  const std::vector<std::string> base = {"n_epochs=2", "dynamic_batch_size=2", "validation_frequency=2"};
  const RunConfig a = f.config("a", base);
  ASSERT_EQ(run_dist_stage(a, false), StageOutcome::Finished);
  std::vector<std::string> stop = base;
  stop.push_back("stop_after_steps=4");  // epoch 2, batch 1: mid-epoch
  const RunConfig b = f.config("b", stop);
  ASSERT_EQ(run_dist_stage(b, false), StageOutcome::Stopped);
  ASSERT_EQ(run_dist_stage(f.config("b", base), true), StageOutcome::Finished);
  if (world()->rank() == 0) {
    const auto ref = train_losses(a), got = train_losses(b);
    ASSERT_EQ(ref.size(), 6u);
    EXPECT_EQ(got, ref);  // exact doubles
    expect_same_tensors(a.path + "/final.safetensors", b.path + "/final.safetensors");
  }
  world()->barrier();
}

}  // namespace
