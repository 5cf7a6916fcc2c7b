#include "data/image_folder.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>
#include <system_error>

#include "data/torch_random.h"
#include "engine/common.h"

namespace fs = std::filesystem;

namespace ofa::data {

namespace {

std::string strip_trailing_slashes(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

std::string join(const std::string& a, const std::string& b) {
  return (!a.empty() && a.back() == '/') ? a + b : a + "/" + b;
}

// One folder's entries as os.walk splits them: sub-folders (links followed)
// and everything else.
void list_dir(const std::string& dir, std::vector<std::string>& dirs, std::vector<std::string>& files) {
  std::error_code ec;
  fs::directory_iterator it(dir, ec);
  OFA_CHECK(!ec, "ImageFolder: cannot read folder ", dir, ": ", ec.message());
  for (; it != fs::directory_iterator(); it.increment(ec)) {
    OFA_CHECK(!ec, "ImageFolder: error while reading folder ", dir, ": ", ec.message());
    std::error_code ec2;
    bool is_dir = it->is_directory(ec2);  // follows links, as os.walk(followlinks=True)
    std::string name = it->path().filename().string();
    (is_dir ? dirs : files).push_back(name);
  }
}

// torchvision's make_dataset for one class: sorted(os.walk(class_dir,
// followlinks=True)), then sorted file names in each folder.
void walk_class(const std::string& class_dir, int64_t label, std::vector<ImageSample>& out) {
  std::vector<std::pair<std::string, std::vector<std::string>>> folders;  // (path, files)
  std::set<std::string> visited;  // canonical paths: a link loop is walked once, not forever
  std::vector<std::string> todo{class_dir};
  while (!todo.empty()) {
    std::string d = todo.back();
    todo.pop_back();
    std::error_code ec;
    fs::path canon = fs::canonical(d, ec);
    if (!ec && !visited.insert(canon.string()).second) continue;
    std::vector<std::string> dirs, files;
    list_dir(d, dirs, files);
    for (const auto& s : dirs) todo.push_back(join(d, s));
    folders.emplace_back(d, std::move(files));
  }
  std::sort(folders.begin(), folders.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [dir, files] : folders) {
    std::sort(files.begin(), files.end());
    for (const auto& f : files)
      if (has_image_extension(f)) out.push_back({join(dir, f), label});
  }
}

}  // namespace

const std::vector<std::string>& image_extensions() {
  static const std::vector<std::string> ext = {".jpg", ".jpeg", ".png", ".ppm", ".bmp",
                                               ".pgm", ".tif",  ".tiff", ".webp"};
  return ext;
}

bool has_image_extension(const std::string& name) {
  std::string lower = name;
  for (auto& c : lower)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  for (const auto& e : image_extensions())
    if (lower.size() >= e.size() && lower.compare(lower.size() - e.size(), e.size(), e) == 0) return true;
  return false;
}

ImageFolder::ImageFolder(const std::string& root) : root_(strip_trailing_slashes(root)) {
  std::error_code ec;
  OFA_CHECK(fs::is_directory(root_, ec), "ImageFolder: ", root_, " is not a folder (expected ", root_,
            "/<class>/<image files>)");
  std::vector<std::string> dirs, files;
  list_dir(root_, dirs, files);
  OFA_CHECK(!dirs.empty(), "ImageFolder: found no class folder in ", root_, " (expected ", root_,
            "/<class>/<image files>)");
  std::sort(dirs.begin(), dirs.end());  // std::string compares as unsigned bytes: Python's order for UTF-8
  classes_ = dirs;
  for (size_t i = 0; i < classes_.size(); ++i) class_to_idx_[classes_[i]] = static_cast<int64_t>(i);
  std::vector<std::string> empty;
  for (size_t i = 0; i < classes_.size(); ++i) {
    size_t before = samples_.size();
    walk_class(join(root_, classes_[i]), static_cast<int64_t>(i), samples_);
    if (samples_.size() == before) empty.push_back(join(root_, classes_[i]));
  }
  if (!empty.empty()) {
    std::string list;
    for (const auto& e : empty) list += (list.empty() ? "" : ", ") + e;
    std::string exts;
    for (const auto& e : image_extensions()) exts += (exts.empty() ? "" : " ") + e;
    throw Error(str_cat("ImageFolder: found no image file (extensions ", exts, ", any case) in the class folder",
                        empty.size() > 1 ? "s " : " ", list));
  }
}

const ImageSample& ImageFolder::operator[](int64_t i) const {
  OFA_CHECK(i >= 0 && i < size(), "ImageFolder ", root_, ": index ", i, " is out of range [0, ", size(), ")");
  return samples_[static_cast<size_t>(i)];
}

TrainValidSplit random_sample_valid_set(int64_t train_size, int64_t valid_size, uint64_t seed) {
  OFA_CHECK(valid_size >= 0 && train_size > valid_size, "random_sample_valid_set: need train_size > valid_size >= 0, got train_size ",
            train_size, " and valid_size ", valid_size);
  TorchGenerator g(seed);
  std::vector<int64_t> r = randperm(train_size, g);
  TrainValidSplit s;
  s.valid_indexes.assign(r.begin(), r.begin() + valid_size);
  s.train_indexes.assign(r.begin() + valid_size, r.end());
  return s;
}

int64_t resolve_valid_size(double valid_size, int64_t train_size) {
  OFA_CHECK(std::isfinite(valid_size) && valid_size > 0, "valid_size must be a positive count or a fraction in (0, 1), got ",
            valid_size);
  if (valid_size < 1) return static_cast<int64_t>(static_cast<double>(train_size) * valid_size);  // int() truncates
  OFA_CHECK(valid_size == std::floor(valid_size), "valid_size ", valid_size,
            " is neither a fraction in (0, 1) nor a whole number of images");
  return static_cast<int64_t>(valid_size);
}

ImageNetFolders open_imagenet_folders(const std::string& root, double valid_size) {
  std::string r = strip_trailing_slashes(root);
  ImageNetFolders f{ImageFolder(join(r, "train")), ImageFolder(join(r, "val")), false, {}};
  OFA_CHECK(f.train.classes() == f.test.classes(), "open_imagenet_folders: the class folders of ", f.train.root(), " (",
            f.train.num_classes(), ") and ", f.test.root(), " (", f.test.num_classes(),
            ") differ, so their labels would not match");
  if (valid_size > 0) {
    f.has_valid = true;
    f.split = random_sample_valid_set(f.train.size(), resolve_valid_size(valid_size, f.train.size()));
  } else {
    f.split.train_indexes.resize(static_cast<size_t>(f.train.size()));
    for (int64_t i = 0; i < f.train.size(); ++i) f.split.train_indexes[static_cast<size_t>(i)] = i;
  }
  return f;
}

}  // namespace ofa::data
