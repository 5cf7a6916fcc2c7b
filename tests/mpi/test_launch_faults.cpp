// mpi-ranks: 0
// ofa_train under mpiexec (2 ranks), started by this test as a child
// process: a killed rank ends the job, non-zero, within the timeout; a hung
// rank (SIGSTOP) ends it through the watchdog within comm_timeout_s with a
// message naming the rank and the operation; in both cases the last
// checkpoint loads and the same command with --resume goes on; SIGTERM to
// one rank makes every rank stop after the same step with a checkpoint and
// exit 128 + 15.
// The ranks' process ids come from the test-only hook OFA_TEST_PID_DIR.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "ofa/run_manager.h"
#include "tests/cpu/fake_fashion_mnist.h"
#include "tests/support/test_util.h"

using namespace ofa;
using ofa::test::has;

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct Job {
  test::TempDir tmp;
  std::string cfg, run, pids;
  pid_t pid = -1;
  double started = 0;

  Job(int64_t timeout_s) {
    const std::string data = tmp.path() + "/data";
    std::filesystem::create_directories(data);
    test::write_fake_fashion_mnist(data, 96, 32);
    run = tmp.path() + "/run";
    pids = tmp.path() + "/pids";
    std::filesystem::create_directories(pids);
    cfg = tmp.file("run.yaml");
    std::ofstream(cfg) << "task: kernel\n"
                          "dataset: fashion_mnist\n"
                          "data_path: " << data << "\n"
                          "path: " << run << "\n"
                          "kd_ratio: 0\n"
                          "valid_size: 16\n"
                          "base_batch_size: 4\n"
                          "image_size: [24]\n"
                          "valid_image_size: [24]\n"
                          "n_epochs: 2\n"
                          "warmup_epochs: 0\n"
                          "dynamic_batch_size: 1\n"
                          "print_frequency: 1\n"
                          "bn_calib_images: 16\n"
                          "bn_calib_batch_size: 8\n"
                          "n_worker: 0\n"
                          "checkpoint_minutes: 0.00001\n"  // a checkpoint after every step
                          "keep_checkpoints: 2\n"
                          "comm_timeout_s: " << timeout_s << "\n"
                          "validate_before_training: false\n";
  }
  ~Job() {
    if (pid > 0) {
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  std::string out() const { return slurp(tmp.file("stdout.txt")); }
  std::string err() const { return slurp(tmp.file("stderr.txt")); }
  std::string log() const { return out() + err(); }

  void start(const std::vector<std::string>& extra) {
    std::vector<std::string> args = {OFA_MPIEXEC};
    std::istringstream flags(OFA_MPIEXEC_FLAGS);
    for (std::string f; flags >> f;) args.push_back(f);
    for (const char* a : {"-np", "2", OFA_TRAIN_EXE, "--config"}) args.push_back(a);
    args.push_back(cfg);
    args.push_back("--no-progress");
    for (const auto& e : extra) args.push_back(e);
    for (const char* f : {"rank0.pid", "rank1.pid"}) std::filesystem::remove(pids + "/" + f);
    ::setenv("OFA_TEST_PID_DIR", pids.c_str(), 1);
    ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 1);
    ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 1);
    ::setenv("OMPI_MCA_rmaps_base_oversubscribe", "1", 1);
    ::setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 1);
    ::setenv("OMP_NUM_THREADS", "1", 1);
    ::setenv("OPENBLAS_NUM_THREADS", "1", 1);
    const std::string o = tmp.file("stdout.txt"), e = tmp.file("stderr.txt");
    started = now_s();
    pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::setpgid(0, 0);  // one process group: the test can end everything
      const int fo = ::open(o.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      const int fe = ::open(e.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      ::dup2(fo, 1);
      ::dup2(fe, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::setpgid(pid, pid);
  }

  // The exit status of mpiexec, or -1 when it did not end within timeout_s
  // (then it is killed).
  int wait(double timeout_s, double* elapsed = nullptr) {
    const double t0 = now_s();
    int status = 0;
    for (;;) {
      const pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid) break;
      if (now_s() - t0 > timeout_s) {
        ::kill(-pid, SIGKILL);
        ::waitpid(pid, &status, 0);
        pid = -1;
        return -1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    if (elapsed) *elapsed = now_s() - t0;
    pid = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  pid_t rank_pid(int r, double timeout_s = 60) const {
    const std::string f = pids + "/rank" + std::to_string(r) + ".pid";
    const double t0 = now_s();
    while (!std::filesystem::exists(f)) {
      if (now_s() - t0 > timeout_s) return -1;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return static_cast<pid_t>(std::stol(slurp(f)));
  }

  // Waits until the run folder holds a checkpoint of at least `step` steps.
  bool wait_for_checkpoint(int64_t step, double timeout_s = 90) const {
    const double t0 = now_s();
    while (now_s() - t0 < timeout_s) {
      const auto cks = list_checkpoints(run + "/checkpoint");
      if (!cks.empty()) {
        try {
          if (train_state_of(read_training_checkpoint(cks.back())).step >= step) return true;
        } catch (const Error&) {
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }

  TrainState newest_checkpoint_state() const {
    const auto cks = list_checkpoints(run + "/checkpoint");
    OFA_CHECK(!cks.empty(), "no checkpoint in ", run);
    return train_state_of(read_training_checkpoint(cks.back()));
  }
};

TEST(LaunchFaults, AKilledRankEndsTheJobNonZeroAndTheLastCheckpointLoadsAndResumes) {
  const int64_t timeout = 20;
  Job job(timeout);
  job.start({});
  const pid_t victim = job.rank_pid(1);
  ASSERT_GT(victim, 0) << job.log();
  ASSERT_TRUE(job.wait_for_checkpoint(2)) << job.log();
  ASSERT_EQ(::kill(victim, SIGKILL), 0);
  double elapsed = 0;
  const int rc = job.wait(timeout + 30.0, &elapsed);
  ASSERT_NE(rc, -1) << "the job did not end within " << timeout + 30 << " s of the kill\n" << job.log();
  EXPECT_NE(rc, 0) << job.log();
  EXPECT_LT(elapsed, timeout + 15.0) << job.log();
  const TrainState st = job.newest_checkpoint_state();
  EXPECT_GE(st.step, 2);
  EXPECT_FALSE(st.finished);
  // The same command with --resume goes on from there (one more step here).
  job.start({"--resume", "--set", "stop_after_steps=1"});
  const int rc2 = job.wait(120);
  EXPECT_EQ(rc2, 0) << job.log();
  EXPECT_TRUE(has(job.out(), "resumed from")) << job.log();
  EXPECT_EQ(job.newest_checkpoint_state().step, st.step + 1);
}

TEST(LaunchFaults, AHungRankEndsTheJobThroughTheWatchdogNamingRankAndOperation) {
  const int64_t timeout = 4;
  Job job(timeout);
  job.start({});
  const pid_t victim = job.rank_pid(1);
  ASSERT_GT(victim, 0) << job.log();
  ASSERT_TRUE(job.wait_for_checkpoint(1)) << job.log();
  ASSERT_EQ(::kill(victim, SIGSTOP), 0);
  double elapsed = 0;
  const int rc = job.wait(timeout + 40.0, &elapsed);
  ::kill(victim, SIGKILL);  // if the launcher left it stopped
  ASSERT_NE(rc, -1) << "the job did not end within " << timeout + 40 << " s of the hang\n" << job.log();
  EXPECT_NE(rc, 0) << job.log();
  EXPECT_LT(elapsed, timeout + 20.0) << job.log();
  const std::string err = job.err();
  EXPECT_TRUE(has(err, "rank 0: ")) << err;
  EXPECT_TRUE(has(err, " #")) << err;
  EXPECT_TRUE(has(err, "did not complete within 4 s")) << err;
  std::printf("the job's stderr:\n%s", err.c_str());
  EXPECT_NO_THROW(job.newest_checkpoint_state());
}

TEST(LaunchFaults, SigtermToOneRankCheckpointsAndEveryRankExitsWith143) {
  Job job(60);
  job.start({});
  const pid_t r1 = job.rank_pid(1);
  ASSERT_GT(r1, 0) << job.log();
  ASSERT_TRUE(job.wait_for_checkpoint(1)) << job.log();
  ASSERT_EQ(::kill(r1, SIGTERM), 0);
  const int rc = job.wait(90);
  ASSERT_NE(rc, -1) << job.log();
  EXPECT_EQ(rc, 128 + SIGTERM) << job.log();
  EXPECT_TRUE(has(job.out(), "stopped by signal 15")) << job.log();
  const TrainState st = job.newest_checkpoint_state();
  EXPECT_GE(st.step, 1);
  EXPECT_FALSE(st.finished);
  EXPECT_FALSE(has(job.err(), "ofa_train: error")) << job.err();
}

}  // namespace
