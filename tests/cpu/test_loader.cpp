// DataLoader: order from the sampler, per-batch resolution, transforms equal
// to applying them by hand, identical batches whatever the worker count,
// mid-epoch resume, bad files (skipped, named, counted), worker errors,
// shutdown.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "data/loader.h"
#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::data;
using namespace ofa::test;
namespace fs = std::filesystem;

namespace {

// In-memory images of varied sizes; listed indexes are "bad" (DecodeError)
// or "broken" (a plain Error, i.e. a bug rather than a bad file). Counts loads.
class MemoryDataset : public Dataset {
 public:
  explicit MemoryDataset(int64_t n, std::set<int64_t> bad = {}, std::set<int64_t> broken = {})
      : n_(n), bad_(std::move(bad)), broken_(std::move(broken)), loads_(static_cast<size_t>(n)) {}
  int64_t size() const override { return n_; }
  int64_t label(int64_t i) const override { return i % 3; }
  Image load_image(int64_t i) const override {
    loads_[static_cast<size_t>(i)]++;
    if (bad_.count(i)) throw DecodeError(sample_name(i), "corrupt JPEG data");
    if (broken_.count(i)) throw Error("MemoryDataset: broken sample " + std::to_string(i));
    return image(i);
  }
  std::string root() const override { return "mem://set"; }
  std::string sample_name(int64_t i) const override { return "mem://set/img" + std::to_string(i) + ".jpg"; }
  static Image image(int64_t i) {
    Image im;
    im.h = 20 + i % 7;
    im.w = 17 + (i * 5) % 11;
    im.rgb.resize(static_cast<size_t>(im.h * im.w * 3));
    for (size_t k = 0; k < im.rgb.size(); ++k) im.rgb[k] = static_cast<uint8_t>((k * 7 + static_cast<size_t>(i) * 31) % 251);
    return im;
  }
  int64_t loads(int64_t i) const { return loads_[static_cast<size_t>(i)]; }
  int64_t total_loads() const {
    int64_t t = 0;
    for (auto& l : loads_) t += l;
    return t;
  }

 private:
  int64_t n_;
  std::set<int64_t> bad_, broken_;
  mutable std::vector<std::atomic<int64_t>> loads_;
};

// The channels-last storage in memory order ([B, H, W, 3]), as the transforms write it.
std::vector<float> floats(const Tensor& t) {
  EXPECT_TRUE(t.is_contiguous(MemoryFormat::ChannelsLast));
  const float* p = t.data<float>();
  return std::vector<float>(p, p + t.numel());
}

// Raw bytes of the channels-last storage, for bit-for-bit comparisons.
std::vector<uint8_t> bits(const Tensor& t) {
  EXPECT_TRUE(t.is_contiguous(MemoryFormat::ChannelsLast) || t.numel() == 0);
  std::vector<uint8_t> v(static_cast<size_t>(t.numel()) * sizeof(float));
  if (!v.empty()) std::memcpy(v.data(), t.data<float>(), v.size());
  return v;
}

LoaderOptions train_opts(int64_t workers, int64_t bs = 5) {
  LoaderOptions o;
  o.batch_size = bs;
  o.image_size = {16, 20, 24};
  o.continuous = true;
  o.n_worker = workers;
  o.seed = 11;
  o.quiet = true;
  return o;
}

std::vector<Batch> run_epoch(DataLoader& dl, int64_t epoch) {
  dl.set_epoch(epoch);
  std::vector<Batch> v;
  Batch b;
  while (dl.next(b)) v.push_back(b);
  return v;
}

void expect_same(const std::vector<Batch>& a, const std::vector<Batch>& b, const std::string& what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].batch_index, b[i].batch_index) << what;
    EXPECT_EQ(a[i].resolution, b[i].resolution) << what << " batch " << i;
    EXPECT_EQ(a[i].indices, b[i].indices) << what << " batch " << i;
    EXPECT_EQ(a[i].labels.to_vector<int64_t>(), b[i].labels.to_vector<int64_t>()) << what << " batch " << i;
    EXPECT_EQ(bits(a[i].images), bits(b[i].images)) << what << " batch " << i;
  }
}

