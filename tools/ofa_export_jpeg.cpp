// ofa_export_jpeg: writes Fashion-MNIST (IDX files) as an ImageFolder JPEG
// tree, OUT/train/<class>/<index>.jpg and OUT/val/<class>/<index>.jpg, so the
// ImageNet-style JPEG pipeline can run on real data (see data/export_jpeg.h).
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "data/export_jpeg.h"
#include "data/idx.h"
#include "engine/common.h"

using namespace ofa;

namespace {

void usage(FILE* out) {
  std::fprintf(out,
               "usage: ofa_export_jpeg --out DIR [--data-dir DIR] [--quality Q] [--limit-per-class N]\n"
               "                       [--train-split train|test] [--val-split test|train]\n"
               "\n"
               "Writes Fashion-MNIST as an ImageFolder tree of greyscale JPEGs:\n"
               "  DIR/train/<label>_<class>/<index>.jpg, DIR/val/<label>_<class>/<index>.jpg,\n"
               "  DIR/classes.txt (folder, label, class name). Folders carry the label as a\n"
               "prefix so ImageFolder's sorted order gives back the original labels. The tree is\n"
               "built in DIR.tmp and renamed to DIR when complete; DIR must not exist.\n"
               "\n"
               "  --out DIR             output folder (required)\n"
               "  --data-dir DIR        Fashion-MNIST IDX files (default %s,\n"
               "                        or $OFA_FASHION_MNIST_DIR; Debian package dataset-fashion-mnist)\n"
               "  --quality Q           JPEG quality 1..100 (default 95)\n"
               "  --limit-per-class N   only the first N images of each class in each split (default: all)\n"
               "  --train-split S       IDX split written to DIR/train: train (default) or test\n"
               "  --val-split S         IDX split written to DIR/val: test (default) or train\n",
               data::fashion_mnist_dir().c_str());
}

int64_t parse_int(const std::string& flag, const char* v) {
  char* end = nullptr;
  long long x = std::strtoll(v, &end, 10);
  if (!*v || *end || x < 0) throw Error(flag + ": expected a non-negative integer, got '" + v + "'");
  return x;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    data::ExportJpegOptions o;
    o.progress = &std::cerr;
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      if (a == "--help" || a == "-h") {
        usage(stdout);
        return 0;
      }
      if (i + 1 >= argc) {
        std::fprintf(stderr, "ofa_export_jpeg: %s needs a value (or unknown option)\n\n", a.c_str());
        usage(stderr);
        return 2;
      }
      const char* v = argv[++i];
      if (a == "--out") o.out_dir = v;
      else if (a == "--data-dir") o.data_dir = v;
      else if (a == "--quality") o.quality = static_cast<int>(parse_int(a, v));
      else if (a == "--limit-per-class") o.limit_per_class = parse_int(a, v);
      else if (a == "--train-split") o.train_split = v;
      else if (a == "--val-split") o.val_split = v;
      else {
        std::fprintf(stderr, "ofa_export_jpeg: unknown option %s\n\n", a.c_str());
        usage(stderr);
        return 2;
      }
    }
    if (o.out_dir.empty()) {
      std::fprintf(stderr, "ofa_export_jpeg: --out DIR is required\n\n");
      usage(stderr);
      return 2;
    }
    data::ExportJpegResult r = data::export_fashion_mnist_jpeg(o);
    std::fprintf(stderr, "ofa_export_jpeg: %lld train and %lld val images in %zu classes\n",
                 static_cast<long long>(r.train_images), static_cast<long long>(r.val_images), r.class_folders.size());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ofa_export_jpeg: error: %s\n", e.what());
    return 1;
  }
}
