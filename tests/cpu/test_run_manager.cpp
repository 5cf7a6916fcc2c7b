// RunManager: bit-identical resume (end of epoch, mid-epoch, after a stop
// signal), checkpoint files (atomic under SIGKILL, CRC, corrupt and
// mismatched ones refused with the previous one named), the NaN stop, the
// run folder, and the recipe configuration.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "engine/safetensors.h"
#include "engine/threads.h"
#include "ofa/eval_tensors.h"
#include "ofa/evaluation.h"
#include "ofa/progressive_shrinking.h"
#include "ofa/run_manager.h"
#include "tests/cpu/fake_fashion_mnist.h"
#include "tests/support/run_logs.h"
#include "tests/support/test_util.h"

namespace fs = std::filesystem;
using namespace ofa;

namespace {

struct Fixture {
  test::TempDir tmp;
  std::string data_dir, teacher;
  Fixture() {
    data_dir = tmp.path() + "/data";
    fs::create_directories(data_dir);
    test::write_fake_fashion_mnist(data_dir, 96, 32);
    // A teacher: a freshly initialised supernet (its K7-E6-D4 net teaches).
    Generator g(7);
    nn::OFAMobileNetV3 t(10, 0.1, 1e-5, 0.1, 1.0, {3, 5, 7}, {3, 4, 6}, {2, 3, 4}, &g);
    teacher = tmp.path() + "/teacher.safetensors";
    nn::save_supernet_checkpoint(teacher, t);
  }
  // A kernel-task stage: 1 warmup + 2 epochs of 3 batches of 8 images, 2
  // subnets per step, distillation, dropout, colour jitter, two resolutions.
  RunConfig config(const std::string& run, const std::vector<std::string>& overrides = {}) const {
    const std::string yaml = "task: kernel\n"
                             "dataset: fashion_mnist\n"
                             "data_path: " + data_dir + "\n"
                             "path: " + tmp.path() + "/" + run + "\n"
                             "teacher_path: " + teacher + "\n"
                             "valid_size: 16\n"
                             "base_batch_size: 8\n"
                             "image_size: [24, 28]\n"
                             "valid_image_size: [28]\n"
                             "n_epochs: 2\n"
                             "warmup_epochs: 1\n"
                             "dynamic_batch_size: 2\n"
                             "max_train_batches: 3\n"
                             "print_frequency: 1\n"
                             "bn_calib_images: 16\n"
                             "bn_calib_batch_size: 8\n"
                             "n_worker: 1\n"
                             "resize_scale: 0.5\n"
                             "distort_color: tf\n"
                             "dropout: 0.2\n"
                             "validate_before_training: false\n";
    return run_config_from_yaml_string(yaml, "test.yaml", overrides);
  }
};

StageOutcome run_stage(const RunConfig& cfg, bool resume, std::string* log = nullptr) {
  auto data = std::make_shared<const RunData>(open_run_data(cfg));
  std::ostringstream out;
  RunOptions o;
  o.out = &out;
  RunManager rm(cfg, data, o);
  rm.start(resume);
  StageOutcome r = rm.train();
  if (log) *log = out.str();
  return r;
}

std::vector<std::pair<int64_t, double>> train_losses(const RunConfig& cfg) { return test::train_losses(cfg.path); }
using test::expect_same_tensors;

TEST(RunManager, ResumeAtAnEpochEndIsBitIdentical) {
  Fixture f;
  const RunConfig a = f.config("a");
  ASSERT_EQ(run_stage(a, false), StageOutcome::Finished);
  const auto ref = train_losses(a);
  ASSERT_EQ(ref.size(), 9u);  // 3 epochs x 3 batches, print_frequency 1

  const RunConfig b1 = f.config("b", {"stop_after_steps=3"});
  ASSERT_EQ(run_stage(b1, false), StageOutcome::Stopped);
  ASSERT_EQ(list_checkpoints(b1.path + "/checkpoint").size(), 1u);
  EXPECT_EQ(train_losses(b1).size(), 3u);
  ASSERT_EQ(run_stage(f.config("b"), true), StageOutcome::Finished);
  EXPECT_EQ(train_losses(b1), ref);  // exact doubles
  expect_same_tensors(a.path + "/final.safetensors", b1.path + "/final.safetensors");
}

TEST(RunManager, ResumeMidEpochIsBitIdentical) {
  Fixture f;
  const RunConfig a = f.config("a");
  ASSERT_EQ(run_stage(a, false), StageOutcome::Finished);
  const auto ref = train_losses(a);
  // Stop after 4 steps (epoch 2, batch 1), then after 3 more (epoch 3, batch 1), then finish.
  const RunConfig b = f.config("b", {"stop_after_steps=4"});
  ASSERT_EQ(run_stage(b, false), StageOutcome::Stopped);
  ASSERT_EQ(run_stage(f.config("b", {"stop_after_steps=3"}), true), StageOutcome::Stopped);
  const auto cks = list_checkpoints(b.path + "/checkpoint");
  ASSERT_FALSE(cks.empty());
  EXPECT_EQ(train_state_of(read_training_checkpoint(cks.back())).step, 7);
  EXPECT_EQ(train_state_of(read_training_checkpoint(cks.back())).batch, 1);
  ASSERT_EQ(run_stage(f.config("b"), true), StageOutcome::Finished);
  EXPECT_EQ(train_losses(b), ref);
  expect_same_tensors(a.path + "/final.safetensors", b.path + "/final.safetensors");
}

TEST(RunManager, AStopSignalCheckpointsAfterTheStepAndResumesExactly) {
  Fixture f;
  const RunConfig a = f.config("a");
  ASSERT_EQ(run_stage(a, false), StageOutcome::Finished);
  const RunConfig b = f.config("b");
  request_stop(SIGTERM);
  std::string log;
  const StageOutcome r = run_stage(b, false, &log);
  clear_stop_request();
  ASSERT_EQ(r, StageOutcome::Stopped);
  EXPECT_TRUE(test::has(log, "stopped by signal 15")) << log;
  const auto cks = list_checkpoints(b.path + "/checkpoint");
  ASSERT_EQ(cks.size(), 1u);
  EXPECT_TRUE(test::has(cks[0], "step000000001.safetensors")) << cks[0];
  ASSERT_EQ(run_stage(b, true), StageOutcome::Finished);
  EXPECT_EQ(train_losses(b), train_losses(a));
}

TEST(RunManager, ANonFiniteLossStopsNamingStageStepAndSubnetAndSavesNothing) {
  Fixture f;
  const RunConfig c = f.config("nan", {"base_lr=1e30", "warmup_epochs=0"});
  const std::string e = test::error_of([&] { run_stage(c, false); });
  EXPECT_TRUE(test::has(e, "stage kernel")) << e;
  EXPECT_TRUE(test::has(e, "(step ")) << e;
  EXPECT_TRUE(test::has(e, "subnet ")) << e;
  EXPECT_TRUE(test::has(e, "\"ks\"")) << e;
  EXPECT_TRUE(test::has(e, "nothing was saved")) << e;
  EXPECT_TRUE(list_checkpoints(c.path + "/checkpoint").empty());
  EXPECT_FALSE(fs::exists(c.path + "/final.safetensors"));
  bool diverged = false;
  try {
    run_stage(f.config("nan2", {"base_lr=1e30", "warmup_epochs=0"}), false);
  } catch (const TrainingDiverged&) {
    diverged = true;
  }
  EXPECT_TRUE(diverged);
}

TEST(RunManager, ACorruptCheckpointIsRefusedAndThePreviousOneNamed) {
  Fixture f;
  const RunConfig b = f.config("b", {"stop_after_steps=3"});
  ASSERT_EQ(run_stage(b, false), StageOutcome::Stopped);
  ASSERT_EQ(run_stage(f.config("b", {"stop_after_steps=1"}), true), StageOutcome::Stopped);
  const auto cks = list_checkpoints(b.path + "/checkpoint");
  ASSERT_EQ(cks.size(), 2u);
  {  // flip one byte near the end (tensor data)
    std::fstream io(cks[1], std::ios::in | std::ios::out | std::ios::binary);
    io.seekg(-100, std::ios::end);
    char c;
    io.read(&c, 1);
    io.seekp(-100, std::ios::end);
    c = static_cast<char>(c ^ 0x5a);
    io.write(&c, 1);
  }
  const std::string e = test::error_of([&] { run_stage(f.config("b"), true); });
  EXPECT_TRUE(test::has(e, "corrupt")) << e;
  EXPECT_TRUE(test::has(e, cks[1])) << e;
  EXPECT_TRUE(test::has(e, cks[0])) << e;  // the previous good one, with how to use it
  EXPECT_TRUE(test::has(e, "resume_path=")) << e;
  EXPECT_EQ(train_state_of(read_training_checkpoint(cks[0])).step, 3);
  // Resuming from the named one works.
  ASSERT_EQ(run_stage(f.config("b", {"resume_path=" + cks[0]}), true), StageOutcome::Finished);
}

TEST(RunManager, ATruncatedCheckpointIsRefused) {
  Fixture f;
  const RunConfig b = f.config("b", {"stop_after_steps=2"});
  ASSERT_EQ(run_stage(b, false), StageOutcome::Stopped);
  const auto cks = list_checkpoints(b.path + "/checkpoint");
  ASSERT_EQ(cks.size(), 1u);
  fs::resize_file(cks[0], fs::file_size(cks[0]) / 2);
  const std::string e = test::error_of([&] { run_stage(f.config("b"), true); });
  EXPECT_TRUE(test::has(e, "cannot resume")) << e;
  EXPECT_TRUE(test::has(e, cks[0])) << e;
}

TEST(RunManager, AMismatchedConfigurationIsRefusedNamingTheKeys) {
  Fixture f;
  const RunConfig b = f.config("b", {"stop_after_steps=2"});
  ASSERT_EQ(run_stage(b, false), StageOutcome::Stopped);
  const std::string e = test::error_of([&] { run_stage(f.config("b", {"base_lr=0.5", "label_smoothing=0"}), true); });
  EXPECT_TRUE(test::has(e, "base_lr: 0.03 -> 0.5")) << e;
  EXPECT_TRUE(test::has(e, "label_smoothing")) << e;
  // Keys that do not change the computation may differ.
  EXPECT_EQ(run_stage(f.config("b", {"n_worker=0", "print_frequency=2"}), true), StageOutcome::Finished);
}

TEST(RunManager, AFreshStartOverAnExistingRunIsRefused) {
  Fixture f;
  const RunConfig b = f.config("b", {"stop_after_steps=1"});
  ASSERT_EQ(run_stage(b, false), StageOutcome::Stopped);
  const std::string e = test::error_of([&] { run_stage(b, false); });
  EXPECT_TRUE(test::has(e, "already holds a run")) << e;
  EXPECT_TRUE(test::has(e, "--resume")) << e;
}

TEST(RunManager, WritesTheRunFolder) {
  Fixture f;
  const RunConfig c = f.config("a", {"keep_checkpoints=1"});
  ASSERT_EQ(run_stage(c, false), StageOutcome::Finished);
  for (const char* name : {"net_info.txt", "run.config", "net.config", "run.yaml", "logs/train_console.txt",
                           "logs/valid_console.txt", "logs/metrics.jsonl", "final.safetensors",
                           "checkpoint/model_best.safetensors"})
    EXPECT_TRUE(fs::exists(c.path + "/" + name)) << name;
  // run.yaml is the effective configuration and loads back to it.
  EXPECT_TRUE(load_run_config(c.path + "/run.yaml") == c);
  // run.config and net.config are JSON, as the reference writes them.
  std::ifstream rc(c.path + "/run.config"), nc(c.path + "/net.config");
  auto rcj = nlohmann::json::parse(rc), ncj = nlohmann::json::parse(nc);
  EXPECT_EQ(rcj["n_epochs"], 2);
  EXPECT_EQ(rcj["task"], "kernel");
  EXPECT_EQ(ncj["name"], "OFAMobileNetV3");
  // keep_checkpoints 1: only the newest (plus model_best).
  EXPECT_EQ(list_checkpoints(c.path + "/checkpoint").size(), 1u);
  // Every metrics line is JSON with an event; validation lines carry the grid.
  std::ifstream in(c.path + "/logs/metrics.jsonl");
  std::string line;
  int valid = 0, epochs = 0;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    ASSERT_TRUE(j.contains("event")) << line;
    if (j["event"] == "valid") {
      ++valid;
      EXPECT_EQ(j["subnets"].size(), 2u) << line;  // K3 and K7 at 28
      EXPECT_EQ(j["subnets"][0]["name"], "R28-D4-E6-K3");
    }
    if (j["event"] == "epoch") ++epochs;
  }
  EXPECT_EQ(valid, 3);  // validation_frequency 1: every epoch
  EXPECT_EQ(epochs, 3);
  // The result is a supernet checkpoint that ofa_eval reads (optimizer state skipped).
  nn::NetCheckpoint ck = nn::load_net_checkpoint(c.path + "/final.safetensors");
  ASSERT_TRUE(ck.is_supernet());
  EXPECT_EQ(ck.supernet->ks_list, (std::vector<int64_t>{3, 5, 7}));
  EXPECT_TRUE(train_state_of(read_training_checkpoint(c.path + "/final.safetensors")).finished);
}