// A JPEG tree: ROOT/<cls>/<k>.jpg, plus (when asked) a truncated and an empty file.
std::string jpeg_tree(const std::string& name, int64_t per_class, bool with_bad) {
  std::string root = ::testing::TempDir() + "ofa_loader_" + name;
  fs::remove_all(root);
  for (int c = 0; c < 2; ++c) {
    fs::create_directories(root + "/cls" + std::to_string(c));
    for (int64_t k = 0; k < per_class; ++k) {
      Image im = MemoryDataset::image(c * 100 + k);
      std::vector<uint8_t> jpg = encode_jpeg(im.rgb.data(), im.w, im.h, 3);
      char fname[64];
      std::snprintf(fname, sizeof fname, "/cls%d/%03lld.jpg", c, static_cast<long long>(k));
      std::ofstream(root + fname, std::ios::binary).write(reinterpret_cast<const char*>(jpg.data()),
                                                          static_cast<std::streamsize>(jpg.size()));
    }
  }
  if (with_bad) {
    Image im = MemoryDataset::image(7);
    std::vector<uint8_t> jpg = encode_jpeg(im.rgb.data(), im.w, im.h, 3);
    std::ofstream(root + "/cls0/002a_truncated.jpg", std::ios::binary)
        .write(reinterpret_cast<const char*>(jpg.data()), static_cast<std::streamsize>(jpg.size() / 2));
    std::ofstream(root + "/cls1/004a_empty.jpg", std::ios::binary);
  }
  return root;
}

}  // namespace

TEST(Loader, BatchesFollowTheSamplerAndAreChannelsLast) {
  auto ds = std::make_shared<MemoryDataset>(23);
  DataLoader dl(ds, DistributedSampler(23), train_opts(2));
  EXPECT_EQ(dl.batches_per_epoch(), 5);
  std::vector<Batch> v = run_epoch(dl, 3);
  ASSERT_EQ(v.size(), 5u);
  std::vector<int64_t> order = DistributedSampler(23).epoch_indices(3), got;
  for (size_t i = 0; i < v.size(); ++i) {
    const Batch& b = v[i];
    const int64_t B = i < 4 ? 5 : 3, R = b.resolution;
    EXPECT_EQ(b.images.shape(), (Shape{B, 3, R, R}));
    EXPECT_EQ(b.images.dtype(), DType::F32);
    EXPECT_TRUE(b.images.is_contiguous(MemoryFormat::ChannelsLast));
    EXPECT_EQ(b.images.strides(), (Shape{3 * R * R, 1, 3 * R, 3}));
    EXPECT_EQ(b.labels.dtype(), DType::I64);
    EXPECT_EQ(b.labels.shape(), (Shape{B}));
    std::vector<int64_t> lab = b.labels.to_vector<int64_t>();
    for (int64_t j = 0; j < B; ++j) EXPECT_EQ(lab[static_cast<size_t>(j)], b.indices[static_cast<size_t>(j)] % 3);
    got.insert(got.end(), b.indices.begin(), b.indices.end());
    EXPECT_EQ(b.epoch, 3);
    EXPECT_EQ(b.batch_index, static_cast<int64_t>(i));
  }
  EXPECT_EQ(got, order);
  EXPECT_EQ(dl.images_this_epoch(), 23);
  EXPECT_EQ(dl.skipped_this_epoch(), 0);
  Batch b;
  EXPECT_FALSE(dl.next(b)) << "the epoch is over until set_epoch";
}

TEST(Loader, DropLastDropsTheIncompleteBatch) {
  auto ds = std::make_shared<MemoryDataset>(23);
  LoaderOptions o = train_opts(1);
  o.drop_last = true;
  DataLoader dl(ds, DistributedSampler(23), o);
  EXPECT_EQ(dl.batches_per_epoch(), 4);
  for (const Batch& b : run_epoch(dl, 0)) EXPECT_EQ(b.size(), 5);
}

TEST(Loader, PerBatchResolutionIsTheReferenceDraw) {
  auto ds = std::make_shared<MemoryDataset>(60);
  for (bool continuous : {true, false}) {
    LoaderOptions o = train_opts(2, 4);
    o.continuous = continuous;
    DataLoader dl(ds, DistributedSampler(60), o);
    for (int64_t epoch : {0, 2}) {
      std::set<int64_t> seen;
      for (const Batch& b : run_epoch(dl, epoch)) {
        EXPECT_EQ(b.resolution, batch_resolution(b.batch_index, epoch, o.image_size, continuous));
        seen.insert(b.resolution);
      }
      EXPECT_GE(seen.size(), 2u) << "the draw should vary over 15 batches";
    }
  }
  LoaderOptions fixed = train_opts(0);
  fixed.image_size = {18};
  DataLoader dl(ds, DistributedSampler(60), fixed);
  for (const Batch& b : run_epoch(dl, 1)) EXPECT_EQ(b.resolution, 18);
}

