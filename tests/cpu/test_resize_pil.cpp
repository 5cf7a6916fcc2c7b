// PIL-exact bilinear resampling against Pillow 9.4 (tests/data/transforms_golden.txt,
// made by make_transforms_golden.py): every output byte, over up- and
// downscaling, odd sizes, one-pass and two-pass cases, integer and fractional boxes.
#include <omp.h>

#include <fstream>
#include <map>
#include <sstream>

#include "data/transforms.h"
#include "tests/support/test_util.h"
#include "tests/support/transforms_golden.h"

using namespace ofa;
using namespace ofa::test;
using ofa::data::Image;

namespace {


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
