// The reference's image transforms against torchvision 0.14 / Pillow 9.4
// (tests/data/transforms_golden.txt, made by make_transforms_golden.py):
// crops, flips, colour enhancement (byte exact), the evaluation transform
// (float32 exact), plus the random draws' ranges and structure.
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "data/transforms.h"
#include "kernels/common/pil_image_math.h"
#include "tests/support/test_util.h"
#include "tests/support/transforms_golden.h"

using namespace ofa;
using namespace ofa::test;
using ofa::data::Image;

namespace {


// Every line of `key`: `run(source, line)` must hash to the line's last token.
template <class F>
void check_lines(const std::string& key, size_t min_lines, F run) {
  const auto& lines = golden().at(key);
  ASSERT_GE(lines.size(), min_lines) << key;
  for (const auto& l : lines) {
    Image out = run(source(l[0]), l);
    std::string joined;
    for (const auto& t : l) joined += t + " ";
    EXPECT_EQ(fnv(out.rgb), l.back()) << key << " " << joined;
  }
}

Image all_colors() {
  Image im{4096, 4096, std::vector<uint8_t>(size_t(1) << 24 << 0)};
  im.rgb.resize((size_t(1) << 24) * 3);
  for (uint32_t i = 0; i < (1u << 24); ++i) {
    im.rgb[i * 3] = static_cast<uint8_t>(i >> 16);
    im.rgb[i * 3 + 1] = static_cast<uint8_t>(i >> 8);
    im.rgb[i * 3 + 2] = static_cast<uint8_t>(i);
  }
  return im;
}

TEST(Transforms, ResizedCropMatchesTorchvision) {
  check_lines("resized_crop", 24, [](const Image& src, const std::vector<std::string>& l) {
    data::CropBox b{std::stoll(l[1]), std::stoll(l[2]), std::stoll(l[3]), std::stoll(l[4])};
    const int64_t out = std::stoll(l[5]);
    Image o = data::resized_crop(src, b, out, out);
    EXPECT_EQ(o.h, out);
    EXPECT_EQ(o.w, out);
    return o;
  });
}

TEST(Transforms, ResizedCropIsNotResizeWithABox) {
  // PIL's box lets the filter read pixels outside the box; torchvision crops first.
  Image a = source("a");
  Image crop_then = data::resized_crop(a, {3, 5, 30, 44}, 16, 16);
  Image boxed = data::resize_bilinear(a, 16, 16, {5.f, 3.f, 49.f, 33.f});
  EXPECT_NE(crop_then.rgb, boxed.rgb);
}

TEST(Transforms, FlipMatchesTorchvision) {
  check_lines("flip", 4, [](const Image& src, const std::vector<std::string>&) { return data::hflip(src); });
  Image a = source("a");
  EXPECT_EQ(data::hflip(data::hflip(a)).rgb, a.rgb);
}

TEST(Transforms, GrayscaleMatchesPil) {
  check_lines("gray", 4, [](const Image& src, const std::vector<std::string>&) { return data::to_grayscale_rgb(src); });
}

TEST(Transforms, BrightnessMatchesPil) {
  check_lines("brightness", 32, [](const Image& src, const std::vector<std::string>& l) {
    return data::adjust_brightness(src, std::stod(l[1]));
  });
}

TEST(Transforms, SaturationMatchesPil) {
  check_lines("saturation", 32, [](const Image& src, const std::vector<std::string>& l) {
    return data::adjust_saturation(src, std::stod(l[1]));
  });
}

TEST(Transforms, ContrastMatchesPil) {
  check_lines("contrast", 24, [](const Image& src, const std::vector<std::string>& l) {
    return data::adjust_contrast(src, std::stod(l[1]));
  });
}

TEST(Transforms, HueMatchesPil) {
  check_lines("hue", 32, [](const Image& src, const std::vector<std::string>& l) {
    return data::adjust_hue(src, std::stod(l[1]));
  });
}

TEST(Transforms, LumaOfEveryColourMatchesPil) {
  Image all = all_colors();
  std::vector<uint8_t> l(size_t(1) << 24);
  for (size_t i = 0; i < l.size(); ++i) l[i] = kernels::pil::rgb_to_l(all.rgb[i * 3], all.rgb[i * 3 + 1], all.rgb[i * 3 + 2]);
  EXPECT_EQ(fnv(l), golden().at("all_colors_l").at(0).at(0));
}

TEST(Transforms, HueOfEveryColourMatchesPil) {
  Image all = all_colors();
  const auto& lines = golden().at("all_colors_hue");
  ASSERT_EQ(lines.size(), 5u);
  for (const auto& l : lines) EXPECT_EQ(fnv(data::adjust_hue(all, std::stod(l[0])).rgb), l[1]) << "hue " << l[0];
}

TEST(Transforms, BlendOfEveryBytePairMatchesPil) {
  const auto& lines = golden().at("blend_pairs");
  ASSERT_EQ(lines.size(), 13u);
  for (const auto& l : lines) {
    const float alpha = static_cast<float>(std::stod(l[0]));
    std::vector<uint8_t> out(256 * 256);
    for (int a = 0; a < 256; ++a)
      for (int b = 0; b < 256; ++b)
        out[a * 256 + b] = kernels::pil::blend(static_cast<uint8_t>(a), static_cast<uint8_t>(b), alpha);
    EXPECT_EQ(fnv(out), l[1]) << "alpha " << l[0];
  }
}

TEST(Transforms, EvalTransformMatchesTorchvisionBitForBit) {
  const auto& lines = golden().at("eval");
  ASSERT_EQ(lines.size(), 20u);
  for (const auto& l : lines) {
    const int64_t R = std::stoll(l[1]);
    Image src = source(l[0]);
    Image pre = data::eval_image(src, R);
    EXPECT_EQ(fnv(pre.rgb), l[2]) << "uint8 image " << l[0] << " R " << R;
    std::vector<float> t(static_cast<size_t>(3 * R * R));
    data::eval_transform(src, R, t.data(), false);
    EXPECT_EQ(fnv(t.data(), t.size() * sizeof(float)), l[3]) << "float tensor " << l[0] << " R " << R;
  }
}

TEST(Transforms, EvalTransformFloatsWithin1e6) {
  const auto& lines = golden().at("eval_floats");
  ASSERT_EQ(lines.size(), 5u);
  for (const auto& l : lines) {
    const int64_t R = std::stoll(l[1]);
    ASSERT_EQ(static_cast<int64_t>(l.size()) - 2, 3 * R * R);
    Image src = source(l[0]);
    std::vector<float> chw(static_cast<size_t>(3 * R * R)), hwc(chw.size());
    data::eval_transform(src, R, chw.data(), false);
    data::eval_transform(src, R, hwc.data(), true);
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t i = 0; i < R * R; ++i) {
        const double want = std::stod(l[2 + c * R * R + i]);
        ASSERT_NEAR(chw[c * R * R + i], want, 1e-6) << l[0] << " R " << R << " channel " << c << " pixel " << i;
        ASSERT_EQ(hwc[i * 3 + c], chw[c * R * R + i]) << "channels-last layout, channel " << c << " pixel " << i;
      }
  }
}