TEST(Loader, TrainImagesEqualTheTransformByHand) {
  auto ds = std::make_shared<MemoryDataset>(14);
  LoaderOptions o = train_opts(2, 4);
  o.train.jitter = ColorJitterKind::TF;
  SamplerOptions so;
  so.world_size = 2;
  so.rank = 1;
  DataLoader dl(ds, DistributedSampler(14, so), o);
  std::vector<Batch> v = run_epoch(dl, 4);
  int64_t pos = 0;
  for (const Batch& b : v) {
    const int64_t R = b.resolution, plane = 3 * R * R;
    std::vector<float> got = floats(b.images);
    for (int64_t j = 0; j < b.size(); ++j, ++pos) {
      PyRandom rng(sample_seed(o.seed, 4, 1, pos));
      std::vector<float> want(static_cast<size_t>(plane));
      train_transform(MemoryDataset::image(b.indices[static_cast<size_t>(j)]), R, o.train, rng, want.data(), true);
      EXPECT_EQ(0, std::memcmp(want.data(), got.data() + j * plane, static_cast<size_t>(plane) * sizeof(float)))
          << "batch " << b.batch_index << " row " << j;
    }
  }
  EXPECT_EQ(pos, 7);
}

TEST(Loader, EvalImagesEqualEvalTransformByHand) {
  std::string root = jpeg_tree("eval", 5, false);
  auto ds = std::make_shared<ImageFolderDataset>(root);
  LoaderOptions o;
  o.mode = LoaderMode::Eval;
  o.eval_size = 14;
  o.batch_size = 4;
  o.n_worker = 2;
  SamplerOptions so;
  so.shuffle = false;
  DataLoader dl(ds, DistributedSampler(ds->size(), so), o);
  std::vector<Batch> v = run_epoch(dl, 0);
  ASSERT_EQ(v.size(), 3u);
  int64_t next_index = 0;
  for (const Batch& b : v) {
    EXPECT_EQ(b.resolution, 14);
    const int64_t plane = 3 * 14 * 14;
    std::vector<float> got = floats(b.images);
    for (int64_t j = 0; j < b.size(); ++j) {
      const int64_t idx = b.indices[static_cast<size_t>(j)];
      EXPECT_EQ(idx, next_index++);
      std::vector<float> want(static_cast<size_t>(plane));
      eval_transform(decode_jpeg_file(ds->folder()[idx].path), 14, want.data(), true);
      EXPECT_EQ(0, std::memcmp(want.data(), got.data() + j * plane, static_cast<size_t>(plane) * sizeof(float)))
          << "index " << idx;
      EXPECT_EQ(b.labels.to_vector<int64_t>()[static_cast<size_t>(j)], idx < 5 ? 0 : 1);
    }
  }
}

TEST(Loader, IdenticalBatchesWhateverTheWorkerCount) {
  auto ds = std::make_shared<MemoryDataset>(37);
  std::vector<std::vector<Batch>> runs;
  for (int64_t w : {0, 1, 3}) {
    LoaderOptions o = train_opts(w);
    o.prefetch = w == 3 ? 1 : 0;  // also the tightest queue
    DataLoader dl(ds, DistributedSampler(37), o);
    runs.push_back(run_epoch(dl, 2));
    EXPECT_EQ(dl.worker_stats().size(), static_cast<size_t>(std::max<int64_t>(1, w)));
    int64_t imgs = 0;
    for (auto& s : dl.worker_stats()) imgs += s.images;
    EXPECT_EQ(imgs, 37);
  }
  expect_same(runs[0], runs[1], "0 vs 1 workers");
  expect_same(runs[1], runs[2], "1 vs 3 workers");
  // Another epoch or seed gives other pixels.
  LoaderOptions o = train_opts(3);
  DataLoader dl(ds, DistributedSampler(37), o);
  std::vector<Batch> e3 = run_epoch(dl, 3);
  EXPECT_NE(bits(e3[0].images), bits(runs[0][0].images));
}

