#include "data/transforms.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/common/pil_image_math.h"

// PIL rounds every product and sum separately; a fused multiply-add (the
// build's -march has FMA) would move coefficients and bytes.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace ofa::data {

namespace pil = ofa::kernels::pil;

namespace {

// Per-pixel loops split across threads only for images larger than a
// training crop: a loader's worker threads already run images in parallel.
constexpr int64_t kParallelBytes = int64_t(1) << 20;

void check_image(const Image& img, const char* fn) {
  OFA_CHECK(img.h > 0 && img.w > 0, fn, ": image must be non-empty, got ", img.h, "x", img.w);
  OFA_CHECK(static_cast<int64_t>(img.rgb.size()) == img.h * img.w * 3, fn, ": image ", img.h, "x", img.w,
            " needs ", img.h * img.w * 3, " RGB bytes, holds ", img.rgb.size());
}

Image make_image(int64_t h, int64_t w) {
  Image o;
  o.h = h;
  o.w = w;
  o.rgb.assign(static_cast<size_t>(h * w * 3), 0);
  return o;
}

// Resample.c precompute_coeffs for the bilinear filter (support 1), scaled by
// the downscale factor so that shrinking averages (antialias). Coefficients
// are normalised to sum 1, then rounded to 22-bit fixed point.
struct Coeffs {
  int ksize = 0;
  std::vector<int> bounds;    // per output: xmin, count
  std::vector<int32_t> kk;    // out_size * ksize
};

double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

Coeffs precompute_coeffs(int in_size, float in0, float in1, int out_size) {
  const double support_base = 1.0;
  double scale = static_cast<double>(in1 - in0) / out_size;  // float subtraction, as PIL
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = support_base * filterscale;
  Coeffs c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.bounds.resize(static_cast<size_t>(out_size) * 2);
  c.kk.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> k(static_cast<size_t>(c.ksize));
  for (int xx = 0; xx < out_size; ++xx) {
    double center = in0 + (xx + 0.5) * scale;
    double ww = 0.0;
    double ss = 1.0 / filterscale;
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    for (int x = 0; x < xmax; ++x) {
      double w = bilinear_filter((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; ++x)
      if (ww != 0.0) k[x] /= ww;
    int32_t* kq = &c.kk[static_cast<size_t>(xx) * c.ksize];
    for (int x = 0; x < xmax; ++x)  // normalize_coeffs_8bpc
      kq[x] = k[x] < 0 ? static_cast<int32_t>(-0.5 + k[x] * (1 << pil::kPrecisionBits))
                       : static_cast<int32_t>(0.5 + k[x] * (1 << pil::kPrecisionBits));
    c.bounds[xx * 2] = xmin;
    c.bounds[xx * 2 + 1] = xmax;
  }
  return c;
}

}  // namespace

Image resize_bilinear(const Image& img, int64_t out_h, int64_t out_w, const std::array<float, 4>& box) {
  check_image(img, "resize_bilinear");
  OFA_CHECK(out_h > 0 && out_w > 0, "resize_bilinear: output size must be positive, got ", out_h, "x", out_w);
  OFA_CHECK(img.h < (1 << 30) && img.w < (1 << 30) && out_h < (1 << 30) && out_w < (1 << 30),
            "resize_bilinear: sizes must fit PIL's int, got ", img.h, "x", img.w, " -> ", out_h, "x", out_w);
  OFA_CHECK(box[0] >= 0 && box[1] >= 0, "resize_bilinear: box offset can't be negative, got (", box[0], ", ", box[1],
            ")");
  OFA_CHECK(box[2] <= img.w && box[3] <= img.h, "resize_bilinear: box (", box[0], ", ", box[1], ", ", box[2], ", ",
            box[3], ") can't exceed the image ", img.w, "x", img.h, " (w x h)");
  OFA_CHECK(box[2] - box[0] > 0 && box[3] - box[1] > 0, "resize_bilinear: box (", box[0], ", ", box[1], ", ", box[2],
            ", ", box[3], ") can't be empty");
  const int in_w = static_cast<int>(img.w), in_h = static_cast<int>(img.h);
  const int ow = static_cast<int>(out_w), oh = static_cast<int>(out_h);
  // ImagingResampleInner: which passes run (exactly PIL's test).
  const bool need_h = ow != in_w || box[0] != 0 || box[2] != ow;
  const bool need_v = oh != in_h || box[1] != 0 || box[3] != oh;

  Coeffs cv = precompute_coeffs(in_h, box[1], box[3], oh);
  const int y_first = cv.bounds[0];
  const int y_last = cv.bounds[(oh - 1) * 2] + cv.bounds[(oh - 1) * 2 + 1];

  // Horizontal pass over the source rows the vertical pass will read.
  const uint8_t* src = img.rgb.data();
  int src_w = in_w;
  int row0 = 0;  // source row held in src's first row
  std::vector<uint8_t> tmp;
  if (need_h) {
    Coeffs ch = precompute_coeffs(in_w, box[0], box[2], ow);
    const int rows = y_last - y_first;
    tmp.assign(static_cast<size_t>(rows) * ow * 3, 0);
#pragma omp parallel for schedule(static) if (int64_t(rows) * in_w * 3 > kParallelBytes)
    for (int yy = 0; yy < rows; ++yy) {
      const uint8_t* in = img.rgb.data() + static_cast<size_t>(yy + y_first) * in_w * 3;
      uint8_t* out = tmp.data() + static_cast<size_t>(yy) * ow * 3;
      for (int xx = 0; xx < ow; ++xx) {
        const int xmin = ch.bounds[xx * 2], xmax = ch.bounds[xx * 2 + 1];
        const int32_t* k = &ch.kk[static_cast<size_t>(xx) * ch.ksize];
        int32_t s0 = 1 << (pil::kPrecisionBits - 1), s1 = s0, s2 = s0;
        for (int x = 0; x < xmax; ++x) {
          const uint8_t* p = in + static_cast<size_t>(x + xmin) * 3;
          s0 += p[0] * k[x];
          s1 += p[1] * k[x];
          s2 += p[2] * k[x];
        }
        out[xx * 3] = pil::clip8(s0);
        out[xx * 3 + 1] = pil::clip8(s1);
        out[xx * 3 + 2] = pil::clip8(s2);
      }
    }
    src = tmp.data();
    src_w = ow;
    row0 = y_first;
  }
  if (!need_v) {
    Image o = make_image(need_h ? y_last - y_first : in_h, src_w);
    std::memcpy(o.rgb.data(), src, o.rgb.size());
    return o;
  }
  Image o = make_image(oh, src_w);
  const int64_t row_bytes = static_cast<int64_t>(src_w) * 3;
#pragma omp parallel for schedule(static) if (int64_t(oh) * row_bytes > kParallelBytes)
  for (int yy = 0; yy < oh; ++yy) {
    const int ymin = cv.bounds[yy * 2] - row0, ymax = cv.bounds[yy * 2 + 1];
    const int32_t* k = &cv.kk[static_cast<size_t>(yy) * cv.ksize];
    uint8_t* out = o.rgb.data() + yy * row_bytes;
    // Integer sums: accumulating row by row gives PIL's exact values.
    std::vector<int32_t> acc(static_cast<size_t>(row_bytes), 1 << (pil::kPrecisionBits - 1));
    for (int y = 0; y < ymax; ++y) {
      const uint8_t* in = src + (y + ymin) * row_bytes;
      const int32_t ky = k[y];
      for (int64_t c = 0; c < row_bytes; ++c) acc[c] += in[c] * ky;
    }
    for (int64_t c = 0; c < row_bytes; ++c) out[c] = pil::clip8(acc[c]);
  }
  return o;
}

Image resize_bilinear(const Image& img, int64_t out_h, int64_t out_w) {
  return resize_bilinear(img, out_h, out_w,
                         {0.f, 0.f, static_cast<float>(img.w), static_cast<float>(img.h)});
}

Image crop(const Image& img, int64_t top, int64_t left, int64_t height, int64_t width) {
  check_image(img, "crop");
  OFA_CHECK(height > 0 && width > 0, "crop: crop size must be positive, got ", height, "x", width);
  Image o = make_image(height, width);
  for (int64_t y = 0; y < height; ++y) {
    const int64_t sy = top + y;
    if (sy < 0 || sy >= img.h) continue;
    const int64_t x0 = std::max<int64_t>(0, -left), x1 = std::min<int64_t>(width, img.w - left);
    if (x1 <= x0) continue;
    std::memcpy(o.rgb.data() + (y * width + x0) * 3, img.rgb.data() + (sy * img.w + left + x0) * 3,
                static_cast<size_t>(x1 - x0) * 3);
  }
  return o;
}

Image hflip(const Image& img) {
  check_image(img, "hflip");
  Image o = make_image(img.h, img.w);
  for (int64_t y = 0; y < img.h; ++y)
    for (int64_t x = 0; x < img.w; ++x)
      for (int c = 0; c < 3; ++c) o.rgb[(y * img.w + x) * 3 + c] = img.rgb[(y * img.w + img.w - 1 - x) * 3 + c];
  return o;
}

Image resize_short_side(const Image& img, int64_t size) {
  check_image(img, "resize_short_side");
  OFA_CHECK(size > 0, "resize_short_side: size must be positive, got ", size);
  const bool w_short = img.w <= img.h;
  const int64_t shrt = w_short ? img.w : img.h, lng = w_short ? img.h : img.w;
  // Python: int(size * long / short), a true division then truncation.
  const int64_t new_long = static_cast<int64_t>(static_cast<double>(size * lng) / static_cast<double>(shrt));
  const int64_t new_w = w_short ? size : new_long, new_h = w_short ? new_long : size;
  if (new_h == img.h && new_w == img.w) return img;
  return resize_bilinear(img, new_h, new_w);
}

Image center_crop(const Image& img, int64_t size) {
  check_image(img, "center_crop");
  OFA_CHECK(size > 0, "center_crop: size must be positive, got ", size);
  Image src = img;
  if (size > img.w || size > img.h) {
    // torchvision pads (left, top) = floor(deficit / 2) with zeros first.
    const int64_t pl = size > img.w ? (size - img.w) / 2 : 0, pt = size > img.h ? (size - img.h) / 2 : 0;
    const int64_t pr = size > img.w ? (size - img.w + 1) / 2 : 0, pb = size > img.h ? (size - img.h + 1) / 2 : 0;
    src = crop(img, -pt, -pl, img.h + pt + pb, img.w + pl + pr);
    if (src.h == size && src.w == size) return src;
  }
  const int64_t top = static_cast<int64_t>(std::nearbyint((src.h - size) / 2.0));
  const int64_t left = static_cast<int64_t>(std::nearbyint((src.w - size) / 2.0));
  return crop(src, top, left, size, size);
}

CropBox random_resized_crop_params(int64_t height, int64_t width, std::array<double, 2> scale,
                                   std::array<double, 2> ratio, PyRandom& rng) {
  OFA_CHECK(height > 0 && width > 0, "random_resized_crop_params: image must be non-empty, got ", height, "x", width);
  OFA_CHECK(scale[0] <= scale[1] && ratio[0] <= ratio[1] && ratio[0] > 0,
            "random_resized_crop_params: need scale[0] <= scale[1] and 0 < ratio[0] <= ratio[1], got scale (",
            scale[0], ", ", scale[1], ") ratio (", ratio[0], ", ", ratio[1], ")");
  const double area = static_cast<double>(height * width);
  // torchvision keeps log(ratio) and its uniform draws in float32.
  const float log_r0 = std::log(static_cast<float>(ratio[0])), log_r1 = std::log(static_cast<float>(ratio[1]));
  for (int attempt = 0; attempt < 10; ++attempt) {
    const float u_area = static_cast<float>(scale[0] + (scale[1] - scale[0]) * rng.random());
    const double target_area = area * static_cast<double>(u_area);
    const float u_log = static_cast<float>(log_r0 + (log_r1 - log_r0) * rng.random());
    const double aspect = static_cast<double>(std::exp(u_log));
    const int64_t w = static_cast<int64_t>(std::nearbyint(std::sqrt(target_area * aspect)));
    const int64_t h = static_cast<int64_t>(std::nearbyint(std::sqrt(target_area / aspect)));
    if (0 < w && w <= width && 0 < h && h <= height) {
      CropBox b;
      b.height = h;
      b.width = w;
      b.top = rng.randrange(0, height - h + 1);
      b.left = rng.randrange(0, width - w + 1);
      return b;
    }
  }
  // Fallback: the largest centred crop whose aspect ratio lies in range.
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  CropBox b;
  if (in_ratio < ratio[0]) {
    b.width = width;
    b.height = static_cast<int64_t>(std::nearbyint(b.width / ratio[0]));
  } else if (in_ratio > ratio[1]) {
    b.height = height;
    b.width = static_cast<int64_t>(std::nearbyint(b.height * ratio[1]));
  } else {
    b.width = width;
    b.height = height;
  }
  b.top = (height - b.height) / 2;
  b.left = (width - b.width) / 2;
  return b;
}

Image resized_crop(const Image& img, const CropBox& box, int64_t out_h, int64_t out_w) {
  // torchvision crops first (a materialised PIL crop), so the filter never sees
  // pixels outside the crop: not the same as resize with a box near its edges.
  Image c = crop(img, box.top, box.left, box.height, box.width);
  if (c.h == out_h && c.w == out_w) return c;
  return resize_bilinear(c, out_h, out_w);
}

namespace {
Image blend_images(const Image& degenerate, const Image& img, double factor) {
  const float alpha = static_cast<float>(factor);  // PIL's blend takes a C float
  Image o = make_image(img.h, img.w);
  const int64_t n = static_cast<int64_t>(img.rgb.size());
#pragma omp parallel for schedule(static) if (n > kParallelBytes)
  for (int64_t i = 0; i < n; ++i) o.rgb[i] = pil::blend(degenerate.rgb[i], img.rgb[i], alpha);
  return o;
}
}  // namespace

Image to_grayscale_rgb(const Image& img) {
  check_image(img, "to_grayscale_rgb");
  Image o = make_image(img.h, img.w);
  const int64_t n = img.h * img.w;
#pragma omp parallel for schedule(static) if (n * 3 > kParallelBytes)
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* p = &img.rgb[i * 3];
    const uint8_t l = pil::rgb_to_l(p[0], p[1], p[2]);
    o.rgb[i * 3] = o.rgb[i * 3 + 1] = o.rgb[i * 3 + 2] = l;
  }
  return o;
}

Image adjust_brightness(const Image& img, double factor) {
  check_image(img, "adjust_brightness");
  OFA_CHECK(factor >= 0, "adjust_brightness: factor must be non-negative, got ", factor);
  return blend_images(make_image(img.h, img.w), img, factor);
}

Image adjust_saturation(const Image& img, double factor) {
  check_image(img, "adjust_saturation");
  OFA_CHECK(factor >= 0, "adjust_saturation: factor must be non-negative, got ", factor);
  return blend_images(to_grayscale_rgb(img), img, factor);
}

Image adjust_contrast(const Image& img, double factor) {
  check_image(img, "adjust_contrast");
  OFA_CHECK(factor >= 0, "adjust_contrast: factor must be non-negative, got ", factor);
  // ImageEnhance.Contrast: mean of the 'L' image from its histogram, as a
  // Python float, rounded by int(mean + 0.5).
  const size_t n = static_cast<size_t>(img.h * img.w);
  int64_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum += pil::rgb_to_l(img.rgb[i * 3], img.rgb[i * 3 + 1], img.rgb[i * 3 + 2]);
  const double mean = static_cast<double>(sum) / static_cast<double>(n);
  const uint8_t m = static_cast<uint8_t>(static_cast<int>(mean + 0.5));
  Image deg = make_image(img.h, img.w);
  std::fill(deg.rgb.begin(), deg.rgb.end(), m);
  return blend_images(deg, img, factor);
}

Image adjust_hue(const Image& img, double hue_factor) {
  check_image(img, "adjust_hue");
  OFA_CHECK(hue_factor >= -0.5 && hue_factor <= 0.5, "adjust_hue: hue_factor (", hue_factor,
            ") is not in [-0.5, 0.5]");
  // np.uint8(hue_factor * 255): truncation toward zero, then wrap modulo 256.
  const uint8_t shift = static_cast<uint8_t>(static_cast<int64_t>(hue_factor * 255) & 0xff);
  Image o = make_image(img.h, img.w);
  const int64_t n = img.h * img.w;
#pragma omp parallel for schedule(static) if (n * 3 > kParallelBytes)
  for (int64_t i = 0; i < n; ++i) {
    uint8_t hsv[3];
    pil::rgb_to_hsv(&img.rgb[i * 3], hsv);
    hsv[0] = static_cast<uint8_t>(hsv[0] + shift);
    pil::hsv_to_rgb(hsv, &o.rgb[i * 3]);
  }
  return o;
}

ColorJitterKind parse_color_jitter(const std::string& s) {
  if (s == "None" || s.empty()) return ColorJitterKind::None;
  if (s == "tf") return ColorJitterKind::TF;
  if (s == "torch") return ColorJitterKind::Torch;
  throw Error(str_cat("parse_color_jitter: distort_color must be 'None', 'tf' or 'torch', got '", s, "'"));
}

ColorJitterParams color_jitter_params(ColorJitterKind kind, PyRandom& rng) {
  ColorJitterParams p;
  if (kind == ColorJitterKind::None) return p;
  std::vector<int> order{0, 1, 2, 3};
  rng.shuffle(order);
  for (int i = 0; i < 4; ++i) p.order[i] = order[i];
  // ColorJitter._check_input: factor ranges [max(0, 1 - v), 1 + v], hue [-v, v].
  auto draw = [&](double lo, double hi) { return lo + (hi - lo) * rng.random(); };
  if (kind == ColorJitterKind::TF) {
    const double b = 32.0 / 255.0;
    p.brightness = draw(std::max(0.0, 1.0 - b), 1.0 + b);
    p.saturation = draw(0.5, 1.5);
  } else {
    p.brightness = draw(0.6, 1.4);
    p.contrast = draw(0.6, 1.4);
    p.saturation = draw(0.6, 1.4);
    p.hue = draw(-0.1, 0.1);
  }
  return p;
}

Image color_jitter(const Image& img, const ColorJitterParams& p) {
  Image cur = img;
  for (int id : p.order) {
    if (id == 0 && p.brightness) cur = adjust_brightness(cur, *p.brightness);
    else if (id == 1 && p.contrast) cur = adjust_contrast(cur, *p.contrast);
    else if (id == 2 && p.saturation) cur = adjust_saturation(cur, *p.saturation);
    else if (id == 3 && p.hue) cur = adjust_hue(cur, *p.hue);
  }
  return cur;
}

void to_tensor_normalize(const Image& img, float* dst, bool channels_last) {
  check_image(img, "to_tensor_normalize");
  OFA_CHECK(dst != nullptr, "to_tensor_normalize: destination is null");
  const int64_t hw = img.h * img.w;
  // Exactly torchvision's float32 ops: x / 255, then (x - mean) / std.
  for (int64_t i = 0; i < hw; ++i)
    for (int c = 0; c < 3; ++c) {
      const float x = static_cast<float>(img.rgb[i * 3 + c]) / 255.0f;
      const float v = (x - kImagenetMean[c]) / kImagenetStd[c];
      if (channels_last)
        dst[i * 3 + c] = v;
      else
        dst[c * hw + i] = v;
    }
}

int64_t eval_resize_size(int64_t R, double crop_ratio) {
  OFA_CHECK(R > 0, "eval_resize_size: resolution must be positive, got ", R);
  OFA_CHECK(crop_ratio > 0 && crop_ratio <= 1, "eval_resize_size: crop ratio must be in (0, 1], got ", crop_ratio);
  return static_cast<int64_t>(std::ceil(static_cast<double>(R) / crop_ratio));
}

Image eval_image(const Image& img, int64_t R, double crop_ratio) {
  return center_crop(resize_short_side(img, eval_resize_size(R, crop_ratio)), R);
}

void eval_transform(const Image& img, int64_t R, float* dst, bool channels_last, double crop_ratio) {
  to_tensor_normalize(eval_image(img, R, crop_ratio), dst, channels_last);
}

Image train_image(const Image& img, int64_t R, const TrainOptions& opt, PyRandom& rng) {
  check_image(img, "train_image");
  OFA_CHECK(R > 0, "train_image: resolution must be positive, got ", R);
  OFA_CHECK(opt.resize_scale > 0 && opt.resize_scale <= 1, "train_image: resize_scale must be in (0, 1], got ",
            opt.resize_scale);
  const CropBox box = random_resized_crop_params(img.h, img.w, {opt.resize_scale, 1.0}, {3.0 / 4.0, 4.0 / 3.0}, rng);
  Image out = resized_crop(img, box, R, R);
  if (rng.random() < 0.5) out = hflip(out);
  if (opt.jitter != ColorJitterKind::None) out = color_jitter(out, color_jitter_params(opt.jitter, rng));
  return out;
}

void train_transform(const Image& img, int64_t R, const TrainOptions& opt, PyRandom& rng, float* dst,
                     bool channels_last) {
  to_tensor_normalize(train_image(img, R, opt, rng), dst, channels_last);
}

std::vector<int64_t> candidate_image_sizes(const std::vector<int64_t>& image_size, bool continuous) {
  OFA_CHECK(!image_size.empty(), "candidate_image_sizes: image_size is empty");
  std::vector<int64_t> sizes = image_size;
  std::sort(sizes.begin(), sizes.end());  // ImagenetDataProvider sorts image_size first
  if (!continuous) return sizes;
  std::vector<int64_t> out;
  for (int64_t s = sizes.front(); s <= sizes.back(); ++s)
    if (s % 4 == 0) out.push_back(s);
  OFA_CHECK(!out.empty(), "candidate_image_sizes: no multiple of 4 between ", sizes.front(), " and ", sizes.back(),
            " (continuous sizes step by 4)");
  return out;
}

int64_t batch_resolution(int64_t batch_id, int64_t epoch, const std::vector<int64_t>& image_size, bool continuous) {
  OFA_CHECK(batch_id >= 0 && epoch >= 0, "batch_resolution: batch_id and epoch must be non-negative, got ", batch_id,
            " and ", epoch);
  // int('%d%.3d' % (batch_id, epoch)): the epoch zero-padded to 3 digits.
  std::string e = std::to_string(epoch);
  if (e.size() < 3) e = std::string(3 - e.size(), '0') + e;
  const std::string digits = std::to_string(batch_id) + e;
  OFA_CHECK(digits.size() <= 19, "batch_resolution: seed ", digits, " does not fit 64 bits");
  const uint64_t seed = std::stoull(digits);
  const std::vector<int64_t> cand = candidate_image_sizes(image_size, continuous);
  PyRandom rng(seed);
  // random.choices(population)[0] with no weights: floor(random() * n).
  const double n = static_cast<double>(cand.size());
  return cand[static_cast<size_t>(std::floor(rng.random() * n))];
}

}  // namespace ofa::data
