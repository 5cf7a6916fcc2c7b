// PIL-exact bilinear resampling against Pillow 9.4 (tests/data/transforms_golden.txt,
// made by make_transforms_golden.py): every output byte, over up- and
// downscaling, odd sizes, one-pass and two-pass cases, integer and fractional boxes.
#include <omp.h>

#include <fstream>
#include <map>
#include <sstream>

#include "data/transforms.h"
#include "tests/support/test_util.h"

using namespace ofa;
using ofa::data::Image;

namespace {

using Lines = std::map<std::string, std::vector<std::vector<std::string>>>;

const Lines& golden() {
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

std::vector<uint8_t> from_hex(const std::string& s) {
  std::vector<uint8_t> b(s.size() / 2);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<uint8_t>(std::stoi(s.substr(2 * i, 2), nullptr, 16));
  return b;
}

std::string fnv(const std::vector<uint8_t>& b) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (uint8_t x : b) {
    h ^= x;
    h *= 0x100000001B3ull;
  }
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// The script's synth(h, w).
Image synth(int64_t h, int64_t w) {
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

Image source(const std::string& name) {
  if (name == "s") return synth(157, 211);
  if (name == "t") return synth(23, 300);
  for (const auto& l : golden().at("image"))
    if (l[0] == name) return Image{std::stoll(l[1]), std::stoll(l[2]), from_hex(l[3])};
  ADD_FAILURE() << "no image " << name;
  return {};
}

TEST(ResizePil, SyntheticImagesMatchTheScript) {
  const auto& lines = golden().at("synth");
  ASSERT_EQ(lines.size(), 2u);
  for (const auto& l : lines) EXPECT_EQ(fnv(synth(std::stoll(l[1]), std::stoll(l[2])).rgb), l[3]) << l[0];
  EXPECT_EQ(source("s").h, 157);
  EXPECT_EQ(source("t").w, 300);
}

TEST(ResizePil, GridOfSizesAndBoxesIsByteExact) {
  const auto& lines = golden().at("resize");
  ASSERT_GE(lines.size(), 500u);
  std::map<std::string, Image> src;
  int bad = 0;
  for (const auto& l : lines) {
    if (!src.count(l[0])) src[l[0]] = source(l[0]);
    const int64_t oh = std::stoll(l[1]), ow = std::stoll(l[2]);
    // Python float -> C float, as PIL's argument parsing converts the box.
    std::array<float, 4> box{static_cast<float>(std::stod(l[3])), static_cast<float>(std::stod(l[4])),
                             static_cast<float>(std::stod(l[5])), static_cast<float>(std::stod(l[6]))};
    Image out = data::resize_bilinear(src[l[0]], oh, ow, box);
    ASSERT_EQ(out.h, oh);
    ASSERT_EQ(out.w, ow);
    if (fnv(out.rgb) != l[7] && ++bad <= 10)
      ADD_FAILURE() << "image " << l[0] << " -> " << oh << "x" << ow << " box (" << l[3] << ", " << l[4] << ", " << l[5]
                    << ", " << l[6] << ") differs from PIL";
  }
  EXPECT_EQ(bad, 0);
}

TEST(ResizePil, FullBytesMatch) {
  for (const auto& l : golden().at("resize_hex")) {
    Image out = data::resize_bilinear(source(l[0]), std::stoll(l[1]), std::stoll(l[2]));
    std::vector<uint8_t> want = from_hex(l[3]);
    ASSERT_EQ(out.rgb.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_EQ(int(out.rgb[i]), int(want[i])) << "byte " << i << " of " << l[0] << " -> " << l[1] << "x" << l[2];
  }
}

TEST(ResizePil, SameSizeWholeBoxIsACopy) {
  Image a = source("a");
  Image out = data::resize_bilinear(a, a.h, a.w);
  EXPECT_EQ(out.rgb, a.rgb);
}

TEST(ResizePil, ConstantImageStaysConstant) {
  Image c{19, 23, std::vector<uint8_t>(19 * 23 * 3)};
  for (size_t i = 0; i < c.rgb.size(); ++i) c.rgb[i] = static_cast<uint8_t>(i % 3 == 0 ? 200 : (i % 3 == 1 ? 7 : 255));
  for (auto [oh, ow] : std::vector<std::pair<int, int>>{{1, 1}, {5, 40}, {60, 3}, {19, 23}, {38, 11}}) {
    Image out = data::resize_bilinear(c, oh, ow, {1.5f, 0.25f, 20.f, 18.f});
    for (size_t i = 0; i < out.rgb.size(); ++i)
      ASSERT_EQ(int(out.rgb[i]), i % 3 == 0 ? 200 : (i % 3 == 1 ? 7 : 255)) << oh << "x" << ow;
  }
}

TEST(ResizePil, ResultDoesNotDependOnThreadCount) {
  Image big = synth(600, 700);  // above the size where the passes go parallel
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  Image one = data::resize_bilinear(big, 301, 257, {3.5f, 1.f, 690.f, 600.f});
  omp_set_num_threads(3);
  Image three = data::resize_bilinear(big, 301, 257, {3.5f, 1.f, 690.f, 600.f});
  omp_set_num_threads(saved);
  EXPECT_EQ(one.rgb, three.rgb);
}

TEST(ResizePil, BadArgumentsAreNamed) {
  Image a = source("a");  // 37 x 53
  EXPECT_TRUE(test::has(test::error_of([&] { data::resize_bilinear(a, 0, 5); }), "output size must be positive"));
  EXPECT_TRUE(test::has(test::error_of([&] { data::resize_bilinear(a, 5, 5, {-1.f, 0.f, 5.f, 5.f}); }),
                        "box offset can't be negative"));
  EXPECT_TRUE(test::has(test::error_of([&] { data::resize_bilinear(a, 5, 5, {0.f, 0.f, 54.f, 5.f}); }),
                        "can't exceed the image 53x37"));
  EXPECT_TRUE(test::has(test::error_of([&] { data::resize_bilinear(a, 5, 5, {3.f, 0.f, 3.f, 5.f}); }),
                        "can't be empty"));
  Image broken{4, 4, std::vector<uint8_t>(10)};
  EXPECT_TRUE(test::has(test::error_of([&] { data::resize_bilinear(broken, 2, 2); }), "needs 48 RGB bytes, holds 10"));
}

}  // namespace