TEST(RunManager, CheckpointsSurviveAKillDuringTheWrite) {
  Fixture f;
  const RunConfig c = f.config("kill");
  for (int round = 0; round < 6; ++round) {
    int ready[2];
    ASSERT_EQ(pipe(ready), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(ready[0]);
      set_compute_threads(1);  // the parent's OpenMP pool does not exist in the child
      try {
        auto data = std::make_shared<const RunData>(open_run_data(c));
        std::ostringstream out;
        RunOptions o;
        o.out = &out;
        RunManager rm(c, data, o);
        rm.start(round > 0);
        rm.save_checkpoint();
        char b = 1;
        if (write(ready[1], &b, 1) != 1) _exit(3);
        for (;;) rm.save_checkpoint();  // until killed
      } catch (...) {
        _exit(2);
      }
    }
    close(ready[1]);
    char b = 0;
    ASSERT_EQ(read(ready[0], &b, 1), 1) << "the writer died before its first checkpoint";
    close(ready[0]);
    std::this_thread::sleep_for(std::chrono::milliseconds(3 + 17 * round));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "round " << round;
    const auto cks = list_checkpoints(c.path + "/checkpoint");
    ASSERT_EQ(cks.size(), 1u) << "round " << round;
    EXPECT_NO_THROW(read_training_checkpoint(cks[0])) << "round " << round;
  }
  // A resume works from what the kills left.
  EXPECT_EQ(run_stage(c, true), StageOutcome::Finished);
}

