// The per-batch learning rate against tests/data/lr_golden.txt (made by
// make_lr_golden.py, a restatement of the reference's warmup + cosine) and
// its properties.
#include <cmath>
#include <fstream>
#include <set>
#include <sstream>

#include "ofa/lr_schedule.h"
#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::test;

namespace {

RunConfig make_cfg(double base_lr, int64_t warmup_epochs, double warmup_lr, int64_t n_epochs,
                   const std::string& schedule) {
  RunConfig cfg;
  cfg.base_lr = base_lr;
  cfg.warmup_epochs = warmup_epochs;
  cfg.warmup_lr = warmup_lr;
  cfg.n_epochs = n_epochs;
  cfg.lr_schedule_type = schedule;
  return cfg;
}

}  // namespace

TEST(LrSchedule, MatchesGoldenFile) {
  const std::string path = std::string(OFA_TEST_DATA_DIR) + "/lr_golden.txt";
  std::ifstream f(path);
  ASSERT_TRUE(f) << "cannot open " << path << " (run tests/data/make_lr_golden.py)";
  std::string line;
  int rows = 0, warm = 0;
  std::set<int64_t> world_sizes;
  while (std::getline(f, line)) {
    std::istringstream in(line);
    std::string name, schedule;
    double base_lr, warmup_lr, expected;
    int64_t warmup_epochs, n_epochs, n_batch, world_size, epoch, batch;
    in >> name >> base_lr >> warmup_epochs >> warmup_lr >> n_epochs >> n_batch >> world_size >> schedule >> epoch >>
        batch >> expected;
    ASSERT_TRUE(in) << "bad line: " << line;
    const RunConfig cfg = make_cfg(base_lr, warmup_epochs, warmup_lr, n_epochs, schedule);
    const double got = learning_rate(cfg, epoch, batch, n_batch, world_size);
    // Same formula and operation order in double: equal to the last bit or two.
    EXPECT_NEAR(got, expected, 4e-16 * std::fabs(expected) + 1e-300) << line;
    ++rows;
    if (epoch < warmup_epochs) ++warm;
    world_sizes.insert(world_size);
  }
  EXPECT_EQ(rows, 112);
  EXPECT_GT(warm, 0);
  EXPECT_EQ(world_sizes, (std::set<int64_t>{1, 4}));
}

TEST(LrSchedule, CosineStartsAtInitLrAndDecreases) {
  const RunConfig cfg = make_cfg(0.1, 0, -1, 3, "cosine");
  EXPECT_DOUBLE_EQ(learning_rate(cfg, 0, 0, 10, 1), 0.1);
  EXPECT_DOUBLE_EQ(learning_rate(cfg, 0, 0, 10, 4), 0.4);  // init_lr = base_lr * world size
  double prev = 1e9;
  for (int64_t e = 0; e < 3; ++e)
    for (int64_t b = 0; b < 10; ++b) {
      const double lr = learning_rate(cfg, e, b, 10, 1);
      EXPECT_LT(lr, prev);
      EXPECT_GT(lr, 0.0);
      prev = lr;
    }
  // Half-way through: exactly half of init_lr.
  EXPECT_NEAR(learning_rate(make_cfg(0.1, 0, -1, 2, "cosine"), 1, 0, 10, 1), 0.05, 1e-17);
  // Last batch: 0.5 * lr * (1 + cos(pi * 29 / 30)).
  EXPECT_DOUBLE_EQ(learning_rate(cfg, 2, 9, 10, 1), 0.05 * (1 + std::cos(M_PI * 29.0 / 30.0)));
}

TEST(LrSchedule, WarmupIsLinearAndEndsAtInitLr) {
  const RunConfig cfg = make_cfg(0.01, 2, 0.001, 4, "cosine");
  const int64_t n_batch = 5;
  // First batch: one step of ten up from warmup_lr (not warmup_lr itself).
  EXPECT_DOUBLE_EQ(learning_rate(cfg, 0, 0, n_batch, 1), 0.001 + (0.01 - 0.001) / 10);
  // Last warmup batch reaches init_lr; first scheduled batch is cosine at T_cur = 0.
  EXPECT_DOUBLE_EQ(learning_rate(cfg, 1, 4, n_batch, 1), 0.01);
  EXPECT_DOUBLE_EQ(learning_rate(cfg, 2, 0, n_batch, 1), 0.01);
  // Constant increments across the epoch boundary of the warmup.
  const double step = learning_rate(cfg, 0, 1, n_batch, 1) - learning_rate(cfg, 0, 0, n_batch, 1);
  EXPECT_NEAR(learning_rate(cfg, 1, 0, n_batch, 1) - learning_rate(cfg, 0, 4, n_batch, 1), step, 1e-15);
  // World size scales the target, not the start.
  EXPECT_DOUBLE_EQ(learning_rate(cfg, 1, 4, n_batch, 4), 0.04);
  EXPECT_DOUBLE_EQ(learning_rate(cfg, 0, 0, n_batch, 4), 0.001 + (0.04 - 0.001) / 10);
  // The schedule epoch is counted from the end of the warmup.
  const RunConfig no_warm = make_cfg(0.01, 0, -1, 4, "cosine");
  EXPECT_DOUBLE_EQ(learning_rate(cfg, 3, 2, n_batch, 1), learning_rate(no_warm, 1, 2, n_batch, 1));
}

TEST(LrSchedule, NegativeWarmupLrMeansBaseLr) {
  const RunConfig cfg = make_cfg(0.02, 3, -1, 2, "cosine");
  // warmup from base_lr to base_lr * world size.
  EXPECT_DOUBLE_EQ(learning_rate(cfg, 0, 0, 2, 1), 0.02);
  EXPECT_DOUBLE_EQ(learning_rate(cfg, 0, 0, 2, 2), 1.0 / 6.0 * (0.04 - 0.02) + 0.02);
}

TEST(LrSchedule, NoneScheduleIsConstant) {
  const RunConfig cfg = make_cfg(0.03, 1, 0.0, 2, "none");
  EXPECT_DOUBLE_EQ(learning_rate(cfg, 0, 0, 4, 1), 0.03 / 4);
  for (int64_t e = 1; e < 3; ++e)
    for (int64_t b = 0; b < 4; ++b) EXPECT_DOUBLE_EQ(learning_rate(cfg, e, b, 4, 2), 0.06);
}

TEST(LrSchedule, ErrorsNameTheProblem) {
  const RunConfig cfg = make_cfg(0.1, 1, 0.0, 2, "cosine");
  EXPECT_TRUE(has(error_of([&] { learning_rate(cfg, 0, 0, 0, 1); }), "n_batch must be >= 1"));
  EXPECT_TRUE(has(error_of([&] { learning_rate(cfg, 0, 5, 5, 1); }), "batch must be in [0, n_batch)"));
  EXPECT_TRUE(has(error_of([&] { learning_rate(cfg, -1, 0, 5, 1); }), "epoch must be >= 0"));
  EXPECT_TRUE(has(error_of([&] { learning_rate(cfg, 3, 0, 5, 1); }), "past the run"));
  EXPECT_TRUE(has(error_of([&] { learning_rate(cfg, 0, 0, 5, 0); }), "world_size"));
  EXPECT_TRUE(has(error_of([&] { scheduled_learning_rate(0.1, 2, 0, 0, 5, "step"); }), "unknown lr_schedule_type 'step'"));
}