TEST(Transforms, EvalCropRatioIsTheCentreFractionKept) {
  EXPECT_EQ(data::eval_resize_size(224), 256);        // the reference's 0.875
  EXPECT_EQ(data::eval_resize_size(32), 37);          // ceil(36.57)
  EXPECT_EQ(data::eval_resize_size(32, 1.0), 32);     // the whole image
  EXPECT_EQ(data::eval_resize_size(28, 0.5), 56);
  // Ratio 1 at the image's own size is the identity; the default crops.
  Image src;
  src.h = 28;
  src.w = 28;
  src.rgb.resize(28 * 28 * 3);
  for (size_t i = 0; i < src.rgb.size(); ++i) src.rgb[i] = static_cast<uint8_t>(i * 37 % 251);
  EXPECT_EQ(data::eval_image(src, 28, 1.0).rgb, src.rgb);
  EXPECT_NE(data::eval_image(src, 28).rgb, src.rgb);
  // Ratio 1 at another size is a plain resize of the whole image.
  EXPECT_EQ(data::eval_image(src, 32, 1.0).rgb, data::resize_bilinear(src, 32, 32).rgb);
  EXPECT_TRUE(test::has(test::error_of([] { data::eval_resize_size(32, 0.0); }), "crop ratio"));
  EXPECT_TRUE(test::has(test::error_of([] { data::eval_resize_size(32, 1.5); }), "crop ratio"));
}