TEST(RunManager, ValidationGridIsTheReferencesOrder) {
  auto g = validation_grid({3, 5, 7}, {3, 4, 6}, {2, 3, 4}, {160, 224});
  ASSERT_EQ(g.size(), 16u);
  EXPECT_EQ(g[0].name, "R160-D2-E3-K3");
  EXPECT_EQ(g[1].name, "R224-D2-E3-K3");
  EXPECT_EQ(g[2].name, "R160-D2-E3-K7");
  EXPECT_EQ(g[4].name, "R160-D2-E6-K3");
  EXPECT_EQ(g[8].name, "R160-D4-E3-K3");
  EXPECT_EQ(g.back().name, "R224-D4-E6-K7");
  EXPECT_EQ(validation_grid({7}, {6}, {4}, {32}).size(), 1u);
}

// ---------------------------------------------------------------- recipes

const char* kRecipe =
    "path: runs/r\n"
    "n_worker: 3\n"
    "stages:\n"
    "  - {task: teacher, n_epochs: 5}\n"
    "  - {task: kernel, n_epochs: 2}\n"
    "  - task: depth\n"
    "    phase: 2\n"
    "    base_lr: 0.01\n";

TEST(Recipe, StagesInheritTheFileAndTakeTheTaskTable) {
  RecipeConfig r = recipe_config_from_yaml_string(kRecipe, "r.yaml");
  ASSERT_TRUE(r.has_stages);
  ASSERT_EQ(r.stages.size(), 3u);
  EXPECT_EQ(r.stages[0].id, "teacher");
  EXPECT_EQ(r.stages[2].id, "depth_phase2");
  EXPECT_EQ(r.stages[0].cfg.ks_list, (std::vector<int64_t>{7}));
  EXPECT_EQ(r.stages[0].cfg.n_epochs, 5);
  EXPECT_EQ(r.stages[1].cfg.base_lr, 3e-2);  // the table's kernel rate
  EXPECT_EQ(r.stages[2].cfg.base_lr, 0.01);
  EXPECT_EQ(r.stages[2].cfg.n_epochs, 120);  // the table's depth phase 2
  EXPECT_EQ(r.stages[2].cfg.depth_list, (std::vector<int64_t>{2, 3, 4}));
  for (const auto& s : r.stages) EXPECT_EQ(s.cfg.n_worker, 3);
  EXPECT_EQ(r.stages[1].cfg.path, "runs/r/kernel");
  // Chaining: the previous stage's result, the teacher stage's for distillation.
  RunConfig c = chained_stage_config(r, 2);
  EXPECT_EQ(c.init_path, "runs/r/kernel/final.safetensors");
  EXPECT_EQ(c.teacher_path, "runs/r/teacher/final.safetensors");
  EXPECT_EQ(chained_stage_config(r, 0).init_path, "");
}

