// JPEG decoding: pixels against known inputs and against PIL (what
// torchvision's loader returns), greyscale, progressive, CMYK/YCCK,
// reduced-size decoding, and every kind of bad file refused with an error
// naming the file and the reason, without crashing or hanging.
#include <turbojpeg.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include "data/jpeg.h"
#include "tests/support/test_util.h"

using namespace ofa;
using namespace ofa::data;

namespace {

std::string tmp_path(const std::string& name) { return ::testing::TempDir() + "ofa_jpeg_" + name; }

void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// A smooth colour pattern with some texture: JPEG at quality 100 keeps it to a
// few levels.
std::vector<uint8_t> pattern_rgb(int64_t w, int64_t h) {
  std::vector<uint8_t> p(static_cast<size_t>(w * h * 3));
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      uint8_t* q = &p[static_cast<size_t>((y * w + x) * 3)];
      q[0] = static_cast<uint8_t>(255.0 * x / (w - 1));
      q[1] = static_cast<uint8_t>(255.0 * y / (h - 1));
      q[2] = static_cast<uint8_t>(128 + 100 * std::sin(0.3 * x + 0.2 * y));
    }
  return p;
}

std::vector<uint8_t> pattern_grey(int64_t w, int64_t h) {
  std::vector<uint8_t> p(static_cast<size_t>(w * h));
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      p[static_cast<size_t>(y * w + x)] = static_cast<uint8_t>(128 + 120 * std::cos(0.17 * x) * std::sin(0.23 * y));
  return p;
}

int max_abs_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  EXPECT_EQ(a.size(), b.size());
  int m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::abs(int(a[i]) - int(b[i])));
  return m;
}

std::vector<uint8_t> valid_jpeg(int64_t w = 40, int64_t h = 30, bool progressive = false) {
  JpegEncodeOptions o;
  o.quality = 90;
  o.progressive = progressive;
  return encode_jpeg(pattern_rgb(w, h).data(), w, h, 3, o);
}

// Decoding `path` must throw a DecodeError naming the file and containing `reason`.
void expect_decode_error(const std::string& path, const std::string& reason, const JpegDecodeOptions& opt = {}) {
  try {
    decode_jpeg_file(path, opt);
    ADD_FAILURE() << "no error for " << path;
  } catch (const DecodeError& e) {
    EXPECT_EQ(e.path(), path);
    std::string m = e.what();
    EXPECT_TRUE(test::has(m, path)) << m;
    EXPECT_TRUE(test::has(m, reason)) << "expected '" << reason << "' in: " << m;
  }
}

// PIL golden: "<h> <w>" then RGB bytes (comment lines start with '#').
Image load_pil_rgb(const std::string& name) {
  std::ifstream f(std::string(OFA_TEST_DATA_DIR) + "/pil_" + name + ".rgb.txt");
  EXPECT_TRUE(f.good()) << name;
  std::string line;
  std::stringstream rest;
  while (std::getline(f, line))
    if (!line.empty() && line[0] != '#') rest << line << '\n';
  Image img;
  rest >> img.h >> img.w;
  int v;
  while (rest >> v) img.rgb.push_back(static_cast<uint8_t>(v));
  EXPECT_EQ(img.rgb.size(), static_cast<size_t>(img.h * img.w * 3)) << name;
  return img;
}

std::string pil_jpeg(const std::string& name) { return std::string(OFA_TEST_DATA_DIR) + "/pil_" + name + ".jpg"; }

// ------------------------------------------------------------------ correct pixels

TEST(JpegDecode, RgbQuality100Subsampling444IsNearlyLossless) {
  const int64_t w = 37, h = 29;  // partial MCUs on both axes
  std::vector<uint8_t> px = pattern_rgb(w, h);
  JpegEncodeOptions o;
  o.quality = 100;
  o.subsampling = TJSAMP_444;
  Image img = decode_jpeg(encode_jpeg(px.data(), w, h, 3, o), "mem.jpg");
  ASSERT_EQ(img.w, w);
  ASSERT_EQ(img.h, h);
  // Quality 100 still rounds DCT coefficients and the colour transform.
  EXPECT_LE(max_abs_diff(img.rgb, px), 4);
  double sum = 0;
  for (size_t i = 0; i < px.size(); ++i) sum += std::abs(int(img.rgb[i]) - int(px[i]));
  EXPECT_LT(sum / px.size(), 1.0);
  // Channel order: a red-to-the-right gradient must stay in channel 0.
  EXPECT_LT(img.at(10, 0, 0), 10);
  EXPECT_GT(img.at(10, w - 1, 0), 245);
  EXPECT_LT(img.at(0, 10, 1), 10);
  EXPECT_GT(img.at(h - 1, 10, 1), 245);
}