TEST(Loader, MidEpochResumeYieldsExactlyTheRemainingBatches) {
  auto full_ds = std::make_shared<MemoryDataset>(31);
  LoaderOptions o = train_opts(2, 4);
  DataLoader full(full_ds, DistributedSampler(31), o);
  std::vector<Batch> all = run_epoch(full, 5);
  ASSERT_EQ(all.size(), 8u);

  auto ds = std::make_shared<MemoryDataset>(31);
  std::string saved;
  {
    DataLoader a(ds, DistributedSampler(31), o);
    a.set_epoch(5);
    Batch b;
    for (int k = 0; k < 3; ++k) ASSERT_TRUE(a.next(b));
    saved = a.position().to_string();
  }  // destroyed with workers mid-epoch
  EXPECT_EQ(saved, "epoch=5 batch=3 of=8 n=31 bs=4 seed=11 world=1 rank=0 sseed=0");
  auto ds2 = std::make_shared<MemoryDataset>(31);
  DataLoader c(ds2, DistributedSampler(31), o);
  c.restore(LoaderPosition::parse(saved));
  std::vector<Batch> rest;
  Batch b;
  while (c.next(b)) rest.push_back(b);
  expect_same(std::vector<Batch>(all.begin() + 3, all.end()), rest, "resumed");
  // The consumed batches were never decoded after the restore.
  for (size_t k = 0; k < 3; ++k)
    for (int64_t i : all[k].indices) EXPECT_EQ(ds2->loads(i), 0) << "index " << i << " of consumed batch " << k;
  EXPECT_EQ(ds2->total_loads(), 31 - 12);
  EXPECT_EQ(c.position().batches_consumed, 8);

  // A position from another configuration is refused, naming both.
  LoaderOptions o5 = o;
  o5.batch_size = 5;
  DataLoader d(ds2, DistributedSampler(31), o5);
  std::string e = error_of([&] { d.restore(LoaderPosition::parse(saved)); });
  EXPECT_TRUE(has(e, "bs=4") && has(e, "bs=5") && has(e, "mem://set")) << e;
  // So is one from another rank.
  SamplerOptions so;
  so.world_size = 2;
  so.rank = 1;
  DataLoader r1(ds2, DistributedSampler(31, so), o);
  LoaderPosition p0 = r1.position();
  p0.rank = 0;
  e = error_of([&] { r1.restore(p0); });
  EXPECT_TRUE(has(e, "rank=0") && has(e, "rank=1")) << e;
}

TEST(Loader, BadFilesAreReplacedNamedAndCounted) {
  std::string root = jpeg_tree("bad", 6, true);
  auto ds = std::make_shared<ImageFolderDataset>(root);
  ASSERT_EQ(ds->size(), 14);
  std::set<int64_t> bad;
  for (int64_t i = 0; i < ds->size(); ++i)
    if (ds->folder()[i].path.find("_truncated") != std::string::npos ||
        ds->folder()[i].path.find("_empty") != std::string::npos)
      bad.insert(i);
  ASSERT_EQ(bad.size(), 2u);
  for (int64_t w : {0, 2}) {
    std::ostringstream warn;
    LoaderOptions o = train_opts(w, 4);
    o.warn = &warn;
    o.quiet = false;
    DataLoader dl(ds, DistributedSampler(ds->size()), o);
    std::vector<Batch> v = run_epoch(dl, 1);
    int64_t listed = 0, images = 0;
    std::set<std::string> names;
    for (const Batch& b : v) {
      EXPECT_EQ(b.size(), b.batch_index < 3 ? 4 : 2) << "Replace keeps batch sizes";
      images += b.size();
      for (int64_t i : b.indices) EXPECT_EQ(bad.count(i), 0u) << "bad index " << i << " delivered";
      for (const SkippedFile& s : b.skipped) {
        names.insert(s.name);
        EXPECT_TRUE(bad.count(s.index));
        EXPECT_FALSE(s.reason.empty());
      }
      listed += static_cast<int64_t>(b.skipped.size());
    }
    EXPECT_EQ(images, 14);
    EXPECT_EQ(dl.skipped_this_epoch(), listed);
    EXPECT_GE(listed, 2);
    EXPECT_EQ(names, (std::set<std::string>{root + "/cls0/002a_truncated.jpg", root + "/cls1/004a_empty.jpg"}));
    EXPECT_TRUE(has(warn.str(), root + "/cls0/002a_truncated.jpg")) << warn.str();
    EXPECT_TRUE(has(warn.str(), root + "/cls1/004a_empty.jpg")) << warn.str();
    EXPECT_TRUE(has(warn.str(), "replaced by")) << warn.str();
  }
}

