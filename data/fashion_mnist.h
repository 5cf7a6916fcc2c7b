// Fashion-MNIST from its IDX files (train-images-idx3-ubyte[.gz] etc.):
// 28x28 greyscale uint8 images and labels 0..9. rgb() gives an image as RGB
// HWC (grey replicated), the form JPEG decoding gives, so the same transforms
// serve both data sets.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/idx.h"
#include "data/jpeg.h"

namespace ofa::data {

enum class FashionMnistSplit { Train, Test };

// "T-shirt/top", "Trouser", ..., "Ankle boot" (label order).
const std::vector<std::string>& fashion_mnist_classes();

class FashionMnist {
 public:
  static constexpr int64_t kRows = 28, kCols = 28, kClasses = 10;
  // Loads `split` from `dir` (default fashion_mnist_dir()). Files may be
  // gzipped (NAME.gz, tried first) or plain (NAME). Throws ofa::Error naming
  // the files on any fault: missing, malformed, count mismatch, bad label.
  explicit FashionMnist(FashionMnistSplit split, const std::string& dir = fashion_mnist_dir());

  int64_t size() const { return static_cast<int64_t>(labels_.size()); }
  FashionMnistSplit split() const { return split_; }
  const std::string& images_path() const { return images_path_; }
  const std::string& labels_path() const { return labels_path_; }
  // kRows * kCols grey bytes, row-major.
  const uint8_t* image(int64_t i) const;
  int64_t label(int64_t i) const;
  const std::vector<uint8_t>& labels() const { return labels_; }
  // The image as RGB uint8 HWC, grey replicated to three channels.
  Image rgb(int64_t i) const;

 private:
  FashionMnistSplit split_;
  std::string images_path_, labels_path_;
  std::vector<uint8_t> images_;
  std::vector<uint8_t> labels_;
};

// Grey bytes -> RGB HWC image.
Image grey_to_rgb(const uint8_t* grey, int64_t height, int64_t width);

}  // namespace ofa::data