TEST(JpegDecode, GreyscaleBecomesReplicatedRgb) {
  const int64_t w = 33, h = 18;
  std::vector<uint8_t> g = pattern_grey(w, h);
  JpegEncodeOptions o;
  o.quality = 100;
  std::vector<uint8_t> jpg = encode_jpeg(g.data(), w, h, 1, o);
  EXPECT_EQ(read_jpeg_header(jpg.data(), jpg.size(), "g.jpg").colorspace, TJCS_GRAY);
  Image img = decode_jpeg(jpg, "g.jpg");
  ASSERT_EQ(img.rgb.size(), static_cast<size_t>(w * h * 3));
  int worst = 0;
  for (int64_t p = 0; p < w * h; ++p) {
    EXPECT_EQ(img.rgb[3 * p], img.rgb[3 * p + 1]);
    EXPECT_EQ(img.rgb[3 * p], img.rgb[3 * p + 2]);
    worst = std::max(worst, std::abs(int(img.rgb[3 * p]) - int(g[static_cast<size_t>(p)])));
  }
  EXPECT_LE(worst, 2);
}

TEST(JpegDecode, ProgressiveDecodesLikeBaseline) {
  // Progressive only reorders the same quantised coefficients: identical pixels.
  const int64_t w = 45, h = 31;
  std::vector<uint8_t> px = pattern_rgb(w, h);
  for (int q : {75, 100}) {
    JpegEncodeOptions o;
    o.quality = q;
    o.subsampling = TJSAMP_444;
    Image base = decode_jpeg(encode_jpeg(px.data(), w, h, 3, o), "base.jpg");
    o.progressive = true;
    std::vector<uint8_t> pj = encode_jpeg(px.data(), w, h, 3, o);
    Image prog = decode_jpeg(pj, "prog.jpg");
    EXPECT_EQ(prog.rgb, base.rgb) << "quality " << q;
    EXPECT_LE(max_abs_diff(prog.rgb, px), q == 100 ? 4 : 40);
  }
}

// Our decoder against PIL 9.4's Image.open(f).convert("RGB") on files PIL wrote.
class JpegDecodePil : public ::testing::TestWithParam<std::string> {};

TEST_P(JpegDecodePil, MatchesPilDecoding) {
  Image want = load_pil_rgb(GetParam());
  Image got = decode_jpeg_file(pil_jpeg(GetParam()));
  ASSERT_EQ(got.h, want.h);
  ASSERT_EQ(got.w, want.w);
  // Same libjpeg-turbo, same default IDCT and upsampling: identical bytes.
  EXPECT_EQ(max_abs_diff(got.rgb, want.rgb), 0);
}

INSTANTIATE_TEST_SUITE_P(Files, JpegDecodePil,
                         ::testing::Values("cmyk_q95", "rgb_420_q90", "rgb_progressive_q85", "rgb_422_q75",
                                           "rgb_444_q100", "gray_q90"));

TEST(JpegDecode, PilCmykFileIsAdobeCmyk) {
  std::vector<uint8_t> b = read_file_bytes(pil_jpeg("cmyk_q95"));
  EXPECT_EQ(read_jpeg_header(b.data(), b.size(), "cmyk").colorspace, TJCS_CMYK);
}

TEST(JpegDecode, CmykToRgbIsPilsFormula) {
  // PIL: Image.new('CMYK', (1, 1), (10, 200, 30, 40)).convert('RGB') == (207, 46, 190)
  const uint8_t cmyk[8] = {10, 200, 30, 40, 0, 0, 0, 0};
  uint8_t rgb[6];
  cmyk_to_rgb_pil(cmyk, rgb, 2);
  EXPECT_EQ(int(rgb[0]), 207);
  EXPECT_EQ(int(rgb[1]), 46);
  EXPECT_EQ(int(rgb[2]), 190);
  EXPECT_EQ(int(rgb[3]), 255);  // no ink: white
  const uint8_t black[4] = {0, 0, 0, 255};
  cmyk_to_rgb_pil(black, rgb, 1);
  EXPECT_EQ(int(rgb[0]) + rgb[1] + rgb[2], 0);
}

