// What the data loader reads from: a map-style data set of labelled RGB
// images. load_image must be safe to call from several threads at once.
#pragma once
#include <cstdint>
#include <string>
#include <utility>

#include "data/fashion_mnist.h"
#include "data/image.h"
#include "data/image_folder.h"
#include "data/jpeg.h"

namespace ofa::data {

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual int64_t label(int64_t i) const = 0;
  // The decoded image; throws DecodeError for a file that cannot be decoded.
  virtual Image load_image(int64_t i) const = 0;
  // Where the data comes from (a folder, the IDX file), for error messages.
  virtual std::string root() const = 0;
  // What sample i is called in warnings (its file, or "ROOT[i]").
  virtual std::string sample_name(int64_t i) const { return root() + "[" + std::to_string(i) + "]"; }
};

// torchvision's ImageFolder with its default loader (JPEG through TurboJPEG).
class ImageFolderDataset : public Dataset {
 public:
  explicit ImageFolderDataset(ImageFolder folder, JpegDecodeOptions opt = {})
      : folder_(std::move(folder)), opt_(opt) {}
  explicit ImageFolderDataset(const std::string& root, JpegDecodeOptions opt = {})
      : folder_(root), opt_(opt) {}
  int64_t size() const override { return folder_.size(); }
  int64_t label(int64_t i) const override { return folder_[i].label; }
  Image load_image(int64_t i) const override { return decode_jpeg_file(folder_[i].path, opt_); }
  std::string root() const override { return folder_.root(); }
  std::string sample_name(int64_t i) const override { return folder_[i].path; }
  const ImageFolder& folder() const { return folder_; }

 private:
  ImageFolder folder_;
  JpegDecodeOptions opt_;
};

// Fashion-MNIST from IDX, images as RGB (grey replicated).
class FashionMnistDataset : public Dataset {
 public:
  explicit FashionMnistDataset(FashionMnist data) : data_(std::move(data)) {}
  int64_t size() const override { return data_.size(); }
  int64_t label(int64_t i) const override { return data_.label(i); }
  Image load_image(int64_t i) const override { return data_.rgb(i); }
  std::string root() const override { return data_.images_path(); }
  const FashionMnist& data() const { return data_; }

 private:
  FashionMnist data_;
};

}  // namespace ofa::data
