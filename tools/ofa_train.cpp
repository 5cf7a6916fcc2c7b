// ofa_train: trains an OFA supernet with progressive shrinking: the whole
// recipe of a configuration file (teacher, kernel, depth, expand stages) or
// one stage of it. See `ofa_train --help`.
//
// The same binary runs alone or as the ranks of a data-parallel job started
// by an MPI launcher (mpirun -np N ofa_train ..., srun ofa_train ...): under
// a launcher it initialises MPI, builds the communicator (MPI for CPU
// training; NCCL over MPI for CUDA devices when built with both) and trains
// each stage with a DistributedRunManager. Rank 0 alone prints the normal
// output and writes the run folder; an error is printed by the rank that met
// it, prefixed "rank R: ", and ends every rank (MPI_Abort with the exit
// status below).
//
// Test hook: when OFA_TEST_PID_DIR is set, each rank writes its process id
// to $OFA_TEST_PID_DIR/rankR.pid after start-up (the fault tests kill or
// stop one rank by it).
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <streambuf>
#include <string>
#include <vector>

#include "distributed/communicator.h"
#include "distributed/distributed_run_manager.h"
#include "ofa/progressive_shrinking.h"
#include "ofa/run_config.h"
#include "ofa/run_manager.h"
#ifdef OFA_WITH_MPI
#include "distributed/mpi_communicator.h"
#endif
#if defined(OFA_WITH_MPI) && defined(OFA_WITH_CUDA)
#include "distributed/nccl_communicator.h"
#endif

using namespace ofa;

namespace {

struct Options {
  std::string config = "configs/fashion_mnist.yaml";
  std::vector<std::string> overrides;
  bool resume = false, print_config = false, list_keys = false;
  std::string task, from, path;
  int64_t phase = 0;
  int progress = -1;  // -1: a bar when stdout is a terminal
};

void usage(FILE* out) {
  std::fprintf(out,
               "usage: ofa_train [--config FILE] [--set KEY=VALUE]... [--resume] [--path DIR]\n"
               "                 [--task teacher|kernel|depth|expand [--phase 1|2] [--from CHECKPOINT]]\n"
               "                 [--print-config] [--keys] [--progress | --no-progress]\n"
               "\n"
               "Trains an Once-for-All MobileNetV3 supernet with progressive shrinking. FILE (default\n"
               "configs/fashion_mnist.yaml) is a YAML run configuration with the reference's\n"
               "train_ofa_net.py keys; its `stages` list is the recipe (teacher, kernel, depth phase 1\n"
               "and 2, expand phase 1 and 2), each stage starting from the previous one's\n"
               "final.safetensors and distilling from the teacher stage's. Every stage writes its run\n"
               "folder PATH/STAGE (logs, metrics.jsonl, checkpoints, final.safetensors).\n"
               "\n"
               "  --config FILE      the run configuration (see configs/)\n"
               "  --set KEY=VALUE    override a key in every stage (repeatable), e.g. --set n_worker=2\n"
               "  --resume           continue: finished stages are skipped, a stopped one goes on from\n"
               "                     its newest checkpoint (bit-identical to an uninterrupted run)\n"
               "  --path DIR         the run's root folder (key 'path')\n"
               "  --task T           run only the stage of task T (and --phase P for depth/expand)\n"
               "  --from CHECKPOINT  with --task: the weights it starts from (key 'init_path')\n"
               "  --print-config     print the effective configuration of every stage and exit\n"
               "  --keys             list every configuration key with its default and meaning\n"
               "  --progress         a live progress bar; --no-progress: plain lines every\n"
               "                     print_frequency batches (the default when stdout is not a terminal)\n"
               "\n"
               "SIGINT / SIGTERM: the step in progress finishes, a checkpoint is written, and the\n"
               "program exits with 128 + the signal number; --resume continues from there.\n"
               "\n"
               "Distributed: `mpirun -np N ofa_train ...` (or srun) trains data-parallel on N ranks: each\n"
               "its shard of every epoch, the same subnets, gradients averaged (keys allreduce_bucket_mb,\n"
               "overlap_grad_sync, comm_timeout_s), lr = base_lr * N; rank 0 prints and writes the run\n"
               "folder. A signal to any rank stops every rank after the same step (send it to the ranks, as\n"
               "srun/scancel do: mpirun itself kills its ranks on SIGTERM). A rank that dies or hangs ends\n"
               "the job within comm_timeout_s; run the same command with --resume to continue.\n"
               "exit status: 0 finished (or stopped by stop_after_steps), 1 error, 2 bad command line,\n"
               "3 the loss diverged (nothing saved over the last good checkpoint), 128+N stopped by signal N,\n"
               "124 a collective did not complete within comm_timeout_s (distributed runs)\n");
}

struct UsageError : Error {
  using Error::Error;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(a + " needs a value (see --help)");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      usage(stdout);
      std::exit(0);
    } else if (a == "--config") o.config = value();
    else if (a == "--set") o.overrides.push_back(value());
    else if (a == "--resume") o.resume = true;
    else if (a == "--path") o.path = value();
    else if (a == "--task") o.task = value();
    else if (a == "--phase") {
      const std::string v = value();
      if (v != "1" && v != "2") throw UsageError("--phase must be 1 or 2, got '" + v + "'");
      o.phase = std::stoll(v);
    } else if (a == "--from") o.from = value();
    else if (a == "--print-config") o.print_config = true;
    else if (a == "--keys") o.list_keys = true;
    else if (a == "--progress") o.progress = 1;
    else if (a == "--no-progress") o.progress = 0;
    else throw UsageError("unknown option '" + a + "' (see --help)");
  }
  if (!o.task.empty() && o.task != "teacher" && o.task != "kernel" && o.task != "depth" && o.task != "expand")
    throw UsageError("--task must be teacher, kernel, depth or expand, got '" + o.task + "'");
  if (o.task.empty() && (o.phase != 0 || !o.from.empty())) throw UsageError("--phase and --from need --task");
  if ((o.task == "depth" || o.task == "expand") && o.phase == 0) o.phase = 1;
  return o;
}

