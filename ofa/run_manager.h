// RunManager: one progressive-shrinking stage (or the teacher's training) as
// the reference's train() / train_one_epoch() / validate() run it
// (progressive_shrinking.py, run_manager.py), with the run folder, logs,
// progress, checkpoints and resume of a serious training framework.
//
// One step (batch i of nBatch in epoch e): lr = learning_rate(cfg, e, i, ...);
// the teacher (train mode, no gradient) gives soft targets when kd_ratio > 0;
// the gradients are zeroed; for j < dynamic_batch_size the subnet is drawn
// with Python's random seeded int("%d%.3d%.3d" % (e * nBatch + i, j, 0)), run
// forward, its loss (label-smoothed CE + kd_ratio * KD) backward; then one
// optimizer step over the summed gradients.
//
// The run folder (cfg.path):
//   net_info.txt, run.config, net.config  as the reference writes them
//   run.yaml                              the effective configuration (loadable)
//   logs/train_console.txt, logs/valid_console.txt   text logs
//   logs/metrics.jsonl                    every logged metric, one JSON object a line
//   checkpoint/stepNNNNNNNNN.safetensors  the newest keep_checkpoints checkpoints
//   checkpoint/model_best.safetensors     the best validated one
//   final.safetensors                     the stage's result, written when it finishes
// A checkpoint is a supernet checkpoint (ofa_eval reads it) whose metadata
// adds "train_state" (JSON: stage, epoch, batch, step, best accuracy, RNG and
// loader positions, meters, configuration, CRC-32 of the data) and whose
// tensors add the optimizer's state under "optimizer/". Written atomically
// (temporary file, fsync, rename, directory fsync).
#pragma once
#include <atomic>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

#include "data/loader.h"
#include "engine/safetensors.h"
#include "engine/random.h"
#include "nn/optim.h"
#include "ofa/evaluation.h"
#include "ofa/meters.h"
#include "ofa/ofa_mbv3.h"
#include "ofa/run_config.h"
#include "ofa/run_data.h"

namespace ofa {

// The loss stopped being finite: names the stage, epoch, step and subnet.
class TrainingDiverged : public Error {
 public:
  using Error::Error;
};

// ---- stop requests (SIGINT / SIGTERM): the loop checkpoints and returns
// after the step in progress.
void install_stop_signal_handlers();  // SIGINT and SIGTERM call request_stop
void request_stop(int signal_number);
int stop_signal();  // 0 when no stop was requested
void clear_stop_request();

// Where a stage stands; saved in every checkpoint.
struct TrainState {
  std::string stage;
  int64_t epoch = 0;        // the epoch in progress (warmup epochs included)
  int64_t batch = 0;        // batches of it done
  int64_t step = 0;         // optimizer steps done in the stage
  double best_acc = 0;      // best mean validation top-1
  double elapsed_s = 0;     // training wall time over all invocations
  bool finished = false;
};

struct RunOptions {
  std::ostream* out = nullptr;  // console (progress, logs); nullptr = std::cout
  bool progress_bar = false;    // a live bar (a terminal) instead of plain lines every print_frequency batches
  std::string stage_id;         // empty: stage_id(cfg.task, cfg.phase)
};

enum class StageOutcome { Finished, Stopped };

// The device `name` names (cpu, cuda, cuda:N). A CUDA device that is not
// there is an error that starts with `what` (where the name came from: "key
// 'device'", "ofa_eval --device") and names the remedies, `cpu_choice` (how
// to pick the CPU there) among them.
Device resolve_device(const std::string& name, const std::string& what, const std::string& cpu_choice);
// resolve_device for the run configuration's 'device' key.
Device train_device(const std::string& name);

class RunManager {
 public:
  RunManager(RunConfig cfg, std::shared_ptr<const RunData> data, RunOptions opt = {});
  virtual ~RunManager();
  RunManager(const RunManager&) = delete;
  RunManager& operator=(const RunManager&) = delete;

