// End to end on the real Fashion-MNIST: the whole smoke recipe
// (configs/smoke.yaml: teacher, kernel, depth 1-2, expand 1-2), every stage
// stopped in the middle of an epoch and resumed, then the evaluation helper
// on a grid of subnets of the result (table, CSV, JSON, plot). Skipped,
// visibly, when the Debian package dataset-fashion-mnist is not installed.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "data/idx.h"
#include "ofa/eval_data.h"
#include "ofa/eval_tensors.h"
#include "ofa/progressive_shrinking.h"
#include "tests/support/test_util.h"

namespace fs = std::filesystem;
using namespace ofa;

namespace {

bool have_fashion_mnist() {
  struct stat st;
  return ::stat((data::fashion_mnist_dir() + "/train-images-idx3-ubyte.gz").c_str(), &st) == 0;
}

const std::string kSmoke = std::string(OFA_TEST_DATA_DIR) + "/../../configs/smoke.yaml";

TEST(OfaTrainE2E, SmokeRecipeStopsResumesAndEvaluates) {
  if (!have_fashion_mnist())
    GTEST_SKIP() << "Fashion-MNIST is not installed at " << data::fashion_mnist_dir()
                 << " (apt-get install dataset-fashion-mnist, or bash scripts/install_deps.sh)";
  test::TempDir tmp;
  const std::string root = tmp.path() + "/run";
  const auto t0 = std::chrono::steady_clock::now();
  // Every stage stops after 3 of its 4 steps (mid-epoch), and the next
  // invocation resumes it: as a job killed once per stage.
  const RecipeConfig stopping = load_recipe_config(kSmoke, {"path=" + root, "stop_after_steps=3"});
  ASSERT_EQ(stopping.stages.size(), 6u);
  std::ostringstream log;
  RecipeOptions o;
  o.out = &log;
  int stops = 0;
  for (int round = 0; round < 12; ++round) {
    o.resume = round > 0;
    if (run_recipe(stopping, o) == RecipeOutcome::Finished) break;
    ++stops;
  }
  EXPECT_EQ(stops, 6) << log.str();
  for (const StageConfig& s : stopping.stages) {
    EXPECT_TRUE(fs::exists(s.cfg.path + "/final.safetensors")) << s.id;
    EXPECT_TRUE(fs::exists(s.cfg.path + "/logs/metrics.jsonl")) << s.id;
  }
  EXPECT_TRUE(test::has(log.str(), "stage expand_phase2: resumed from")) << log.str();
  EXPECT_TRUE(test::has(log.str(), "distilling from " + root + "/teacher/final.safetensors")) << log.str();
  // A finished recipe run again does nothing but say so.
  std::ostringstream again;
  o.out = &again;
  o.resume = true;
  EXPECT_EQ(run_recipe(stopping, o), RecipeOutcome::Finished);
  EXPECT_TRUE(test::has(again.str(), "[teacher] already finished")) << again.str();

  // The evaluation helper on the result: the grid of the final supernet.
  nn::EvalOptions e;
  e.checkpoint = root + "/expand_phase2/final.safetensors";
  e.config = kSmoke;
  e.data = "fashion_mnist";
  e.grid = true;
  e.split = "valid";  // the smoke recipe's 512 held-out images
  e.csv = tmp.path() + "/grid.csv";
  e.json_out = tmp.path() + "/grid.json";
  e.plot = tmp.path() + "/grid.svg";
  e.sets = {"bn_calib_images=64"};
  std::ostringstream out, err;
  const auto results = run_eval_data(e, out, err, false);
  ASSERT_EQ(results.size(), 8u);  // {K3, K7} x {E3, E6} x {D2, D4} at 32
  for (const auto& r : results) {
    EXPECT_EQ(r.metrics.images, 512) << r.name;
    EXPECT_GE(r.metrics.top1, 0.0);
    EXPECT_LE(r.metrics.top1, 100.0);
    EXPECT_GT(r.info.macs, 0);
  }
  EXPECT_LT(results.front().info.macs, results.back().info.macs);
  EXPECT_TRUE(test::has(out.str(), "R32-D2-E3-K3")) << out.str();
  for (const std::string& f : {e.csv, e.json_out, e.plot}) EXPECT_GT(fs::file_size(f), 100u) << f;
  std::ifstream js(e.json_out);
  EXPECT_EQ(nlohmann::json::parse(js)["results"].size(), 8u);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("smoke recipe with 6 stops and resumes, then a grid of 8 subnets on 512 held-out images: %.1f s\n", secs);
}

}  // namespace