// The recipe to run: the file's, or its one stage that --task names.
RecipeConfig select(const Options& o) {
  std::vector<std::string> ov = o.overrides;
  if (!o.path.empty()) ov.push_back("path=" + o.path);
  RecipeConfig r = load_recipe_config(o.config, ov);
  if (o.task.empty()) return r;
  const std::string id = stage_id(o.task, o.phase);
  RecipeConfig one = r;
  one.stages.clear();
  for (size_t k = 0; k < r.stages.size(); ++k) {
    if (r.stages[k].id != id) continue;
    StageConfig s = r.stages[k];
    s.cfg = chained_stage_config(r, k);  // the previous stage's result and the teacher, as in the recipe
    if (!o.from.empty()) s.cfg.init_path = o.from;
    one.stages.push_back(s);
  }
  if (one.stages.empty()) {
    // Not a stage of the file: the file's keys with this task (the task table fills the rest).
    std::vector<std::string> ov2 = ov;
    ov2.push_back("task=" + o.task);
    if (o.phase != 0) ov2.push_back("phase=" + std::to_string(o.phase));
    if (!o.from.empty()) ov2.push_back("init_path=" + o.from);
    RecipeConfig base = load_recipe_config(o.config, ov2);
    one.stages.push_back({id, base.base});
    if (base.has_stages) one.stages.back().cfg.path = recipe_root_path(base.base) + "/" + id;
  }
  return one;
}

// Drops everything: the console of ranks other than 0.
class NullBuffer : public std::streambuf {
 protected:
  int overflow(int c) override { return c; }
};