  const RunConfig& config() const { return cfg_; }
  nn::OFAMobileNetV3& net() { return *net_; }
  Device device() const { return device_; }  // where the network trains (key 'device')
  const TrainState& state() const { return state_; }
  std::string checkpoint_dir() const { return cfg_.path + "/checkpoint"; }
  std::string final_path() const { return cfg_.path + "/final.safetensors"; }

  // Fresh start: the folder must not hold a checkpoint of this stage; weights
  // from cfg.init_path (then, for an expand stage, re_organize_middle_weights)
  // or cfg.model_init; writes the run-folder files. Resume: continues from the
  // newest checkpoint of the folder (or cfg.resume_path), refusing a corrupt
  // or mismatched one with the reason and the previous good checkpoint named.
  void start(bool resume);
  // Trains until the last epoch ends (then writes final.safetensors) or a
  // stop is requested (stop signal, stop_after_steps): then it checkpoints.
  // Throws TrainingDiverged (writing nothing) when a loss is not finite.
  StageOutcome train();

  // The reference's validate(): the grid of min/max of the stage's lists at
  // the validation resolutions, each with recalibrated BN; returns the
  // results and logs them. Mean top-1 over the grid is the run's accuracy.
  std::vector<SubnetResult> validate(EvalSplit split, int64_t epoch, const char* tag);

  // Writes a checkpoint of the current state (tests use it directly).
  void save_checkpoint();

  // ---- distributed hooks (DistributedRunManager overrides them)
  virtual int64_t world_size() const { return 1; }
  virtual int64_t rank() const { return 0; }
  bool is_root() const { return rank() == 0; }

 protected:
  // The backward pass of the step's last subnet (of dynamic_batch_size);
  // DistributedRunManager overlaps the gradient averaging with it.
  virtual void last_backward(const Tensor& loss) { loss.backward(); }
  // Average the gradients over ranks, once per optimizer step (after the
  // dynamic_batch_size subnets' backward passes).
  virtual void sync_gradients() {}
  // Element-wise sum over ranks, in place (metrics, BN statistics).
  virtual void allreduce_sum(std::vector<double>&) {}
  // True on every rank when `local` is true on any (stop requests).
  virtual bool any_rank(bool local) { return local; }
  // Rank 0's parameters and buffers to every rank (start and resume).
  virtual void broadcast_state() {}
  // Every rank waits for the others (before rank 0 writes a fresh run's files,
  // after it wrote a stage's final or stop checkpoint that the others read next).
  virtual void barrier() {}

 private:
  void build_network();
  void load_teacher();
  void write_run_files();
  void resume_from(const std::string& path);
  void train_one_epoch(int64_t epoch, bool& stop);
  void log_line(const std::string& file, const std::string& line, bool print);
  void log_json(const std::string& json_line);
  std::string train_state_json() const;
  void write_checkpoint(const std::string& path);

  RunConfig cfg_;
  std::shared_ptr<const RunData> data_;
  RunOptions opt_;
  std::string stage_;
  Device device_ = Device::cpu();
  std::shared_ptr<nn::OFAMobileNetV3> net_;
  std::shared_ptr<nn::MobileNetV3> teacher_;
  std::unique_ptr<nn::Optimizer> optimizer_;
  std::unique_ptr<data::DataLoader> loader_;
  Generator dropout_gen_;
  TrainState state_;
  AverageMeter loss_meter_;
  AccuracyMeters acc_meters_;
  int64_t steps_this_run_ = 0;
  double last_checkpoint_time_ = 0;  // steady clock, seconds
  double run_start_time_ = 0;
  double elapsed_at_start_ = 0;
};

// ---- checkpoint files
// The checkpoint files of a folder, oldest first (by step); temporary files
// of interrupted writes are not listed.
std::vector<std::string> list_checkpoints(const std::string& dir);
// Reads a checkpoint and checks its CRC and train_state; throws ofa::Error
// naming the file and what is wrong.
SafetensorsFile read_training_checkpoint(const std::string& path);
TrainState train_state_of(const SafetensorsFile& f);

}  // namespace ofa