TEST(Transforms, ResizeShortSideSizes) {
  const auto& lines = golden().at("resize_short");
  ASSERT_EQ(lines.size(), 24u);
  for (const auto& l : lines) {
    Image o = data::resize_short_side(source(l[0]), std::stoll(l[1]));
    EXPECT_EQ(o.h, std::stoll(l[2])) << l[0] << " size " << l[1];
    EXPECT_EQ(o.w, std::stoll(l[3])) << l[0] << " size " << l[1];
  }
}

TEST(Transforms, CenterCropOffsetsRoundHalfToEven) {
  // 37 x 53 to 32: (37 - 32) / 2 = 2.5 rounds to 2, (53 - 32) / 2 = 10.5 to 10.
  Image a = source("a");
  Image c = data::center_crop(a, 32);
  EXPECT_EQ(c.rgb, data::crop(a, 2, 10, 32, 32).rgb);
  // Smaller than the crop: zero padding, floor(deficit / 2) on the top/left.
  Image small = synth(3, 4);
  Image p = data::center_crop(small, 6);
  EXPECT_EQ(p.rgb, data::crop(small, -1, -1, 6, 6).rgb);
  EXPECT_EQ(p.rgb[0], 0);
}

TEST(Transforms, ToTensorNormalizeValues) {
  Image im{1, 2, {0, 128, 255, 255, 0, 7}};
  std::vector<float> chw(6), hwc(6);
  data::to_tensor_normalize(im, chw.data(), false);
  data::to_tensor_normalize(im, hwc.data(), true);
  const double mean[3] = {0.485, 0.456, 0.406}, stdv[3] = {0.229, 0.224, 0.225};
  for (int p = 0; p < 2; ++p)
    for (int c = 0; c < 3; ++c) {
      const double want = (im.rgb[p * 3 + c] / 255.0 - mean[c]) / stdv[c];
      EXPECT_NEAR(chw[c * 2 + p], want, 1e-6);
      EXPECT_EQ(hwc[p * 3 + c], chw[c * 2 + p]);
    }
}

TEST(Transforms, CropParamsStayInsideAndWithinBounds) {
  PyRandom rng(7);
  const std::array<double, 2> scale{0.08, 1.0}, ratio{3.0 / 4.0, 4.0 / 3.0};
  for (auto [H, W] : std::vector<std::pair<int64_t, int64_t>>{{224, 224}, {375, 500}, {500, 333}, {37, 53}, {13, 9}}) {
    double sum_frac = 0;
    const int n = 2000;
    int exact_fits = 0;
    for (int i = 0; i < n; ++i) {
      data::CropBox b = data::random_resized_crop_params(H, W, scale, ratio, rng);
      ASSERT_GE(b.top, 0);
      ASSERT_GE(b.left, 0);
      ASSERT_GE(b.height, 1);
      ASSERT_GE(b.width, 1);
      ASSERT_LE(b.top + b.height, H);
      ASSERT_LE(b.left + b.width, W);
      const double frac = double(b.height * b.width) / double(H * W);
      sum_frac += frac;
      // Rounding w and h to integers moves area and aspect by at most half a pixel per side.
      const double ar = double(b.width) / double(b.height);
      const double slack_w = 0.5 / b.width, slack_h = 0.5 / b.height;
      const bool in_ratio = ar >= ratio[0] * (1 - slack_w) / (1 + slack_h) && ar <= ratio[1] * (1 + slack_w) / (1 - slack_h);
      if (in_ratio && frac >= scale[0] * (1 - slack_w) * (1 - slack_h)) ++exact_fits;
    }
    if (H >= 37) {
      EXPECT_EQ(exact_fits, n) << H << "x" << W;  // no fallback on ordinary images
      // Mean area fraction near (0.08 + 1) / 2, lowered a bit by rejected large draws.
      EXPECT_GT(sum_frac / n, 0.35) << H << "x" << W;
      EXPECT_LT(sum_frac / n, 0.56) << H << "x" << W;
    }
  }
}