void write_test_pid_file(int64_t rank) {
  const char* dir = std::getenv("OFA_TEST_PID_DIR");
  if (!dir || !*dir) return;
  const std::string path = std::string(dir) + "/rank" + std::to_string(rank) + ".pid";
  {
    std::ofstream f(path + ".tmp");
    f << ::getpid() << "\n";
  }
  std::rename((path + ".tmp").c_str(), path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  // ---- the launcher's ranks
  int64_t world = 1, rank = 0;
#ifdef OFA_WITH_MPI
  std::unique_ptr<dist::MpiSession> mpi;
  if (dist::launched_by_mpi()) {
    mpi = std::make_unique<dist::MpiSession>(&argc, &argv);
    world = mpi->world_size();
    rank = mpi->rank();
  }
#else
  if (dist::launched_by_mpi() && dist::launcher_world_size() > 1) {
    std::fprintf(stderr,
                 "rank %lld: ofa_train: error: started by an MPI launcher as %lld ranks, but this ofa_train was built "
                 "without MPI (CMake found no MPI: install libopenmpi-dev openmpi-bin, e.g. scripts/install_deps.sh, "
                 "and rebuild), so it cannot train on several ranks; run it without mpirun/srun for one process\n",
                 static_cast<long long>(dist::launcher_rank()), static_cast<long long>(dist::launcher_world_size()));
    return 1;
  }
#endif
  const bool root = rank == 0;
  const std::string who = world > 1 ? "rank " + std::to_string(rank) + ": ofa_train" : "ofa_train";
  std::shared_ptr<dist::Communicator> comm;
  // Ends this process with `code`: a failing rank ends every rank (the others
  // may wait in a collective); otherwise MPI is finalised after a barrier.
  auto finish = [&](int code, bool failed) -> int {
#ifdef OFA_WITH_MPI
    if (mpi && world > 1 && failed) dist::MpiSession::abort(code);
    if (comm && !failed) comm->barrier();  // every rank done (rank 0's files written)
    comm.reset();
    mpi.reset();
#endif
    (void)failed;
    return code;
  };
  auto error = [&](int code, const char* what) -> int {
    std::fprintf(stderr, "%s: error: %s\n", who.c_str(), what);
    std::fflush(stderr);
    return finish(code, true);
  };

  Options o;
  try {
    o = parse(argc, argv);
  } catch (const std::exception& e) {
    // The same command line on every rank: every rank says it, none waits.
    std::fprintf(stderr, "%s: error: %s\n", who.c_str(), e.what());
    return finish(2, false);
  }
  try {
    if (o.list_keys) {
      if (root)
        for (const RunConfigKeyInfo& k : run_config_keys())
          std::printf("%-32s %-16s default %-24s %s\n", k.name.c_str(), k.type.c_str(), k.default_yaml.c_str(),
                      k.doc.c_str());
      return finish(0, false);
    }
    const RecipeConfig recipe = select(o);
    if (o.print_config) {
      if (root)
        for (size_t k = 0; k < recipe.stages.size(); ++k)
          std::printf("# ---- stage %zu: %s\n%s\n", k + 1, recipe.stages[k].id.c_str(),
                      run_config_to_yaml(chained_stage_config(recipe, k)).c_str());
      return finish(0, false);
    }
    install_stop_signal_handlers();
    write_test_pid_file(rank);
    RecipeOptions ro;
    ro.resume = o.resume;
    ro.progress_bar = root && (o.progress == 1 || (o.progress == -1 && isatty(1)));
    NullBuffer null_buffer;
    std::ostream null_out(&null_buffer);
    if (!root) ro.out = &null_out;
#ifdef OFA_WITH_MPI
    if (mpi && world > 1) {
      bool cuda = false;
      for (const StageConfig& s : recipe.stages) cuda = cuda || s.cfg.device.rfind("cuda", 0) == 0;
      dist::CommOptions co;
      co.timeout_s = recipe.stages.empty() ? 300.0 : recipe.stages[0].cfg.comm_timeout_s;
      auto boot = std::make_shared<dist::MpiCommunicator>(MPI_COMM_WORLD, co);
#ifdef OFA_WITH_CUDA
      if (cuda) comm = std::make_shared<dist::NcclCommunicator>(boot, co);
#endif
      if (!comm) comm = boot;
      ro.make_manager = distributed_manager_factory(comm);
    }
#endif
    if (root) {
      std::printf("ofa_train: %s, %zu stage%s:", o.config.c_str(), recipe.stages.size(),
                  recipe.stages.size() == 1 ? "" : "s");
      for (const StageConfig& s : recipe.stages) std::printf(" %s", s.id.c_str());
      std::printf("%s", o.resume ? " (resuming)" : "");
      if (comm) std::printf(" on %lld ranks (%s)", static_cast<long long>(world), comm->backend());
      std::printf("\n");
      std::fflush(stdout);
    }
    const RecipeOutcome r = run_recipe(recipe, ro);
    if (r == RecipeOutcome::Stopped && stop_signal() != 0) return finish(128 + stop_signal(), false);
    return finish(0, false);
  } catch (const TrainingDiverged& e) {
    return error(3, e.what());
  } catch (const std::exception& e) {
    return error(1, e.what());
  }
}