TEST(Recipe, SetReachesEveryStage) {
  RecipeConfig r = recipe_config_from_yaml_string(kRecipe, "r.yaml", {"n_epochs=1", "path=/tmp/x"});
  for (const auto& s : r.stages) EXPECT_EQ(s.cfg.n_epochs, 1);
  EXPECT_EQ(r.stages[0].cfg.path, "/tmp/x/teacher");
}

TEST(Recipe, ErrorsNameTheFileLineAndKey) {
  std::string e = test::error_of(
      [] { recipe_config_from_yaml_string("stages:\n  - {task: kernel}\n  - {task: depth, n_epoch: 3}\n", "r.yaml"); });
  EXPECT_TRUE(test::has(e, "r.yaml:3:")) << e;
  EXPECT_TRUE(test::has(e, "did you mean 'n_epochs'")) << e;
  e = test::error_of([] { recipe_config_from_yaml_string("stages:\n  - {task: kernel}\n  - {task: kernel}\n", "r.yaml"); });
  EXPECT_TRUE(test::has(e, "listed twice")) << e;
  e = test::error_of([] { recipe_config_from_yaml_string("stages: 3\n", "r.yaml"); });
  EXPECT_TRUE(test::has(e, "must be a list")) << e;
  e = test::error_of([] { recipe_config_from_yaml_string("stages:\n  - {phase: 1}\n", "r.yaml"); });
  EXPECT_TRUE(test::has(e, "names no task")) << e;
  e = test::error_of([] { recipe_config_from_yaml_string("stages:\n  - {task: width}\n", "r.yaml"); });
  EXPECT_TRUE(test::has(e, "key 'task'")) << e;
  EXPECT_TRUE(test::has(e, "teacher")) << e;
  // A plain run configuration refuses `stages`.
  e = test::error_of([] { run_config_from_yaml_string("stages:\n  - {task: kernel}\n", "r.yaml"); });
  EXPECT_TRUE(test::has(e, "recipe")) << e;
}

