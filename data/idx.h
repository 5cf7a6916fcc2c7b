// IDX files (the MNIST family's format), plain or gzip-compressed. Validated
// before trusted: magic, element type, rank, sizes against the file length.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace ofa::data {

struct IdxArray {
  std::vector<int64_t> shape;  // e.g. [60000, 28, 28] for images, [60000] for labels
  std::vector<uint8_t> data;   // unsigned bytes (the only element type MNIST-style sets use)
};

// Reads `path` (gzip detected by its magic bytes). Throws ofa::Error naming the
// file and the fault: missing file, bad magic, unsupported type, truncation.
IdxArray read_idx(const std::string& path);

// Where the Debian package dataset-fashion-mnist puts its files; the
// OFA_FASHION_MNIST_DIR environment variable overrides it.
std::string fashion_mnist_dir();

}  // namespace ofa::data
