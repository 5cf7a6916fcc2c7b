#include "ofa/run_data.h"

#include <sys/stat.h>

#include "data/idx.h"
#include "data/sampler.h"

namespace ofa {

namespace {

data::SamplerOptions shard(int64_t world_size, int64_t rank, bool shuffle) {
  data::SamplerOptions so;
  so.world_size = world_size;
  so.rank = rank;
  so.shuffle = shuffle;
  return so;
}

data::LoaderOptions base_options(const RunConfig& cfg) {
  data::LoaderOptions o;
  o.seed = static_cast<uint64_t>(cfg.manual_seed);
  o.n_worker = cfg.n_worker;
  // Batches for a GPU are built in page-locked memory and uploaded asynchronously.
  o.pin_memory = cfg.device.rfind("cuda", 0) == 0;
  o.train.resize_scale = cfg.resize_scale;
  o.train.jitter = data::parse_color_jitter(cfg.distort_color);
  return o;
}

}  // namespace

RunData open_run_data(const RunConfig& cfg) {
  RunData d;
  if (cfg.dataset == "fashion_mnist") {
    const std::string dir = cfg.data_path.empty() ? data::fashion_mnist_dir() : cfg.data_path;
    try {
      auto train = std::make_shared<data::FashionMnistDataset>(data::FashionMnist(data::FashionMnistSplit::Train, dir));
      auto test = std::make_shared<data::FashionMnistDataset>(data::FashionMnist(data::FashionMnistSplit::Test, dir));
      d.train = train;
      d.test = test;
    } catch (const Error& e) {
      throw Error(str_cat("dataset fashion_mnist (key data_path: ", cfg.data_path.empty() ? "default" : cfg.data_path,
                          "): ", e.what()));
    }
    d.n_classes = data::FashionMnist::kClasses;
    d.description = "Fashion-MNIST from " + dir;
  } else if (cfg.dataset == "imagenet") {
    OFA_CHECK(!cfg.data_path.empty(),
              "dataset imagenet: key 'data_path' must name the folder holding train/ and val/ (ImageFolder trees)");
    data::ImageNetFolders f = data::open_imagenet_folders(cfg.data_path, 0);
    d.n_classes = f.train.num_classes();
    OFA_CHECK(f.test.num_classes() == d.n_classes, "dataset imagenet: ", cfg.data_path, "/train has ", d.n_classes,
              " classes but ", cfg.data_path, "/val has ", f.test.num_classes(), ": they must list the same classes");
    d.train = std::make_shared<data::ImageFolderDataset>(std::move(f.train));
    d.test = std::make_shared<data::ImageFolderDataset>(std::move(f.test));
    d.description = "ImageFolder " + cfg.data_path;
  } else {
    throw Error("key 'dataset': unknown data set '" + cfg.dataset + "' (fashion_mnist | imagenet)");
  }
  const int64_t n_train = d.train->size();
  const int64_t valid = cfg.valid_size > 0 ? data::resolve_valid_size(cfg.valid_size, n_train) : 0;
  OFA_CHECK(valid < n_train, "key 'valid_size': ", valid, " hold-out images leave none of the ", n_train,
            " training images of ", d.train->root(), " for training");
  if (valid > 0) {
    data::TrainValidSplit s = data::random_sample_valid_set(n_train, valid);
    d.has_valid = true;
    d.train_indexes = std::move(s.train_indexes);
    d.valid_indexes = std::move(s.valid_indexes);
  } else {
    d.train_indexes.resize(static_cast<size_t>(n_train));
    for (int64_t i = 0; i < n_train; ++i) d.train_indexes[static_cast<size_t>(i)] = i;
  }
  d.description += str_cat(": ", d.train_indexes.size(), " training, ",
                           d.has_valid ? str_cat(d.valid_indexes.size(), " held-out validation, ") : std::string(),
                           d.test->size(), " test images, ", d.n_classes, " classes");
  return d;
}

std::unique_ptr<data::DataLoader> make_train_loader(const RunData& d, const RunConfig& cfg, int64_t world_size,
                                                    int64_t rank) {
  const data::SamplerOptions so = shard(world_size, rank, true);
  data::LoaderOptions o = base_options(cfg);
  o.mode = data::LoaderMode::Train;
  o.batch_size = train_batch_size(cfg);
  o.image_size = cfg.image_size;
  o.continuous = cfg.continuous_size;
  return std::make_unique<data::DataLoader>(d.train, data::DistributedSampler(d.train_indexes, so), o);
}

std::unique_ptr<data::DataLoader> make_eval_loader(const RunData& d, const RunConfig& cfg, EvalSplit split,
                                                   int64_t resolution, int64_t world_size, int64_t rank) {
  const data::SamplerOptions so = shard(world_size, rank, false);
  data::LoaderOptions o = base_options(cfg);
  o.mode = data::LoaderMode::Eval;
  o.batch_size = test_batch_size(cfg);
  o.eval_size = resolution;
  o.eval_crop_ratio = cfg.eval_crop_ratio;
  if (split == EvalSplit::Valid && d.has_valid)
    return std::make_unique<data::DataLoader>(d.train, data::DistributedSampler(d.valid_indexes, so), o);
  return std::make_unique<data::DataLoader>(d.test, data::DistributedSampler(d.test->size(), so), o);
}

std::unique_ptr<data::DataLoader> make_bn_calib_loader(const RunData& d, const RunConfig& cfg, int64_t resolution,
                                                       int64_t world_size, int64_t rank) {
  data::LoaderOptions o = base_options(cfg);
  o.mode = data::LoaderMode::Train;
  o.batch_size = cfg.bn_calib_batch_size;
  o.image_size = {resolution};
  o.continuous = false;
  return std::make_unique<data::DataLoader>(
      d.train, data::sub_train_sampler(d.train->size(), cfg.bn_calib_images, world_size, rank), o);
}

}  // namespace ofa
