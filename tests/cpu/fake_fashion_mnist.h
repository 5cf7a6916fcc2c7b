// A tiny Fashion-MNIST-format data set (plain IDX files) for tests that run
// the RunManager or the recipe without the real data: n images of 28x28
// whose label is drawn into the pixels (a bright band at row 2 * label), so
// that a network can learn it.
#pragma once
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace ofa::test {

inline void write_fake_fashion_mnist_split(const std::string& dir, const std::string& prefix, uint32_t n,
                                           uint32_t seed) {
  auto be32 = [](std::vector<uint8_t>& out, uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
  };
  std::vector<uint8_t> im = {0, 0, 8, 3}, lb = {0, 0, 8, 1};
  be32(im, n);
  be32(im, 28);
  be32(im, 28);
  be32(lb, n);
  uint32_t x = seed * 2654435761u + 12345u;
  for (uint32_t i = 0; i < n; ++i) {
    const uint8_t label = static_cast<uint8_t>((i * 7 + seed) % 10);
    lb.push_back(label);
    for (uint32_t r = 0; r < 28; ++r)
      for (uint32_t c = 0; c < 28; ++c) {
        x = x * 1664525u + 1013904223u;
        const uint8_t noise = static_cast<uint8_t>(x >> 26);  // 0..63
        const bool band = r / 2 == label + 2u;
        im.push_back(static_cast<uint8_t>(band ? 200 + noise / 2 : noise));
      }
  }
  std::ofstream(dir + "/" + prefix + "-images-idx3-ubyte", std::ios::binary)
      .write(reinterpret_cast<const char*>(im.data()), static_cast<std::streamsize>(im.size()));
  std::ofstream(dir + "/" + prefix + "-labels-idx1-ubyte", std::ios::binary)
      .write(reinterpret_cast<const char*>(lb.data()), static_cast<std::streamsize>(lb.size()));
}

inline void write_fake_fashion_mnist(const std::string& dir, uint32_t n_train = 96, uint32_t n_test = 32) {
  write_fake_fashion_mnist_split(dir, "train", n_train, 1);
  write_fake_fashion_mnist_split(dir, "t10k", n_test, 2);
}

}  // namespace ofa::test