TEST(JpegDecode, YcckFromTurboJpegUsesAdobePolarity) {
  // TurboJPEG writes 4-channel input as YCCK with the values as given; PIL
  // (and so we) read stored values as inverted CMYK.
  const int64_t w = 24, h = 16;
  std::vector<uint8_t> stored(static_cast<size_t>(w * h * 4));
  for (int64_t p = 0; p < w * h; ++p)
    for (int c = 0; c < 4; ++c) stored[static_cast<size_t>(4 * p + c)] = static_cast<uint8_t>(60 + 40 * c + (p % w) * 2);
  JpegEncodeOptions o;
  o.quality = 100;
  o.subsampling = TJSAMP_444;
  std::vector<uint8_t> jpg = encode_jpeg(stored.data(), w, h, 4, o);
  EXPECT_EQ(read_jpeg_header(jpg.data(), jpg.size(), "ycck").colorspace, TJCS_YCCK);
  std::vector<uint8_t> inverted(stored.size());
  for (size_t i = 0; i < stored.size(); ++i) inverted[i] = static_cast<uint8_t>(255 - stored[i]);
  std::vector<uint8_t> want(static_cast<size_t>(w * h * 3));
  cmyk_to_rgb_pil(inverted.data(), want.data(), w * h);
  Image got = decode_jpeg(jpg, "ycck.jpg");
  EXPECT_LE(max_abs_diff(got.rgb, want), 3);
}

// ------------------------------------------------------------------ reduced-size decoding

TEST(JpegDecode, ScaledSizePicksSmallestScaleKeepingShortSide) {
  // 400x300: 1/8 -> 50x38, 1/4 -> 100x75, 3/8 -> 150x113, 1/2 -> 200x150, ...
  using P = std::pair<int64_t, int64_t>;
  EXPECT_EQ(jpeg_scaled_size(400, 300, 0), P(400, 300));
  EXPECT_EQ(jpeg_scaled_size(400, 300, 38), P(50, 38));
  EXPECT_EQ(jpeg_scaled_size(400, 300, 39), P(100, 75));
  EXPECT_EQ(jpeg_scaled_size(400, 300, 75), P(100, 75));
  EXPECT_EQ(jpeg_scaled_size(400, 300, 100), P(150, 113));
  EXPECT_EQ(jpeg_scaled_size(400, 300, 150), P(200, 150));
  EXPECT_EQ(jpeg_scaled_size(400, 300, 151), P(250, 188));   // 5/8
  EXPECT_EQ(jpeg_scaled_size(400, 300, 263), P(350, 263));   // 7/8: 262.5 rounds up to 263
  EXPECT_EQ(jpeg_scaled_size(400, 300, 264), P(400, 300));
  EXPECT_EQ(jpeg_scaled_size(400, 300, 1000), P(400, 300));  // never upscaled
  EXPECT_EQ(jpeg_scaled_size(300, 400, 100), P(113, 150));   // portrait: the short side is the width
}

TEST(JpegDecode, ScaledSizeSevenEighths) {
  using P = std::pair<int64_t, int64_t>;
  EXPECT_EQ(jpeg_scaled_size(400, 320, 280), P(350, 280));
  EXPECT_EQ(jpeg_scaled_size(400, 320, 281), P(400, 320));
}

TEST(JpegDecode, ReducedDecodeHasTheChosenSizeAndContent) {
  const int64_t w = 160, h = 96;
  JpegEncodeOptions o;
  o.quality = 100;
  o.subsampling = TJSAMP_444;
  std::vector<uint8_t> jpg = encode_jpeg(pattern_rgb(w, h).data(), w, h, 3, o);
  Image full = decode_jpeg(jpg, "full.jpg");
  for (int64_t hint : {int64_t{12}, int64_t{24}, int64_t{48}, int64_t{60}, int64_t{96}, int64_t{200}}) {
    JpegDecodeOptions d;
    d.min_short_side = hint;
    Image small = decode_jpeg(jpg, "small.jpg", d);
    auto [ew, eh] = jpeg_scaled_size(w, h, hint);
    EXPECT_EQ(small.w, ew) << hint;
    EXPECT_EQ(small.h, eh) << hint;
    EXPECT_GE(std::min(small.w, small.h), std::min(hint, h)) << hint;
    // Content: each scaled pixel is close to the mean of its full-size footprint.
    double fx = double(w) / small.w, fy = double(h) / small.h;
    double worst = 0;
    for (int64_t y = 1; y + 1 < small.h; ++y)
      for (int64_t x = 1; x + 1 < small.w; ++x)
        for (int c = 0; c < 3; ++c) {
          double s = 0;
          int n = 0;
          for (int64_t yy = int64_t(y * fy); yy < int64_t((y + 1) * fy); ++yy)
            for (int64_t xx = int64_t(x * fx); xx < int64_t((x + 1) * fx); ++xx, ++n) s += full.at(yy, xx, c);
          if (n) worst = std::max(worst, std::abs(s / n - small.at(y, x, c)));
        }
    EXPECT_LT(worst, 40) << hint;
  }
  JpegDecodeOptions d;
  d.min_short_side = 12;
  EXPECT_EQ(decode_jpeg(jpg, "s.jpg", d).w, 20);  // 1/8 of 160
}