TEST(Transforms, CropParamsFallBackToCentreOnElongatedImages) {
  PyRandom rng(3);
  const std::array<double, 2> scale{0.08, 1.0}, ratio{3.0 / 4.0, 4.0 / 3.0};
  // 4 x 1000: every try needs h > 4, so the fallback gives h = 4, w = round(4 * 4 / 3) = 5.
  for (int i = 0; i < 20; ++i) {
    data::CropBox wide = data::random_resized_crop_params(4, 1000, scale, ratio, rng);
    EXPECT_EQ(wide.height, 4);
    EXPECT_EQ(wide.width, 5);
    EXPECT_EQ(wide.top, 0);
    EXPECT_EQ(wide.left, 497);
    data::CropBox tall = data::random_resized_crop_params(1000, 4, scale, ratio, rng);
    EXPECT_EQ(tall.width, 4);
    EXPECT_EQ(tall.height, 5);
    EXPECT_EQ(tall.top, 497);
    EXPECT_EQ(tall.left, 0);
  }
  // Scale above 1 never fits: the whole image when its aspect is in range.
  data::CropBox whole = data::random_resized_crop_params(30, 35, {1.5, 2.0}, ratio, rng);
  EXPECT_EQ(whole.height, 30);
  EXPECT_EQ(whole.width, 35);
  EXPECT_EQ(whole.top, 0);
  EXPECT_EQ(whole.left, 0);
}

TEST(Transforms, CropParamsAreDeterministicPerSeed) {
  PyRandom a(11), b(11), c(12);
  bool differs = false;
  for (int i = 0; i < 50; ++i) {
    data::CropBox x = data::random_resized_crop_params(100, 120, {0.08, 1.0}, {0.75, 4.0 / 3.0}, a);
    data::CropBox y = data::random_resized_crop_params(100, 120, {0.08, 1.0}, {0.75, 4.0 / 3.0}, b);
    data::CropBox z = data::random_resized_crop_params(100, 120, {0.08, 1.0}, {0.75, 4.0 / 3.0}, c);
    EXPECT_EQ(x.top, y.top);
    EXPECT_EQ(x.left, y.left);
    EXPECT_EQ(x.height, y.height);
    EXPECT_EQ(x.width, y.width);
    differs |= x.height != z.height || x.top != z.top;
  }
  EXPECT_TRUE(differs);
}

TEST(Transforms, ColorJitterParamsRanges) {
  PyRandom rng(5);
  std::set<std::vector<int>> orders;
  for (int i = 0; i < 500; ++i) {
    data::ColorJitterParams tf = data::color_jitter_params(data::ColorJitterKind::TF, rng);
    ASSERT_TRUE(tf.brightness && tf.saturation);
    EXPECT_FALSE(tf.contrast);
    EXPECT_FALSE(tf.hue);
    EXPECT_GE(*tf.brightness, 1 - 32.0 / 255);
    EXPECT_LE(*tf.brightness, 1 + 32.0 / 255);
    EXPECT_GE(*tf.saturation, 0.5);
    EXPECT_LE(*tf.saturation, 1.5);
    std::vector<int> o(tf.order.begin(), tf.order.end());
    orders.insert(o);
    std::sort(o.begin(), o.end());
    EXPECT_EQ(o, (std::vector<int>{0, 1, 2, 3}));
    data::ColorJitterParams t = data::color_jitter_params(data::ColorJitterKind::Torch, rng);
    ASSERT_TRUE(t.brightness && t.contrast && t.saturation && t.hue);
    for (double v : {*t.brightness, *t.contrast, *t.saturation}) {
      EXPECT_GE(v, 0.6);
      EXPECT_LE(v, 1.4);
    }
    EXPECT_GE(*t.hue, -0.1);
    EXPECT_LE(*t.hue, 0.1);
  }
  EXPECT_EQ(orders.size(), 24u);  // every permutation shows up
  data::ColorJitterParams none = data::color_jitter_params(data::ColorJitterKind::None, rng);
  EXPECT_FALSE(none.brightness || none.contrast || none.saturation || none.hue);
}

