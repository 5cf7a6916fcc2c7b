// The OFA reference's image pipeline (torchvision 0.14 on PIL 9.4 images),
// byte for byte where PIL produces bytes and bit for bit where torchvision
// produces float32:
//   train: RandomResizedCrop(R, scale=(resize_scale, 1)) -> RandomHorizontalFlip
//          -> optional ColorJitter ('tf' or 'torch') -> ToTensor -> Normalize
//   eval:  Resize(ceil(R / 0.875)) -> CenterCrop(R) -> ToTensor -> Normalize
// The random draws use PyRandom (torchvision draws from torch's generator,
// which we do not share): same algorithms and structure, our own stream.
#pragma once
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/image.h"
#include "engine/py_random.h"

namespace ofa::data {

// PIL Image.resize(size=(out_w, out_h), BILINEAR, box=(x0, y0, x1, y1)):
// separable antialiased resampling, horizontal pass first, 8-bit fixed point.
// The box is in source pixels (floats, as PIL takes them) and may be fractional.
Image resize_bilinear(const Image& img, int64_t out_h, int64_t out_w, const std::array<float, 4>& box);
Image resize_bilinear(const Image& img, int64_t out_h, int64_t out_w);  // box = whole image

// PIL Image.crop((left, top, left + width, top + height)); pixels outside the
// image are zero, as PIL gives them.
Image crop(const Image& img, int64_t top, int64_t left, int64_t height, int64_t width);
Image hflip(const Image& img);

// torchvision Resize(size) with an int: the short side becomes `size`, the long
// side int(size * long / short); returns the input when nothing changes.
Image resize_short_side(const Image& img, int64_t size);
// torchvision CenterCrop(size): offsets int(round((H - size) / 2.0)) (Python's
// round: half to even), zero padding first when the image is smaller.
Image center_crop(const Image& img, int64_t size);

struct CropBox {
  int64_t top = 0, left = 0, height = 0, width = 0;  // torchvision's (i, j, h, w)
};
// RandomResizedCrop.get_params: 10 tries of area ~ U(scale) * H * W and
// log-aspect ~ U(log ratio), then the centre-crop fallback.
CropBox random_resized_crop_params(int64_t height, int64_t width, std::array<double, 2> scale,
                                   std::array<double, 2> ratio, PyRandom& rng);
// F.resized_crop on a PIL image: crop, then resize to out x out (PIL bilinear).
Image resized_crop(const Image& img, const CropBox& box, int64_t out_h, int64_t out_w);

// PIL ImageEnhance (what torchvision's adjust_* call on PIL images). The factor
// reaches PIL's blend as a C float.
Image adjust_brightness(const Image& img, double factor);  // blend with black
Image adjust_contrast(const Image& img, double factor);    // blend with the mean grey
Image adjust_saturation(const Image& img, double factor);  // blend with the 'L' image
// torchvision F_pil.adjust_hue: RGB -> HSV (PIL), H += uint8(hue * 255) mod 256, -> RGB.
Image adjust_hue(const Image& img, double hue_factor);
Image to_grayscale_rgb(const Image& img);  // img.convert('L').convert('RGB')

// ColorJitter of the reference's distort_color: "None", "tf"
// (brightness=32/255, saturation=0.5) or "torch" (0.4, 0.4, 0.4, hue 0.1).
enum class ColorJitterKind { None, TF, Torch };
ColorJitterKind parse_color_jitter(const std::string& distort_color);
struct ColorJitterParams {
  std::array<int, 4> order{0, 1, 2, 3};  // 0 brightness, 1 contrast, 2 saturation, 3 hue
  std::optional<double> brightness, contrast, saturation, hue;
};
// ColorJitter.get_params: a random permutation of the four ops, then one
// uniform factor for each enabled op in the order b, c, s, h.
ColorJitterParams color_jitter_params(ColorJitterKind kind, PyRandom& rng);
Image color_jitter(const Image& img, const ColorJitterParams& p);

// ToTensor + Normalize(ImageNet mean/std) in float32: (v / 255 - mean) / std.
// dst holds 3*H*W floats: [3, H, W] (channels_last = false) or [H, W, 3].
constexpr float kImagenetMean[3] = {0.485f, 0.456f, 0.406f};
constexpr float kImagenetStd[3] = {0.229f, 0.224f, 0.225f};
void to_tensor_normalize(const Image& img, float* dst, bool channels_last);

// The evaluation transform at resolution R: the resized short side is
// int(ceil(R / crop_ratio)) (the reference's 0.875), then the centre R x R.
// Writes 3*R*R floats.
int64_t eval_resize_size(int64_t R, double crop_ratio = 0.875);
Image eval_image(const Image& img, int64_t R, double crop_ratio = 0.875);  // the uint8 image before ToTensor
void eval_transform(const Image& img, int64_t R, float* dst, bool channels_last, double crop_ratio = 0.875);

// The training transform at resolution R. Draw order: crop box, flip
// (random() < 0.5), colour-jitter parameters.
struct TrainOptions {
  double resize_scale = 0.08;
  ColorJitterKind jitter = ColorJitterKind::None;
};
Image train_image(const Image& img, int64_t R, const TrainOptions& opt, PyRandom& rng);
void train_transform(const Image& img, int64_t R, const TrainOptions& opt, PyRandom& rng, float* dst,
                     bool channels_last);

// MyRandomResizedCrop.sample_image_size with SYNC_DISTRIBUTED: seed Python's
// random with int('%d%.3d' % (batch_id, epoch)), then random.choices over the
// candidates (floor(random() * n)): every multiple of 4 in [min, max] when
// continuous, else image_size as given.
std::vector<int64_t> candidate_image_sizes(const std::vector<int64_t>& image_size, bool continuous);
int64_t batch_resolution(int64_t batch_id, int64_t epoch, const std::vector<int64_t>& image_size, bool continuous);

}  // namespace ofa::data