TEST(Recipe, AFileWithoutStagesIsOneStage) {
  RecipeConfig r = recipe_config_from_yaml_string("task: expand\nphase: 2\n", "r.yaml");
  EXPECT_FALSE(r.has_stages);
  ASSERT_EQ(r.stages.size(), 1u);
  EXPECT_EQ(r.stages[0].id, "expand_phase2");
  EXPECT_EQ(r.stages[0].cfg.dynamic_batch_size, 4);
}

}  // namespace
namespace {
TEST(RunManager, TwoFreshRunsAreBitIdentical) {
  Fixture f;
  const RunConfig a = f.config("a"), b = f.config("b");
  ASSERT_EQ(run_stage(a, false), StageOutcome::Finished);
  ASSERT_EQ(run_stage(b, false), StageOutcome::Finished);
  EXPECT_EQ(train_losses(a), train_losses(b));
}
}  // namespace
namespace {
TEST(Recipe, TheShippedConfigurationsLoad) {
  const std::string dir = std::string(OFA_TEST_DATA_DIR) + "/../../configs/";
  for (const char* name : {"fashion_mnist.yaml", "smoke.yaml", "imagenet_ofa_mbv3.yaml"}) {
    RecipeConfig r = load_recipe_config(dir + name);
    ASSERT_EQ(r.stages.size(), 6u) << name;
    const char* ids[] = {"teacher", "kernel", "depth_phase1", "depth_phase2", "expand_phase1", "expand_phase2"};
    for (size_t k = 0; k < 6; ++k) EXPECT_EQ(r.stages[k].id, ids[k]) << name;
    EXPECT_EQ(r.stages.back().cfg.expand_list, (std::vector<int64_t>{3, 4, 6})) << name;
    EXPECT_EQ(chained_stage_config(r, 5).init_path, r.stages[4].cfg.path + "/final.safetensors") << name;
  }
  RecipeConfig im = load_recipe_config(dir + "imagenet_ofa_mbv3.yaml");
  EXPECT_EQ(im.stages[3].cfg.n_epochs, 120);  // the reference's table, untouched
  EXPECT_EQ(im.stages[3].cfg.base_lr, 7.5e-3);
  EXPECT_EQ(im.stages[0].cfg.n_epochs, 180);
}
}  // namespace