TEST(Loader, BadFilesDroppedShrinkTheBatch) {
  auto ds = std::make_shared<MemoryDataset>(20, std::set<int64_t>{3, 4, 11});
  LoaderOptions o = train_opts(2, 4);
  o.bad_files = BadFilePolicy::Drop;
  std::ostringstream warn;
  o.warn = &warn;
  o.quiet = false;
  o.max_warnings = 2;
  DataLoader dl(ds, DistributedSampler(20), o);
  std::vector<Batch> v = run_epoch(dl, 0);
  int64_t images = 0;
  for (const Batch& b : v) {
    images += b.size();
    EXPECT_EQ(b.size() + static_cast<int64_t>(b.skipped.size()), 4);
    EXPECT_EQ(b.images.size(0), b.size());
    EXPECT_EQ(b.labels.size(0), b.size());
  }
  EXPECT_EQ(images, 17);
  EXPECT_EQ(dl.skipped_this_epoch(), 3);
  // Two warnings, then one line saying the rest are only counted.
  EXPECT_TRUE(has(warn.str(), "no further warnings")) << warn.str();
  int lines = 0;
  for (char c : warn.str()) lines += c == '\n';
  EXPECT_EQ(lines, 3) << warn.str();
}

TEST(Loader, DefaultPolicyReplacesInTrainingAndDropsInEvaluation) {
  auto ds = std::make_shared<MemoryDataset>(8, std::set<int64_t>{5});
  LoaderOptions o = train_opts(1, 4);
  SamplerOptions so;
  so.shuffle = false;
  DataLoader train(ds, DistributedSampler(8, so), o);
  EXPECT_EQ(train.options().bad_files, BadFilePolicy::Replace);
  std::vector<Batch> t = run_epoch(train, 0);
  EXPECT_EQ(t[1].indices, (std::vector<int64_t>{4, 6, 6, 7})) << "5 is replaced by the next index, 6";
  ASSERT_EQ(t[1].skipped.size(), 1u);
  EXPECT_EQ(t[1].skipped[0].replaced_by, 6);
  o.mode = LoaderMode::Eval;
  o.eval_size = 8;
  DataLoader eval(ds, DistributedSampler(8, so), o);
  EXPECT_EQ(eval.options().bad_files, BadFilePolicy::Drop);
  std::vector<Batch> e = run_epoch(eval, 0);
  EXPECT_EQ(e[1].indices, (std::vector<int64_t>{4, 6, 7}));
  EXPECT_EQ(e[1].skipped[0].replaced_by, -1);
}

TEST(Loader, EveryFileBadIsAnErrorNamingTheRoot) {
  std::string root = ::testing::TempDir() + "ofa_loader_allbad";
  fs::remove_all(root);
  fs::create_directories(root + "/a");
  for (int k = 0; k < 5; ++k) std::ofstream(root + "/a/" + std::to_string(k) + ".jpg") << "not a jpeg";
  auto ds = std::make_shared<ImageFolderDataset>(root);
  for (BadFilePolicy policy : {BadFilePolicy::Replace, BadFilePolicy::Drop}) {
    for (int64_t w : {0, 2}) {
      LoaderOptions o = train_opts(w, 2);
      o.bad_files = policy;
      DataLoader dl(ds, DistributedSampler(ds->size()), o);
      dl.set_epoch(0);
      Batch b;
      std::string e = error_of([&] {
        while (dl.next(b)) {
        }
      });
      EXPECT_TRUE(has(e, root)) << e;
      EXPECT_TRUE(has(e, "decode")) << e;
    }
  }
}

