// Shared by the transform tests: tests/data/transforms_golden.txt (made by
// make_transforms_golden.py) as lines of tokens by key, the script's
// synthetic images, and the FNV-1a hash the script prints for byte buffers.
#pragma once
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "data/image.h"

namespace ofa::test {

using data::Image;

using Lines = std::map<std::string, std::vector<std::vector<std::string>>>;

inline const Lines& golden() {
  static Lines lines = [] {
    Lines out;
    std::ifstream f(std::string(OFA_TEST_DATA_DIR) + "/transforms_golden.txt");
    EXPECT_TRUE(f.good()) << "transforms_golden.txt missing";
    std::string line;
    while (std::getline(f, line)) {
      if (line.empty() || line[0] == '#') continue;
      std::istringstream is(line);
      std::vector<std::string> tok;
      std::string t;
      while (is >> t) tok.push_back(t);
      out[tok[0]].push_back(std::vector<std::string>(tok.begin() + 1, tok.end()));
    }
    return out;
  }();
  return lines;
}

inline std::vector<uint8_t> from_hex(const std::string& s) {
  std::vector<uint8_t> b(s.size() / 2);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(std::stoi(s.substr(2 * i, 2), nullptr, 16));
  return b;
}

inline std::string fnv(const void* data, size_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint64_t h = 0xCBF29CE484222325ull;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001B3ull;
  }
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}
inline std::string fnv(const std::vector<uint8_t>& b) { return fnv(b.data(), b.size()); }

inline Image synth(int64_t h, int64_t w) {  // the script's synth(h, w)
  Image im{h, w, std::vector<uint8_t>(static_cast<size_t>(h * w * 3))};
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      uint8_t* p = &im.rgb[(y * w + x) * 3];
      p[0] = static_cast<uint8_t>((x * 7 + y * 13 + (x * y) % 17) % 256);
      p[1] = static_cast<uint8_t>((x * x + 3 * y) % 256);
      p[2] = static_cast<uint8_t>(((x ^ y) * 5 + 11) % 256);
    }
  return im;
}

inline Image source(const std::string& name) {
  if (name == "s") return synth(157, 211);
  if (name == "t") return synth(23, 300);
  for (const auto& l : golden().at("image"))
    if (l[0] == name) return Image{std::stoll(l[1]), std::stoll(l[2]), from_hex(l[3])};
  ADD_FAILURE() << "no image " << name;
  return {};
}

}  // namespace ofa::test
