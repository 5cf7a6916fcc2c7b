#include "data/fashion_mnist.h"

#include <sys/stat.h>

#include "engine/common.h"

namespace ofa::data {

namespace {

bool exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

// NAME.gz when present, else NAME; the error (if neither exists) names both.
std::string find_file(const std::string& dir, const std::string& name) {
  std::string base = dir.empty() || dir.back() == '/' ? dir + name : dir + "/" + name;
  if (exists(base + ".gz")) return base + ".gz";
  if (exists(base)) return base;
  throw Error(str_cat("Fashion-MNIST: neither ", base, ".gz nor ", base,
                      " exists (the Debian package dataset-fashion-mnist installs them in ", fashion_mnist_dir(),
                      "; set OFA_FASHION_MNIST_DIR or pass another folder)"));
}

}  // namespace

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

FashionMnist::FashionMnist(FashionMnistSplit split, const std::string& dir) : split_(split) {
  const std::string prefix = split == FashionMnistSplit::Train ? "train" : "t10k";
  images_path_ = find_file(dir, prefix + "-images-idx3-ubyte");
  labels_path_ = find_file(dir, prefix + "-labels-idx1-ubyte");
  IdxArray im = read_idx(images_path_);
  IdxArray lb = read_idx(labels_path_);
  OFA_CHECK(im.shape.size() == 3 && im.shape[1] == kRows && im.shape[2] == kCols, "Fashion-MNIST: ", images_path_,
            " holds shape ", shape_str(im.shape), ", expected [N, 28, 28]");
  OFA_CHECK(lb.shape.size() == 1, "Fashion-MNIST: ", labels_path_, " holds shape ", shape_str(lb.shape),
            ", expected [N]");
  OFA_CHECK(im.shape[0] == lb.shape[0], "Fashion-MNIST: ", images_path_, " has ", im.shape[0], " images but ",
            labels_path_, " has ", lb.shape[0], " labels");
  for (size_t i = 0; i < lb.data.size(); ++i)
    OFA_CHECK(lb.data[i] < kClasses, "Fashion-MNIST: ", labels_path_, ": label ", int(lb.data[i]), " at index ", i,
              " is not in [0, 10)");
  images_ = std::move(im.data);
  labels_ = std::move(lb.data);
}

const uint8_t* FashionMnist::image(int64_t i) const {
  OFA_CHECK(i >= 0 && i < size(), "Fashion-MNIST: image index ", i, " out of range [0, ", size(), ")");
  return images_.data() + i * kRows * kCols;
}

int64_t FashionMnist::label(int64_t i) const {
  OFA_CHECK(i >= 0 && i < size(), "Fashion-MNIST: label index ", i, " out of range [0, ", size(), ")");
  return labels_[static_cast<size_t>(i)];
}

Image FashionMnist::rgb(int64_t i) const { return grey_to_rgb(image(i), kRows, kCols); }

Image grey_to_rgb(const uint8_t* grey, int64_t height, int64_t width) {
  Image out;
  out.h = height;
  out.w = width;
  out.rgb.resize(static_cast<size_t>(height * width * 3));
  for (int64_t p = 0; p < height * width; ++p)
    out.rgb[3 * p] = out.rgb[3 * p + 1] = out.rgb[3 * p + 2] = grey[p];
  return out;
}

}  // namespace ofa::data