// ------------------------------------------------------------------ bad files

TEST(JpegBadFile, ZeroBytes) {
  std::string p = tmp_path("empty.jpg");
  write_bytes(p, {});
  expect_decode_error(p, "empty file");
}

TEST(JpegBadFile, Missing) { expect_decode_error(tmp_path("does_not_exist.jpg"), "cannot open"); }

TEST(JpegBadFile, Directory) {
  std::string p = tmp_path("a_folder.jpg");
  std::filesystem::create_directories(p);
  expect_decode_error(p, "not a regular file");
}

TEST(JpegBadFile, RandomBytes) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 20; ++trial) {
    std::vector<uint8_t> b(1 + rng() % 4000);
    for (auto& v : b) v = static_cast<uint8_t>(rng());
    if (trial % 2) {  // half of them start like a JPEG
      b.resize(std::max<size_t>(b.size(), 2));
      b[0] = 0xFF;
      b[1] = 0xD8;
    }
    std::string p = tmp_path("random" + std::to_string(trial) + ".jpg");
    write_bytes(p, b);
    expect_decode_error(p, trial % 2 ? "JPEG" : "not a JPEG file");
  }
}

TEST(JpegBadFile, OtherFormatsUnderJpgName) {
  struct Case {
    const char* name;
    std::vector<uint8_t> bytes;
    const char* kind;
  };
  std::vector<Case> cases = {
      {"png.jpg", {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 'I', 'H', 'D', 'R'}, "PNG"},
      {"gif.jpg", {'G', 'I', 'F', '8', '9', 'a', 1, 0, 1, 0, 0, 0, 0}, "GIF"},
      {"bmp.jpg", {'B', 'M', 0x3A, 0, 0, 0, 0, 0, 0, 0, 0x36, 0, 0, 0}, "BMP"},
      {"webp.jpg", {'R', 'I', 'F', 'F', 0x24, 0, 0, 0, 'W', 'E', 'B', 'P', 'V', 'P', '8', ' '}, "WebP"},
      {"tiff.jpg", {'I', 'I', '*', 0, 8, 0, 0, 0}, "TIFF"},
      {"ppm.jpg", {'P', '6', '\n', '1', ' ', '1', '\n', '2', '5', '5', '\n', 0, 0, 0}, "PNM"},
  };
  for (const auto& c : cases) {
    std::string p = tmp_path(c.name);
    write_bytes(p, c.bytes);
    expect_decode_error(p, "not a JPEG file");
    expect_decode_error(p, c.kind);
  }
}

TEST(JpegBadFile, TruncatedAtEveryKindOfPlace) {
  for (bool progressive : {false, true}) {
    std::vector<uint8_t> good = valid_jpeg(64, 48, progressive);
    ASSERT_NO_THROW(decode_jpeg(good, "good.jpg"));
    // Inside the headers, inside the entropy-coded data, just before EOI.
    for (size_t keep : {size_t{1}, size_t{3}, size_t{20}, size_t{200}, good.size() / 2, good.size() - 2}) {
      std::vector<uint8_t> cut(good.begin(), good.begin() + static_cast<int64_t>(keep));
      std::string p = tmp_path("trunc_" + std::to_string(progressive) + "_" + std::to_string(keep) + ".jpg");
      write_bytes(p, cut);
      expect_decode_error(p, keep < 2 ? "not a JPEG" : "JPEG");
    }
  }
}

TEST(JpegBadFile, TruncatedScanReasonSaysDamaged) {
  std::vector<uint8_t> good = valid_jpeg(64, 48);
  std::vector<uint8_t> cut(good.begin(), good.begin() + static_cast<int64_t>(good.size() * 3 / 4));
  std::string p = tmp_path("trunc_scan.jpg");
  write_bytes(p, cut);
  expect_decode_error(p, "damaged JPEG data");
}

