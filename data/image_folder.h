// torchvision.datasets.ImageFolder's listing, and the OFA reference's
// hold-out validation split (ImagenetDataProvider with valid_size).
//
// ROOT/<class>/**/<file>: classes are the sub-folders of ROOT sorted by name
// (byte order, as Python's sorted() of str), labelled 0, 1, ... in that order.
// Files are found recursively (following links), folders visited in sorted
// path order and files sorted by name within each, exactly as torchvision's
// make_dataset does (one difference: a folder reached again through a link,
// e.g. a link loop, is walked once, where Python would recurse until ELOOP).
// Only torchvision's image extensions are listed
// (.jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp, any case); this engine
// decodes JPEG only, so a non-JPEG file is listed (keeping the indexes and the
// valid split identical to the reference) and fails at decode time as a bad
// file (DecodeError), which the loader skips or reports.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ofa::data {

struct ImageSample {
  std::string path;
  int64_t label = 0;
};

// torchvision's IMG_EXTENSIONS.
const std::vector<std::string>& image_extensions();
// True when `name` ends with one of them, ignoring ASCII case.
bool has_image_extension(const std::string& name);

class ImageFolder {
 public:
  // Lists `root`. Throws ofa::Error naming the folder when it cannot be read,
  // has no class folders, or a class folder has no image file.
  explicit ImageFolder(const std::string& root);
  const std::string& root() const { return root_; }
  const std::vector<std::string>& classes() const { return classes_; }
  const std::map<std::string, int64_t>& class_to_idx() const { return class_to_idx_; }
  const std::vector<ImageSample>& samples() const { return samples_; }
  int64_t size() const { return static_cast<int64_t>(samples_.size()); }
  const ImageSample& operator[](int64_t i) const;
  int64_t num_classes() const { return static_cast<int64_t>(classes_.size()); }

 private:
  std::string root_;
  std::vector<std::string> classes_;
  std::map<std::string, int64_t> class_to_idx_;
  std::vector<ImageSample> samples_;
};

// DataProvider.VALID_SEED of the reference.
constexpr uint64_t kValidSeed = 2147483647ULL;
// DataProvider.SUB_SEED (the BN-calibration subset).
constexpr uint64_t kSubSeed = 937162211ULL;

struct TrainValidSplit {
  std::vector<int64_t> train_indexes;  // rand_indexes[valid_size:], in permutation order
  std::vector<int64_t> valid_indexes;  // rand_indexes[:valid_size]
};

// DataProvider.random_sample_valid_set(train_size, valid_size): a randperm of
// train_size from a generator seeded with `seed`; the first valid_size
// indexes are the validation set, the rest (in permutation order) train.
// Requires train_size > valid_size >= 0, as the reference asserts.
TrainValidSplit random_sample_valid_set(int64_t train_size, int64_t valid_size, uint64_t seed = kValidSeed);

// The reference's valid_size argument: an integer count, or a fraction in
// (0, 1) turned into int(train_size * fraction) (truncated). Values >= 1 are
// taken as counts and must be whole numbers.
int64_t resolve_valid_size(double valid_size, int64_t train_size);

// ROOT/train and ROOT/val as the reference's ImagenetDataProvider opens them:
// train is ImageFolder(ROOT/train); test is ImageFolder(ROOT/val); with a
// valid_size, the hold-out split of the train folder's indexes.
struct ImageNetFolders {
  ImageFolder train;
  ImageFolder test;
  bool has_valid = false;
  TrainValidSplit split;  // filled when has_valid
};
// valid_size <= 0 means none (the reference's None): then train indexes are all
// of train and validation uses the test folder.
ImageNetFolders open_imagenet_folders(const std::string& root, double valid_size = 0);

}  // namespace ofa::data
