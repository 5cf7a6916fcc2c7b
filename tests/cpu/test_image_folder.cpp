// ImageFolder listing (torchvision 0.14's order and class mapping) and the
// OFA reference's hold-out validation split.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "data/image_folder.h"
#include "data/torch_random.h"
#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::data;
namespace fs = std::filesystem;

namespace {

// A fresh folder under the test temp dir.
std::string fresh_dir(const std::string& name) {
  std::string d = ::testing::TempDir() + "ofa_imagefolder_" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void touch(const std::string& root, const std::string& rel) {
  fs::path p = fs::path(root) / rel;
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << "x";
}

// The tree and its expected listing were checked against torchvision 0.14:
// ImageFolder(root, loader=lambda p: p).classes / .samples.
const std::vector<std::string> kTreeFiles = {
    "b_cls/img10.jpg", "b_cls/img2.JPG",       "b_cls/a.png",         "b_cls/notes.txt",   "b_cls/z.JpEg",
    "b_cls/sub/x.jpg", "b_cls/sub2/y.jpg",     "b_cls/Sub/q.jpg",     "A_cls/1.jpg",       "a_cls/0.webp",
    "a_cls/.hidden.jpg", "\xc3\xa9_cls/e.bmp", "c_cls/deep/deeper/k.tiff", "c_cls/deep/j.jpg", "c_cls/deep.jpg",
    "c_cls/deep-x/m.ppm", "c_cls/photo.jpg.gz", "c_cls/B.pgm",         "c_cls/b.tif",       "readme.jpg"};

const std::vector<std::pair<int64_t, std::string>> kTorchvisionSamples = {
    {0, "A_cls/1.jpg"},      {1, "a_cls/.hidden.jpg"}, {1, "a_cls/0.webp"},       {2, "b_cls/a.png"},
    {2, "b_cls/img10.jpg"},  {2, "b_cls/img2.JPG"},    {2, "b_cls/z.JpEg"},       {2, "b_cls/Sub/q.jpg"},
    {2, "b_cls/sub/x.jpg"},  {2, "b_cls/sub2/y.jpg"},  {3, "c_cls/B.pgm"},        {3, "c_cls/b.tif"},
    {3, "c_cls/deep.jpg"},   {3, "c_cls/deep/j.jpg"},  {3, "c_cls/deep-x/m.ppm"}, {3, "c_cls/deep/deeper/k.tiff"},
    {4, "\xc3\xa9_cls/e.bmp"}};

TEST(ImageFolder, OrderAndClassMappingMatchTorchvision) {
  std::string root = fresh_dir("tree");
  for (const auto& f : kTreeFiles) touch(root, f);
  ImageFolder ds(root);
  EXPECT_EQ(ds.classes(), (std::vector<std::string>{"A_cls", "a_cls", "b_cls", "c_cls", "\xc3\xa9_cls"}));
  EXPECT_EQ(ds.class_to_idx().at("c_cls"), 3);
  ASSERT_EQ(ds.size(), static_cast<int64_t>(kTorchvisionSamples.size()));
  for (size_t i = 0; i < kTorchvisionSamples.size(); ++i) {
    EXPECT_EQ(ds.samples()[i].label, kTorchvisionSamples[i].first) << i;
    EXPECT_EQ(ds.samples()[i].path, root + "/" + kTorchvisionSamples[i].second) << i;
  }
  EXPECT_EQ(ds[3].path, root + "/b_cls/a.png");
  EXPECT_TRUE(test::has(test::error_of([&] { ds[17]; }), "out of range"));
}

TEST(ImageFolder, TrailingSlashGivesTheSamePaths) {
  std::string root = fresh_dir("slash");
  touch(root, "k/1.jpg");
  ImageFolder ds(root + "/");
  EXPECT_EQ(ds.root(), root);
  EXPECT_EQ(ds[0].path, root + "/k/1.jpg");
}

TEST(ImageFolder, ExtensionsAreTorchvisionsIgnoringCase) {
  for (const char* ok : {"a.jpg", "a.JPEG", "a.Png", "a.ppm", "a.bmp", "a.pgm", "a.tif", "a.TIFF", "a.webp", ".jpg"})
    EXPECT_TRUE(has_image_extension(ok)) << ok;
  for (const char* bad : {"a.gif", "a.jpg.gz", "a.txt", "a", "jpg", "a.jp", "a.jpgx"})
    EXPECT_FALSE(has_image_extension(bad)) << bad;
}

TEST(ImageFolder, SymlinkedClassFolderIsFollowedAndLoopsEnd) {
  std::string root = fresh_dir("links");
  std::string elsewhere = fresh_dir("links_target");
  touch(elsewhere, "img.jpg");
  fs::create_directory_symlink(elsewhere, fs::path(root) / "linked");
  touch(root, "plain/a.jpg");
  fs::create_directory_symlink(fs::path(root) / "plain", fs::path(root) / "plain" / "loop");  // plain/loop -> plain
  ImageFolder ds(root);
  EXPECT_EQ(ds.classes(), (std::vector<std::string>{"linked", "plain"}));
  ASSERT_EQ(ds.size(), 2);  // the loop is walked once (Python would recurse until ELOOP)
  EXPECT_EQ(ds[0].path, root + "/linked/img.jpg");
  EXPECT_EQ(ds[1].path, root + "/plain/a.jpg");
}

TEST(ImageFolder, EmptyClassFolderIsAnErrorNamingIt) {
  std::string root = fresh_dir("emptyclass");
  touch(root, "full/a.jpg");
  touch(root, "textonly/notes.txt");
  fs::create_directories(fs::path(root) / "nothing");
  std::string e = test::error_of([&] { ImageFolder ds(root); });
  EXPECT_TRUE(test::has(e, root + "/nothing")) << e;
  EXPECT_TRUE(test::has(e, root + "/textonly")) << e;
  EXPECT_FALSE(test::has(e, root + "/full")) << e;
  EXPECT_TRUE(test::has(e, "no image file")) << e;
}

TEST(ImageFolder, EmptyOrMissingRootIsAnErrorNamingIt) {
  std::string root = fresh_dir("emptyroot");
  touch(root, "loose.jpg");  // files directly in the root are not classes
  std::string e = test::error_of([&] { ImageFolder ds(root); });
  EXPECT_TRUE(test::has(e, root)) << e;
  EXPECT_TRUE(test::has(e, "no class folder")) << e;
  std::string missing = root + "/not_here";
  e = test::error_of([&] { ImageFolder ds(missing); });
  EXPECT_TRUE(test::has(e, missing)) << e;
  EXPECT_TRUE(test::has(e, "not a folder")) << e;
}

// ------------------------------------------------------------------ hold-out split

TEST(ImageFolderSplit, ValidSetIsHeadOfTorchRandperm) {
  // torch.randperm(10, generator=torch.Generator().manual_seed(2147483647))
  //   == [1, 9, 7, 4, 0, 5, 6, 8, 3, 2]  (tests/data/randperm_golden.txt)
  TrainValidSplit s = random_sample_valid_set(10, 3);
  EXPECT_EQ(s.valid_indexes, (std::vector<int64_t>{1, 9, 7}));
  EXPECT_EQ(s.train_indexes, (std::vector<int64_t>{4, 0, 5, 6, 8, 3, 2}));
  TrainValidSplit z = random_sample_valid_set(10, 0);
  EXPECT_TRUE(z.valid_indexes.empty());
  EXPECT_EQ(z.train_indexes, (std::vector<int64_t>{1, 9, 7, 4, 0, 5, 6, 8, 3, 2}));
}

TEST(ImageFolderSplit, LargeSplitPartitionsTheIndexes) {
  TrainValidSplit s = random_sample_valid_set(60000, 10000);
  TorchGenerator g(kValidSeed);
  std::vector<int64_t> r = randperm(60000, g);
  ASSERT_EQ(s.valid_indexes.size(), 10000u);
  ASSERT_EQ(s.train_indexes.size(), 50000u);
  EXPECT_TRUE(std::equal(s.valid_indexes.begin(), s.valid_indexes.end(), r.begin()));
  EXPECT_TRUE(std::equal(s.train_indexes.begin(), s.train_indexes.end(), r.begin() + 10000));
  // torch.randperm(60000, generator seeded 2147483647)[:3] (tests/data/randperm_golden.txt)
  EXPECT_EQ(s.valid_indexes[0], 2031);
  EXPECT_EQ(s.valid_indexes[1], 32248);
  EXPECT_EQ(s.valid_indexes[2], 15165);
}

TEST(ImageFolderSplit, ValidSizeNeedsToBeSmallerThanTrain) {
  EXPECT_TRUE(test::has(test::error_of([] { random_sample_valid_set(10, 10); }), "train_size > valid_size"));
  EXPECT_TRUE(test::has(test::error_of([] { random_sample_valid_set(10, -1); }), "valid_size -1"));
}

TEST(ImageFolderSplit, ResolveValidSizeTruncatesLikePythonInt) {
  EXPECT_EQ(resolve_valid_size(0.1, 60000), 6000);
  EXPECT_EQ(resolve_valid_size(0.29, 100), 28);  // 100 * 0.29 == 28.999999999999996 in doubles; int() -> 28
  EXPECT_EQ(resolve_valid_size(10000, 60000), 10000);
  EXPECT_TRUE(test::has(test::error_of([] { resolve_valid_size(2.5, 100); }), "whole number"));
  EXPECT_TRUE(test::has(test::error_of([] { resolve_valid_size(-0.1, 100); }), "valid_size"));
}

TEST(ImageFolderSplit, OpenImagenetFolders) {
  std::string root = fresh_dir("imagenet");
  for (const char* c : {"n01", "n02"})
    for (int i = 0; i < 5; ++i) {
      touch(root, std::string("train/") + c + "/" + std::to_string(i) + ".JPEG");
      if (i < 2) touch(root, std::string("val/") + c + "/v" + std::to_string(i) + ".JPEG");
    }
  ImageNetFolders f = open_imagenet_folders(root, 3);
  EXPECT_EQ(f.train.size(), 10);
  EXPECT_EQ(f.test.size(), 4);
  EXPECT_TRUE(f.has_valid);
  TrainValidSplit want = random_sample_valid_set(10, 3);
  EXPECT_EQ(f.split.valid_indexes, want.valid_indexes);
  EXPECT_EQ(f.split.train_indexes, want.train_indexes);
  ImageNetFolders g = open_imagenet_folders(root, 0.5);
  EXPECT_EQ(g.split.valid_indexes.size(), 5u);
  ImageNetFolders n = open_imagenet_folders(root);
  EXPECT_FALSE(n.has_valid);
  EXPECT_EQ(n.split.train_indexes, (std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  touch(root, "val/n03/x.JPEG");
  std::string e = test::error_of([&] { open_imagenet_folders(root); });
  EXPECT_TRUE(test::has(e, "differ")) << e;
  EXPECT_TRUE(test::has(e, root + "/val")) << e;
}

}  // namespace
