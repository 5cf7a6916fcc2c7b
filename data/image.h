// An 8-bit RGB image, rows of h x w pixels, R G B interleaved (HWC). The JPEG
// decoder produces it and the transforms consume it; kept deliberately plain.
#pragma once
#include <cstdint>
#include <vector>

namespace ofa::data {

struct Image {
  int64_t h = 0, w = 0;
  std::vector<uint8_t> rgb;  // h * w * 3 bytes
  uint8_t at(int64_t y, int64_t x, int c) const { return rgb[static_cast<size_t>((y * w + x) * 3 + c)]; }
};

}  // namespace ofa::data
