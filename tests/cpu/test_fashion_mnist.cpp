// Fashion-MNIST from the Debian package's IDX files (skipped visibly when
// they are not installed), error handling on small synthetic files, and the
// JPEG ImageFolder exporter (ofa_export_jpeg) round trip.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/export_jpeg.h"
#include "data/fashion_mnist.h"
#include "data/image_folder.h"
#include "data/jpeg.h"
#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::data;
namespace fs = std::filesystem;

namespace {

bool have_fashion_mnist() {
  struct stat st;
  return ::stat((fashion_mnist_dir() + "/train-images-idx3-ubyte.gz").c_str(), &st) == 0;
}

#define REQUIRE_FASHION_MNIST()                                                                   \
  do {                                                                                            \
    if (!have_fashion_mnist())                                                                    \
      GTEST_SKIP() << "SKIPPED: Fashion-MNIST not found in " << fashion_mnist_dir()               \
                   << " (install the Debian package dataset-fashion-mnist or set OFA_FASHION_MNIST_DIR)"; \
  } while (0)

std::string fresh_dir(const std::string& name) {
  std::string d = ::testing::TempDir() + "ofa_fmnist_" + name;
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

std::vector<uint8_t> be32(uint32_t v) {
  return {uint8_t(v >> 24), uint8_t(v >> 16), uint8_t(v >> 8), uint8_t(v)};
}

// Plain (uncompressed) IDX files: n images of rows x cols, n labels.
void write_set(const std::string& dir, const std::string& prefix, uint32_t n, uint32_t rows, uint32_t cols,
               std::vector<uint8_t> labels) {
  std::vector<uint8_t> im = {0, 0, 8, 3};
  for (uint32_t v : {n, rows, cols})
    for (uint8_t b : be32(v)) im.push_back(b);
  for (uint32_t i = 0; i < n * rows * cols; ++i) im.push_back(static_cast<uint8_t>(i * 7));
  write_bytes(dir + "/" + prefix + "-images-idx3-ubyte", im);
  std::vector<uint8_t> lb = {0, 0, 8, 1};
  for (uint8_t b : be32(static_cast<uint32_t>(labels.size()))) lb.push_back(b);
  lb.insert(lb.end(), labels.begin(), labels.end());
  write_bytes(dir + "/" + prefix + "-labels-idx1-ubyte", lb);
}

TEST(FashionMnist, ClassNames) {
  const auto& c = fashion_mnist_classes();
  ASSERT_EQ(c.size(), 10u);
  EXPECT_EQ(c[0], "T-shirt/top");
  EXPECT_EQ(c[5], "Sandal");
  EXPECT_EQ(c[9], "Ankle boot");
}

TEST(FashionMnist, LoadsTrainSplit) {
  REQUIRE_FASHION_MNIST();
  FashionMnist ds(FashionMnistSplit::Train);
  ASSERT_EQ(ds.size(), 60000);
  // Values read from the files with Python's gzip module.
  std::vector<int64_t> first;
  for (int i = 0; i < 10; ++i) first.push_back(ds.label(i));
  EXPECT_EQ(first, (std::vector<int64_t>{9, 0, 0, 3, 0, 2, 7, 2, 5, 5}));
  std::vector<int64_t> count(10, 0);
  for (int64_t i = 0; i < ds.size(); ++i) ++count[static_cast<size_t>(ds.label(i))];
  EXPECT_EQ(count, std::vector<int64_t>(10, 6000));
  int64_t s0 = 0, s1 = 0;
  for (int p = 0; p < 784; ++p) s0 += ds.image(0)[p], s1 += ds.image(1)[p];
  EXPECT_EQ(s0, 76247);
  EXPECT_EQ(s1, 84598);
  EXPECT_EQ(ds.image(0)[14 * 28 + 14], 217);
}

TEST(FashionMnist, LoadsTestSplit) {
  REQUIRE_FASHION_MNIST();
  FashionMnist ds(FashionMnistSplit::Test);
  ASSERT_EQ(ds.size(), 10000);
  std::vector<int64_t> first;
  for (int i = 0; i < 10; ++i) first.push_back(ds.label(i));
  EXPECT_EQ(first, (std::vector<int64_t>{9, 2, 1, 1, 6, 1, 4, 6, 5, 7}));
  int64_t s0 = 0;
  for (int p = 0; p < 784; ++p) s0 += ds.image(0)[p];
  EXPECT_EQ(s0, 33456);
  EXPECT_EQ(ds.image(0)[14 * 28 + 14], 110);
}

TEST(FashionMnist, RgbReplicatesGrey) {
  REQUIRE_FASHION_MNIST();
  FashionMnist ds(FashionMnistSplit::Test);
  Image img = ds.rgb(3);
  ASSERT_EQ(img.h, 28);
  ASSERT_EQ(img.w, 28);
  ASSERT_EQ(img.rgb.size(), 28u * 28u * 3u);
  for (int64_t y = 0; y < 28; ++y)
    for (int64_t x = 0; x < 28; ++x)
      for (int c = 0; c < 3; ++c) ASSERT_EQ(img.at(y, x, c), ds.image(3)[y * 28 + x]);
}

TEST(FashionMnist, OtherFolderAndPlainFiles) {
  std::string d = fresh_dir("plain");
  write_set(d, "t10k", 3, 28, 28, {4, 0, 9});
  FashionMnist ds(FashionMnistSplit::Test, d);
  EXPECT_EQ(ds.size(), 3);
  EXPECT_EQ(ds.label(2), 9);
  EXPECT_EQ(ds.image(1)[0], static_cast<uint8_t>(784 * 7));
  EXPECT_EQ(ds.images_path(), d + "/t10k-images-idx3-ubyte");
  EXPECT_TRUE(test::has(test::error_of([&] { ds.image(3); }), "out of range"));
  EXPECT_TRUE(test::has(test::error_of([&] { ds.label(-1); }), "out of range"));
}

TEST(FashionMnist, MissingFilesNameThem) {
  std::string d = fresh_dir("missing");
  std::string e = test::error_of([&] { FashionMnist ds(FashionMnistSplit::Train, d); });
  EXPECT_TRUE(test::has(e, d + "/train-images-idx3-ubyte.gz")) << e;
  EXPECT_TRUE(test::has(e, "dataset-fashion-mnist")) << e;
}

TEST(FashionMnist, MalformedSetsAreRefusedNamingTheFile) {
  std::string d = fresh_dir("bad_shape");
  write_set(d, "train", 2, 27, 28, {1, 2});
  std::string e = test::error_of([&] { FashionMnist ds(FashionMnistSplit::Train, d); });
  EXPECT_TRUE(test::has(e, d + "/train-images-idx3-ubyte")) << e;
  EXPECT_TRUE(test::has(e, "[N, 28, 28]")) << e;

  d = fresh_dir("bad_count");
  write_set(d, "train", 2, 28, 28, {1, 2, 3});
  e = test::error_of([&] { FashionMnist ds(FashionMnistSplit::Train, d); });
  EXPECT_TRUE(test::has(e, "2 images")) << e;
  EXPECT_TRUE(test::has(e, "3 labels")) << e;

  d = fresh_dir("bad_label");
  write_set(d, "train", 2, 28, 28, {1, 10});
  e = test::error_of([&] { FashionMnist ds(FashionMnistSplit::Train, d); });
  EXPECT_TRUE(test::has(e, d + "/train-labels-idx1-ubyte")) << e;
  EXPECT_TRUE(test::has(e, "label 10")) << e;

  d = fresh_dir("truncated");
  write_set(d, "train", 2, 28, 28, {1, 2});
  fs::resize_file(d + "/train-images-idx3-ubyte", 100);
  e = test::error_of([&] { FashionMnist ds(FashionMnistSplit::Train, d); });
  EXPECT_TRUE(test::has(e, d + "/train-images-idx3-ubyte")) << e;
}

TEST(FashionMnist, GreyToRgb) {
  const uint8_t g[6] = {0, 10, 20, 30, 40, 255};
  Image img = grey_to_rgb(g, 2, 3);
  EXPECT_EQ(img.h, 2);
  EXPECT_EQ(img.w, 3);
  EXPECT_EQ(img.at(1, 2, 0), 255);
  EXPECT_EQ(img.at(1, 2, 2), 255);
  EXPECT_EQ(img.at(0, 1, 1), 10);
}

// ------------------------------------------------------------------ exporter

TEST(ExportJpeg, ClassFolderNames) {
  EXPECT_EQ(class_folder_name(0, "T-shirt/top", 10), "0_T-shirt_top");
  EXPECT_EQ(class_folder_name(9, "Ankle boot", 10), "9_Ankle_boot");
  EXPECT_EQ(class_folder_name(3, "a.b_c-d", 12), "03_a.b_c-d");  // padded so sorting keeps label order
  EXPECT_EQ(class_folder_name(11, "x", 12), "11_x");
}

// Synthetic 28x28 sets with smooth images (JPEG keeps them close), label i % 10.
void write_smooth_set(const std::string& dir, const std::string& prefix, uint32_t n) {
  std::vector<uint8_t> im = {0, 0, 8, 3};
  for (uint32_t v : {n, 28u, 28u})
    for (uint8_t b : be32(v)) im.push_back(b);
  for (uint32_t i = 0; i < n; ++i)
    for (uint32_t y = 0; y < 28; ++y)
      for (uint32_t x = 0; x < 28; ++x) im.push_back(static_cast<uint8_t>((i * 20 + x * 4 + y * 3) % 256));
  write_bytes(dir + "/" + prefix + "-images-idx3-ubyte", im);
  std::vector<uint8_t> lb = {0, 0, 8, 1};
  for (uint8_t b : be32(n)) lb.push_back(b);
  for (uint32_t i = 0; i < n; ++i) lb.push_back(static_cast<uint8_t>(i % 10));
  write_bytes(dir + "/" + prefix + "-labels-idx1-ubyte", lb);
}

// Every exported file decodes to its IDX image under its IDX label.
void check_tree(const std::string& split_dir, const FashionMnist& src, int64_t expect_images, int max_err) {
  ImageFolder f(split_dir);
  std::vector<std::string> want_classes;
  for (int64_t c = 0; c < 10; ++c) want_classes.push_back(class_folder_name(c, fashion_mnist_classes()[c], 10));
  EXPECT_EQ(f.classes(), want_classes);
  ASSERT_EQ(f.size(), expect_images);
  int64_t prev_label = -1, prev_index = -1;
  for (const auto& s : f.samples()) {
    int64_t idx = std::stoll(fs::path(s.path).stem().string());
    EXPECT_EQ(s.label, src.label(idx)) << s.path;
    if (s.label == prev_label) EXPECT_GT(idx, prev_index) << "sorted file order is IDX order";
    prev_label = s.label;
    prev_index = idx;
    Image img = decode_jpeg_file(s.path);
    ASSERT_EQ(img.w, 28);
    ASSERT_EQ(img.h, 28);
    int worst = 0;
    for (int64_t p = 0; p < 784; ++p) {
      EXPECT_EQ(img.rgb[3 * p], img.rgb[3 * p + 2]);
      worst = std::max(worst, std::abs(int(img.rgb[3 * p]) - int(src.image(idx)[p])));
    }
    EXPECT_LE(worst, max_err) << s.path;
  }
}

TEST(ExportJpeg, RoundTripThroughImageFolder) {
  std::string data = fresh_dir("export_src");
  write_smooth_set(data, "train", 35);
  write_smooth_set(data, "t10k", 20);
  std::string out = fresh_dir("export_out") + "/tree";
  ExportJpegOptions o;
  o.out_dir = out;
  o.data_dir = data;
  o.quality = 100;
  o.limit_per_class = 3;
  std::ostringstream log;
  o.progress = &log;
  ExportJpegResult r = export_fashion_mnist_jpeg(o);
  EXPECT_EQ(r.train_images, 30);  // labels 0..4 appear 4 times, 5..9 three times; 3 kept of each
  EXPECT_EQ(r.val_images, 20);    // two of each label, all kept
  EXPECT_TRUE(fs::is_directory(out));
  EXPECT_FALSE(fs::exists(out + ".tmp"));
  EXPECT_TRUE(test::has(log.str(), "train")) << log.str();
  FashionMnist train(FashionMnistSplit::Train, data), test_set(FashionMnistSplit::Test, data);
  check_tree(out + "/train", train, 30, 3);
  check_tree(out + "/val", test_set, 20, 3);
  EXPECT_TRUE(fs::exists(out + "/train/0_T-shirt_top/00.jpg"));
  EXPECT_FALSE(fs::exists(out + "/train/0_T-shirt_top/30.jpg"));  // the 4th image of label 0: over the limit
  std::ifstream cls(out + "/classes.txt");
  std::string line;
  std::getline(cls, line);
  EXPECT_EQ(line, "0_T-shirt_top\t0\tT-shirt/top");
  ImageNetFolders both = open_imagenet_folders(out, 0.1);  // the layout the training loader opens
  EXPECT_EQ(both.split.valid_indexes.size(), 3u);
}

TEST(ExportJpeg, SwappedSplits) {
  std::string data = fresh_dir("export_swap_src");
  write_smooth_set(data, "train", 10);
  write_smooth_set(data, "t10k", 20);
  ExportJpegOptions o;
  o.out_dir = fresh_dir("export_swap") + "/tree";
  o.data_dir = data;
  o.train_split = "test";
  o.val_split = "test";
  ExportJpegResult r = export_fashion_mnist_jpeg(o);
  EXPECT_EQ(r.train_images, 20);
  EXPECT_EQ(r.val_images, 20);
}

TEST(ExportJpeg, FailuresLeaveNoTree) {
  std::string base = fresh_dir("export_fail");
  ExportJpegOptions o;
  o.out_dir = base + "/tree";
  o.data_dir = base + "/no_data_here";
  std::string e = test::error_of([&] { export_fashion_mnist_jpeg(o); });
  EXPECT_TRUE(test::has(e, "no_data_here")) << e;
  EXPECT_FALSE(fs::exists(o.out_dir));
  EXPECT_FALSE(fs::exists(o.out_dir + ".tmp"));
  // Test files missing: the train split is written first, then the whole tree goes.
  write_smooth_set(base, "train", 10);
  o.data_dir = base;
  e = test::error_of([&] { export_fashion_mnist_jpeg(o); });
  EXPECT_TRUE(test::has(e, "t10k-images-idx3-ubyte")) << e;
  EXPECT_FALSE(fs::exists(o.out_dir));
  EXPECT_FALSE(fs::exists(o.out_dir + ".tmp"));
}

TEST(ExportJpeg, RefusesExistingOutputAndBadOptions) {
  std::string base = fresh_dir("export_opts");
  write_smooth_set(base, "train", 10);
  write_smooth_set(base, "t10k", 10);
  ExportJpegOptions o;
  o.out_dir = base + "/tree";
  o.data_dir = base;
  fs::create_directories(o.out_dir);
  EXPECT_TRUE(test::has(test::error_of([&] { export_fashion_mnist_jpeg(o); }), "already exists"));
  fs::remove_all(o.out_dir);
  fs::create_directories(o.out_dir + ".tmp");
  EXPECT_TRUE(test::has(test::error_of([&] { export_fashion_mnist_jpeg(o); }), "interrupted"));
  EXPECT_FALSE(fs::exists(o.out_dir));
  fs::remove_all(o.out_dir + ".tmp");
  o.quality = 0;
  EXPECT_TRUE(test::has(test::error_of([&] { export_fashion_mnist_jpeg(o); }), "quality"));
  o.quality = 90;
  o.train_split = "validation";
  EXPECT_TRUE(test::has(test::error_of([&] { export_fashion_mnist_jpeg(o); }), "\"validation\""));
  o.train_split = "train";
  o.out_dir = "";
  EXPECT_TRUE(test::has(test::error_of([&] { export_fashion_mnist_jpeg(o); }), "output folder"));
}

TEST(ExportJpeg, RealFashionMnistSmallLimit) {
  REQUIRE_FASHION_MNIST();
  ExportJpegOptions o;
  o.out_dir = fresh_dir("export_real") + "/fm";
  o.limit_per_class = 2;
  ExportJpegResult r = export_fashion_mnist_jpeg(o);
  EXPECT_EQ(r.train_images, 20);
  EXPECT_EQ(r.val_images, 20);
  FashionMnist train(FashionMnistSplit::Train);
  ImageFolder f(o.out_dir + "/train");
  ASSERT_EQ(f.size(), 20);
  // Train image 1 is the first T-shirt/top, image 0 the first ankle boot.
  EXPECT_EQ(f[0].path, o.out_dir + "/train/0_T-shirt_top/00001.jpg");
  EXPECT_EQ(f[18].path, o.out_dir + "/train/9_Ankle_boot/00000.jpg");
  EXPECT_EQ(f[18].label, 9);
  // Quality 95 on real clothing images: close on average, within a JPEG's error at edges.
  for (int64_t i : {int64_t{0}, int64_t{18}}) {
    int64_t idx = std::stoll(fs::path(f[i].path).stem().string());
    Image img = decode_jpeg_file(f[i].path);
    double err = 0;
    for (int64_t p = 0; p < 784; ++p) err += std::abs(int(img.rgb[3 * p]) - int(train.image(idx)[p]));
    EXPECT_LT(err / 784, 3.0) << f[i].path;
  }
}

}  // namespace