TEST(JpegBadFile, MutatedFilesNeverCrash) {
  // Corrupt bytes anywhere: the decoder either returns an image of the declared
  // size or a DecodeError, never anything else.
  std::vector<uint8_t> good = valid_jpeg(48, 40);
  std::mt19937 rng(11);
  int errors = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<uint8_t> b = good;
    int flips = 1 + static_cast<int>(rng() % 8);
    for (int k = 0; k < flips; ++k) b[2 + rng() % (b.size() - 2)] = static_cast<uint8_t>(rng());
    try {
      Image img = decode_jpeg(b, "mutated.jpg");
      EXPECT_EQ(img.rgb.size(), static_cast<size_t>(img.w * img.h * 3));
    } catch (const DecodeError& e) {
      ++errors;
      EXPECT_EQ(e.path(), "mutated.jpg");
    }
  }
  EXPECT_GT(errors, 0);
}

// Rewrites the SOF0 frame size of a baseline JPEG.
std::vector<uint8_t> with_declared_size(std::vector<uint8_t> b, int w, int h) {
  for (size_t i = 2; i + 9 < b.size(); ++i)
    if (b[i] == 0xFF && b[i + 1] == 0xC0) {
      b[i + 5] = static_cast<uint8_t>(h >> 8);
      b[i + 6] = static_cast<uint8_t>(h & 255);
      b[i + 7] = static_cast<uint8_t>(w >> 8);
      b[i + 8] = static_cast<uint8_t>(w & 255);
      return b;
    }
  ADD_FAILURE() << "no SOF0 marker";
  return b;
}

TEST(JpegBadFile, AbsurdDeclaredSizeIsRefusedQuickly) {
  std::vector<uint8_t> good = valid_jpeg(16, 16);
  std::string p = tmp_path("huge.jpg");
  write_bytes(p, with_declared_size(good, 60000, 60000));
  auto t0 = std::chrono::steady_clock::now();
  expect_decode_error(p, "exceeds the limit of 100000000 pixels");
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(secs, 1.0);
  std::string q = tmp_path("too_wide.jpg");
  write_bytes(q, with_declared_size(good, 65535, 8));
  expect_decode_error(q, "65500");
}

TEST(JpegBadFile, PixelLimitIsConfigurable) {
  std::string p = tmp_path("64x64.jpg");
  write_bytes(p, valid_jpeg(64, 64));
  JpegDecodeOptions o;
  o.max_pixels = 4095;
  expect_decode_error(p, "exceeds the limit of 4095 pixels", o);
  o.max_pixels = 4096;
  EXPECT_EQ(decode_jpeg_file(p, o).w, 64);
}

TEST(JpegBadFile, FileSizeLimit) {
  std::string p = tmp_path("big_file.jpg");
  write_bytes(p, valid_jpeg(64, 64));
  JpegDecodeOptions o;
  o.max_file_bytes = 100;
  expect_decode_error(p, "exceeds the limit of 100 bytes", o);
  o.max_file_bytes = 100000;
  EXPECT_EQ(decode_jpeg_file(p, o).w, 64);
}

TEST(JpegDecode, WorksAfterErrorsAndAcrossThreads) {
  std::vector<uint8_t> good = valid_jpeg(50, 30);
  Image want = decode_jpeg(good, "good.jpg");
  std::vector<uint8_t> bad(good.begin(), good.begin() + 300);
  EXPECT_THROW(decode_jpeg(bad, "bad.jpg"), DecodeError);
  EXPECT_EQ(decode_jpeg(good, "good.jpg").rgb, want.rgb);  // the thread's handle recovers
  // A stream with no frame (SOI, EOI) leaves TurboJPEG 2.1's handle mid-stream.
  EXPECT_THROW(decode_jpeg(std::vector<uint8_t>{0xFF, 0xD8, 0xFF, 0xD9}, "soi_eoi.jpg"), DecodeError);
  EXPECT_EQ(decode_jpeg(good, "good.jpg").rgb, want.rgb);
  std::vector<std::thread> ts;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        try {
          decode_jpeg(bad, "bad.jpg");
        } catch (const DecodeError&) {
        }
        ok[t] += decode_jpeg(good, "good.jpg").rgb == want.rgb;
      }
    });
  for (auto& t : ts) t.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(ok[t], 25);
}

TEST(JpegEncode, BadArgumentsAreRefused) {
  std::vector<uint8_t> px(12, 0);
  EXPECT_TRUE(test::has(test::error_of([&] { encode_jpeg(px.data(), 2, 2, 2); }), "channels"));
  JpegEncodeOptions o;
  o.quality = 0;
  EXPECT_TRUE(test::has(test::error_of([&] { encode_jpeg(px.data(), 2, 2, 3, o); }), "quality"));
  EXPECT_TRUE(test::has(test::error_of([&] { encode_jpeg(px.data(), 0, 2, 3); }), "size"));
}

}  // namespace