TEST(Transforms, ColorJitterAppliesOpsInDrawnOrder) {
  Image a = source("a");
  data::ColorJitterParams p;
  p.order = {3, 2, 1, 0};
  p.brightness = 1.3;
  p.contrast = 0.7;
  p.saturation = 1.4;
  p.hue = 0.05;
  Image want = data::adjust_brightness(
      data::adjust_contrast(data::adjust_saturation(data::adjust_hue(a, 0.05), 1.4), 0.7), 1.3);
  EXPECT_EQ(data::color_jitter(a, p).rgb, want.rgb);
  p.order = {0, 1, 2, 3};
  EXPECT_NE(data::color_jitter(a, p).rgb, want.rgb);  // order matters (clipping, rounding)
  EXPECT_EQ(data::parse_color_jitter("tf"), data::ColorJitterKind::TF);
  EXPECT_EQ(data::parse_color_jitter("torch"), data::ColorJitterKind::Torch);
  EXPECT_EQ(data::parse_color_jitter("None"), data::ColorJitterKind::None);
  EXPECT_TRUE(test::has(test::error_of([] { data::parse_color_jitter("tensorflow"); }), "'tensorflow'"));
}

TEST(Transforms, TrainTransformFollowsTheReferenceOrder) {
  Image s = source("s");
  for (auto kind : {data::ColorJitterKind::None, data::ColorJitterKind::TF, data::ColorJitterKind::Torch}) {
    data::TrainOptions opt;
    opt.resize_scale = 0.35;
    opt.jitter = kind;
    for (uint64_t seed = 0; seed < 6; ++seed) {
      PyRandom r1(seed), r2(seed);
      std::vector<float> got(3 * 40 * 40);
      data::train_transform(s, 40, opt, r1, got.data(), false);
      // The same draws by hand: crop box, flip, jitter parameters.
      data::CropBox b = data::random_resized_crop_params(s.h, s.w, {0.35, 1.0}, {0.75, 4.0 / 3.0}, r2);
      Image want = data::resized_crop(s, b, 40, 40);
      if (r2.random() < 0.5) want = data::hflip(want);
      if (kind != data::ColorJitterKind::None) want = data::color_jitter(want, data::color_jitter_params(kind, r2));
      std::vector<float> wt(got.size());
      data::to_tensor_normalize(want, wt.data(), false);
      EXPECT_EQ(got, wt) << "seed " << seed;
      EXPECT_EQ(r1.random(), r2.random()) << "both consumed the same draws";
    }
  }
}

TEST(Transforms, BadArgumentsAreNamed) {
  Image a = source("a");
  EXPECT_TRUE(test::has(test::error_of([&] { data::adjust_hue(a, 0.7); }), "not in [-0.5, 0.5]"));
  EXPECT_TRUE(test::has(test::error_of([&] { data::adjust_brightness(a, -1); }), "non-negative"));
  EXPECT_TRUE(test::has(test::error_of([&] { data::crop(a, 0, 0, 0, 3); }), "crop size must be positive"));
  EXPECT_TRUE(test::has(test::error_of([&] { data::eval_transform(Image{}, 32, nullptr, false); }), "non-empty"));
  PyRandom rng(0);
  data::TrainOptions opt;
  opt.resize_scale = 0;
  EXPECT_TRUE(test::has(test::error_of([&] { data::train_image(a, 32, opt, rng); }), "resize_scale"));
}

}  // namespace
