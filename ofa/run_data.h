// The data of a run, opened from its configuration as the reference's data
// providers open it: the training set, the hold-out validation split of it
// (valid_size), and the test set; plus the loaders the RunManager and the
// evaluation helper draw from.
//   fashion_mnist: data_path (default: the Debian package's folder) holds the
//                  IDX files; train = the 60000 training images, test = t10k.
//   imagenet:      data_path/train and data_path/val as ImageFolders (JPEG).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/loader.h"
#include "ofa/run_config.h"

namespace ofa {

struct RunData {
  std::string description;  // one line: the data set, where, and the split sizes
  std::shared_ptr<const data::Dataset> train;  // the whole training set
  std::shared_ptr<const data::Dataset> test;
  int64_t n_classes = 0;
  bool has_valid = false;               // valid_size > 0: a hold-out split of train
  std::vector<int64_t> train_indexes;   // what training draws from (all of train without a split)
  std::vector<int64_t> valid_indexes;   // the hold-out images (empty without a split)
};

// Opens cfg.dataset at cfg.data_path; throws ofa::Error naming the files or
// folder and the key to fix when they are missing or unreadable.
RunData open_run_data(const RunConfig& cfg);

// The training loader of a rank: its share of train_indexes (seed 0 sampler,
// as the reference's), batch base_batch_size, a per-batch resolution drawn
// from image_size (continuous_size), the training transforms (resize_scale,
// distort_color), augmentation streams from manual_seed.
std::unique_ptr<data::DataLoader> make_train_loader(const RunData& d, const RunConfig& cfg, int64_t world_size = 1,
                                                    int64_t rank = 0);

// Which images a validation or test pass reads.
enum class EvalSplit { Valid, Test };
// Valid: the hold-out split with evaluation transforms, or the test set
// when there is none (as the reference). Test: the test set.
std::unique_ptr<data::DataLoader> make_eval_loader(const RunData& d, const RunConfig& cfg, EvalSplit split,
                                                   int64_t resolution, int64_t world_size = 1, int64_t rank = 0);

// build_sub_train_loader: bn_calib_images images of the whole training set
// (the reference's SUB_SEED subset), training transforms at `resolution`,
// batches of bn_calib_batch_size.
std::unique_ptr<data::DataLoader> make_bn_calib_loader(const RunData& d, const RunConfig& cfg, int64_t resolution,
                                                       int64_t world_size = 1, int64_t rank = 0);

}  // namespace ofa
