// Writes an IDX data set (Fashion-MNIST) as an ImageFolder JPEG tree, so the
// JPEG pipeline can be tested and benchmarked on real data:
//   OUT/train/<class folder>/<index>.jpg   (the IDX split train_split)
//   OUT/val/<class folder>/<index>.jpg     (the IDX split val_split)
//   OUT/classes.txt                        ("<folder>\t<label>\t<class name>" a line)
// Class folders are "<label>_<name made filesystem-safe>" with the label
// zero-padded, so ImageFolder's sorted folder order gives back the original
// labels; file names are the image's index in its IDX split, zero-padded, so
// sorted order is IDX order. Images are stored as greyscale JPEGs (they
// decode to RGB with the grey replicated). The tree is built in OUT.tmp and
// renamed to OUT when complete: a failure never leaves a partial OUT.
#pragma once
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace ofa::data {

struct ExportJpegOptions {
  std::string out_dir;                // required; must not exist yet
  std::string data_dir;               // empty: fashion_mnist_dir()
  int quality = 95;
  int64_t limit_per_class = -1;       // < 0: every image; else the first N of each class (IDX order)
  std::string train_split = "train";  // IDX split written to OUT/train: "train" or "test"
  std::string val_split = "test";     // IDX split written to OUT/val: "test" or "train"
  std::ostream* progress = nullptr;   // progress lines, when set
};

struct ExportJpegResult {
  int64_t train_images = 0;
  int64_t val_images = 0;
  std::vector<std::string> class_folders;  // by label
};

ExportJpegResult export_fashion_mnist_jpeg(const ExportJpegOptions& opt);

// "3_Dress", "0_T-shirt_top"; the label is zero-padded to the width of
// num_classes - 1. Characters other than [A-Za-z0-9._-] become '_'.
std::string class_folder_name(int64_t label, const std::string& name, int64_t num_classes);

}  // namespace ofa::data