TEST(Loader, WorkerErrorsReachTheConsumer) {
  auto ds = std::make_shared<MemoryDataset>(20, std::set<int64_t>{}, std::set<int64_t>{13});
  for (int64_t w : {0, 3}) {
    SamplerOptions so;
    so.shuffle = false;
    DataLoader dl(ds, DistributedSampler(20, so), train_opts(w, 4));
    dl.set_epoch(0);
    Batch b;
    for (int k = 0; k < 3; ++k) ASSERT_TRUE(dl.next(b));
    std::string e = error_of([&] { dl.next(b); });  // batch 3 holds index 13
    EXPECT_TRUE(has(e, "broken sample 13")) << e;
    EXPECT_TRUE(dl.next(b)) << "the loader goes on after the failed batch";
    EXPECT_EQ(b.batch_index, 4);
  }
}

TEST(Loader, HostBatchHookSeesEveryBatch) {
  auto ds = std::make_shared<MemoryDataset>(17);
  LoaderOptions o = train_opts(3, 4);
  std::atomic<int> calls{0};
  o.host_batch_hook = [&](Batch& b) {
    EXPECT_TRUE(b.images.defined());
    ++calls;
  };
  DataLoader dl(ds, DistributedSampler(17), o);
  EXPECT_EQ(run_epoch(dl, 0).size(), 5u);
  EXPECT_EQ(calls.load(), 5);
}

TEST(Loader, RanksTogetherCoverTheEpoch) {
  auto ds = std::make_shared<MemoryDataset>(29);
  std::multiset<int64_t> seen;
  for (int64_t r = 0; r < 3; ++r) {
    SamplerOptions so;
    so.world_size = 3;
    so.rank = r;
    DataLoader dl(ds, DistributedSampler(29, so), train_opts(1, 4));
    for (const Batch& b : run_epoch(dl, 6)) seen.insert(b.indices.begin(), b.indices.end());
  }
  EXPECT_EQ(seen.size(), 30u);  // 29 + one padding duplicate
  for (int64_t i = 0; i < 29; ++i) EXPECT_GE(seen.count(i), 1u) << i;
}

TEST(Loader, ShutdownWhileWorkersAreBusy) {
  auto ds = std::make_shared<MemoryDataset>(400);
  for (int k = 0; k < 5; ++k) {
    DataLoader dl(ds, DistributedSampler(400), train_opts(3, 8));
    dl.set_epoch(static_cast<int64_t>(k));
    Batch b;
    if (k % 2) ASSERT_TRUE(dl.next(b));
  }  // joins without hanging
}

TEST(Loader, BadOptionsAreNamed) {
  auto ds = std::make_shared<MemoryDataset>(4);
  LoaderOptions o = train_opts(0);
  o.batch_size = 0;
  EXPECT_TRUE(has(error_of([&] { DataLoader dl(ds, DistributedSampler(4), o); }), "batch_size"));
  o = train_opts(0);
  EXPECT_TRUE(has(error_of([&] { DataLoader dl(ds, DistributedSampler(9), o); }), "outside the data set"));
  o.image_size = {};
  EXPECT_TRUE(has(error_of([&] { DataLoader dl(ds, DistributedSampler(4), o); }), "image_size"));
}

TEST(Loader, FashionMnistBatches) {
  struct stat st;
  if (::stat((fashion_mnist_dir() + "/t10k-images-idx3-ubyte.gz").c_str(), &st) != 0)
    GTEST_SKIP() << "SKIPPED: Fashion-MNIST not found in " << fashion_mnist_dir();
  auto ds = std::make_shared<FashionMnistDataset>(FashionMnist(FashionMnistSplit::Test));
  LoaderOptions o;
  o.mode = LoaderMode::Eval;
  o.eval_size = 28;
  o.batch_size = 16;
  o.n_worker = 2;
  DataLoader dl(ds, DistributedSampler(sub_train_indexes(ds->size(), 32)), o);
  std::vector<Batch> v = run_epoch(dl, 0);
  ASSERT_EQ(v.size(), 2u);
  std::vector<float> want(3 * 28 * 28);
  eval_transform(ds->data().rgb(v[1].indices[3]), 28, want.data(), true);
  std::vector<float> got = floats(v[1].images);
  EXPECT_EQ(0, std::memcmp(want.data(), got.data() + 3 * want.size(), want.size() * sizeof(float)));
  EXPECT_EQ(v[1].labels.to_vector<int64_t>()[3], ds->label(v[1].indices[3]));
}
