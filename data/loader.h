// The reference's training/evaluation data loaders (torch DataLoader and the
// OFA MyDataLoader) on worker threads:
//   - order: a DistributedSampler (data/sampler.h), consecutive batches of
//     batch_size from this rank's epoch indices (the last one smaller unless
//     drop_last);
//   - train mode: one resolution per batch, batch_resolution(batch index in the
//     epoch, epoch, image_size, continuous) as MyDataLoader draws it (a single
//     image_size is that size, as torch's DataLoader + RandomResizedCrop), and
//     train_transform per image with a PyRandom seeded from (seed, epoch, rank,
//     position in the epoch), so batches are bit-identical whatever n_worker;
//   - eval mode: eval_transform at eval_size.
// Batches: images float32 [B, 3, R, R] in channels-last memory, labels int64 [B].
//
// Workers build whole batches ahead of the consumer (at most `prefetch`
// batches ready or in progress), the consumer receives them in order. An
// exception in a worker (other than a bad file) is rethrown by next().
//
// Bad files (DecodeError: truncated, empty, not a JPEG...) never crash a run:
// each is recorded in the batch (Batch::skipped), counted for the epoch, and
// named in a warning (the first max_warnings of an epoch). What fills its slot
// is BadFilePolicy (Auto, the default: Replace in train mode, Drop in eval):
//   Replace (default): the next index of the sampler's index list (wrapping)
//     that decodes, transformed with the bad slot's own random stream. Batch
//     sizes stay fixed (BN statistics and distributed steps expect it), the
//     choice depends only on the data, and only indexes the sampler may draw
//     are used (a hold-out validation image never leaks into training). If no
//     index of the list decodes, next() throws an Error naming the root.
//   Drop: the batch gets smaller (an all-bad batch is skipped); if an epoch
//     delivers no image at all, next() throws an Error naming the root.
//     Preferable for evaluation, where a duplicate would be counted twice.
//
// Resuming: position() after each batch; restore(position) continues that
// epoch with the next batch, without decoding the consumed ones.
#pragma once
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "data/dataset.h"
#include "data/sampler.h"
#include "data/transforms.h"
#include "engine/tensor.h"

