// The reference's samplers, index for index:
//  - DistributedSampler: torch.utils.data.DistributedSampler(dataset of n,
//    num_replicas, rank, shuffle, seed, drop_last) after set_epoch(e), torch
//    1.13: randperm(n) from a generator seeded with seed + epoch, padded to a
//    multiple of the world size by repeating from the start (or truncated with
//    drop_last), then indices[rank : total : world_size].
//  - Over a subset (sub_indexes): the reference's MyDistributedSampler, which
//    permutes positions in the subset the same way (its generator is seeded
//    with the epoch, i.e. seed 0) and maps them through the subset.
// A single process uses the same code with world_size 1: the reference's
// single-process RandomSampler/SubsetRandomSampler draw from torch's global
// generator, which no engine can share, so the distributed order is the one
// reproduced.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/image_folder.h"  // kSubSeed

namespace ofa::data {

struct SamplerOptions {
  int64_t world_size = 1;
  int64_t rank = 0;
  bool shuffle = true;
  uint64_t seed = 0;      // DistributedSampler's seed; the generator gets seed + epoch
  bool drop_last = false;  // drop the tail instead of padding (DistributedSampler's drop_last)
};

class DistributedSampler {
 public:
  // Over every index 0 .. dataset_size - 1.
  DistributedSampler(int64_t dataset_size, SamplerOptions opt = {});
  // Over the dataset indexes in `sub_indexes` (MyDistributedSampler).
  DistributedSampler(std::vector<int64_t> sub_indexes, SamplerOptions opt = {});

  const SamplerOptions& options() const { return opt_; }
  // The indexes sampled from, in their given order.
  const std::vector<int64_t>& base_indexes() const { return base_; }
  int64_t base_size() const { return static_cast<int64_t>(base_.size()); }
  int64_t num_samples() const { return num_samples_; }  // per rank and epoch
  int64_t total_size() const { return num_samples_ * opt_.world_size; }
  // This rank's dataset indexes for `epoch`, in order.
  std::vector<int64_t> epoch_indices(int64_t epoch) const;

 private:
  void init();
  SamplerOptions opt_;
  std::vector<int64_t> base_;
  int64_t num_samples_ = 0;
};

// build_sub_train_loader's subset for BN recalibration:
// torch.randperm(train_size, generator seeded with seed)[:n_images]. n_images
// larger than train_size gives all of them (Python's slice).
std::vector<int64_t> sub_train_indexes(int64_t train_size, int64_t n_images, uint64_t seed = kSubSeed);
// The sampler build_sub_train_loader gives those indexes: MyDistributedSampler
// over them, whose epoch is never set (so always epoch 0's order; pass
// epoch 0 to epoch_indices). train_size is the whole train folder's size, as
// the reference takes len(self.train.dataset). The loader over it uses the
// training transforms at the active resolution (LoaderOptions::image_size =
// {active}).
DistributedSampler sub_train_sampler(int64_t train_size, int64_t n_images, int64_t world_size = 1, int64_t rank = 0);

// Where a data loader stands: the epoch, and how many of its batches the
// consumer has received. The sampler's order is a pure function of the epoch,
// so this is all a checkpoint needs to resume mid-epoch; the other fields
// guard against restoring into a loader configured differently.
struct LoaderPosition {
  int64_t epoch = 0;
  int64_t batches_consumed = 0;
  int64_t batches_per_epoch = 0;  // of the loader that saved it
  int64_t dataset_size = 0;
  int64_t batch_size = 0;
  uint64_t seed = 0;       // augmentation seed of the loader
  int64_t world_size = 1;  // the sampler's
  int64_t rank = 0;
  uint64_t sampler_seed = 0;
  // "epoch=3 batch=17 of=40 n=1000 bs=25 seed=0 world=1 rank=0 sseed=0": one
  // line, for checkpoints.
  std::string to_string() const;
  static LoaderPosition parse(const std::string& s);  // Error naming the text on a bad line
  bool operator==(const LoaderPosition& o) const;
};

}  // namespace ofa::data