namespace ofa::data {

enum class LoaderMode { Train, Eval };
enum class BadFilePolicy { Auto, Replace, Drop };

struct SkippedFile {
  int64_t index = -1;     // dataset index
  std::string name;       // the file (Dataset::sample_name)
  std::string reason;
  int64_t replaced_by = -1;  // dataset index that filled the slot; -1 when dropped
};

struct Batch {
  Tensor images;  // float32 [B, 3, R, R], channels-last memory
  Tensor labels;  // int64 [B]
  std::vector<int64_t> indices;  // dataset index of each row
  int64_t epoch = 0;
  int64_t batch_index = 0;  // within the epoch (the resolution draw's batch_id)
  int64_t resolution = 0;
  std::vector<SkippedFile> skipped;
  int64_t worker = -1;  // the worker that built it (-1: the consumer's thread)
  int64_t size() const { return static_cast<int64_t>(indices.size()); }
  // images and labels moved to d (nothing when they are there already). From
  // pinned memory (LoaderOptions::pin_memory) to a CUDA device the copies are
  // asynchronous on the device's compute stream: the host goes on at once and
  // the kernels queued after them see the data.
  void to_device(Device d);
};

struct LoaderOptions {
  LoaderMode mode = LoaderMode::Train;
  int64_t batch_size = 64;
  bool drop_last = false;  // drop this rank's last incomplete batch (the reference keeps it)
  // Train: resolution candidates (several: a per-batch draw, as MyDataLoader;
  // one: fixed). `continuous` = MyRandomResizedCrop.CONTINUOUS (train_ofa_net.py sets True).
  std::vector<int64_t> image_size{224};
  bool continuous = true;
  TrainOptions train;  // resize_scale, colour jitter
  int64_t eval_size = 224;  // Eval resolution
  double eval_crop_ratio = 0.875;  // Eval: resize the short side to ceil(eval_size / ratio), centre-crop eval_size
  uint64_t seed = 0;        // augmentation streams
  int64_t n_worker = 4;     // 0: batches are built in the consumer's thread, on demand
  int64_t prefetch = 0;     // batches ready or in progress ahead of the consumer; 0: 2 * n_worker
  BadFilePolicy bad_files = BadFilePolicy::Auto;  // Replace for Train, Drop for Eval
  int64_t max_warnings = 20;       // per epoch; later ones are only counted
  std::ostream* warn = nullptr;    // warnings go here; nullptr: std::cerr
  bool quiet = false;              // no warnings at all (they are still in Batch::skipped)
  // Assemble images and labels in page-locked host memory (empty_pinned), so
  // that the trainer's batch.to(cuda, non_blocking) is an asynchronous copy
  // (Batch::to_device). Needs a CUDA device (or the emulation).
  bool pin_memory = false;
  // Runs on the worker thread on each assembled host batch, before it is queued.
  std::function<void(Batch&)> host_batch_hook;
};

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const Dataset> dataset, DistributedSampler sampler, LoaderOptions opt);
  ~DataLoader();  // stops and joins the workers
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  const LoaderOptions& options() const { return opt_; }
  const Dataset& dataset() const { return *ds_; }
  const DistributedSampler& sampler() const { return sampler_; }
  int64_t batches_per_epoch() const;

  // Starts `epoch` at its first batch (the reference's sampler.set_epoch).
  // Without a call, the first next() starts epoch 0.
  void set_epoch(int64_t epoch);
  // The next batch of the current epoch; false once the epoch is over (call
  // set_epoch for the next one).
  bool next(Batch& out);

  LoaderPosition position() const;
  // Continues where `pos` was saved: its epoch, from its next batch. Throws
  // when pos comes from a loader with another data set size, batch size,
  // batches per epoch or seed.
  void restore(const LoaderPosition& pos);

  // Bad files met by the batches delivered since the epoch (or the restore) began.
  int64_t skipped_this_epoch() const { return skipped_epoch_; }
  int64_t images_this_epoch() const { return images_epoch_; }

  struct WorkerStats {
    int64_t images = 0;
    int64_t batches = 0;
    double busy_s = 0;  // time spent building batches
  };
  // One entry per worker (one for the consumer's thread when n_worker is 0).
  std::vector<WorkerStats> worker_stats() const;

  // Builds batch `batch_index` of `epoch` on the calling thread (what the
  // workers run; exposed for tests and tools).
  Batch build_batch(int64_t epoch, int64_t batch_index) const;

 private:
  struct EpochCtx {
    int64_t epoch = 0;
    std::vector<int64_t> indices;
    uint64_t generation = 0;
  };
  struct Result {
    Batch batch;
    std::exception_ptr error;
  };
  void start(int64_t epoch, int64_t first_batch);
  Batch build(const EpochCtx& ctx, int64_t batch_index, int64_t worker) const;
  void worker_loop(int64_t w);
  void report(const Batch& b);

  std::shared_ptr<const Dataset> ds_;
  DistributedSampler sampler_;
  LoaderOptions opt_;
  std::vector<int64_t> base_pos_;  // dataset index -> position in the sampler's list (-1: absent)
  int64_t depth_ = 1;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::thread> workers_;
  bool stop_ = false;
  std::shared_ptr<const EpochCtx> ctx_;
  uint64_t generation_ = 0;
  int64_t next_job_ = 0, end_job_ = 0;
  int64_t consumed_ = 0;
  std::map<int64_t, Result> ready_;
  std::vector<WorkerStats> stats_;

  // Consumer-side counters.
  bool started_ = false;
  int64_t skipped_epoch_ = 0, images_epoch_ = 0, warned_epoch_ = 0;
};

// The per-image random stream of a training sample: PyRandom seeded with a
// mix of (seed, epoch, rank, position of the sample in the rank's epoch).
uint64_t sample_seed(uint64_t seed, int64_t epoch, int64_t rank, int64_t position);

}  // namespace ofa::data
