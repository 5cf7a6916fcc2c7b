// JPEG decoding (and encoding, for the exporter and tests) with TurboJPEG.
// Decoding gives what torchvision's default loader gives,
// PIL.Image.open(f).convert("RGB"): RGB uint8 in HWC order, greyscale
// replicated to three channels, CMYK/YCCK read with Adobe's inverted polarity
// (PIL assumes it for every 4-channel JPEG) and converted with PIL's formula.
// With the same libjpeg-turbo, pixels are byte-identical to PIL 9.4's
// (tests/data/pil_*). Like PIL (and torchvision), EXIF orientation is ignored.
//
// Bad input never crashes or hangs: every failure is a DecodeError naming the
// file and the reason (empty file, not a JPEG, truncated or corrupt data,
// absurd declared size). Libjpeg warnings (such as a truncated scan) are
// errors too, so a damaged image never becomes a half-grey training sample.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "data/image.h"
#include "engine/common.h"

namespace ofa::data {

// A file that could not be decoded. what() is "<path>: <reason>".
class DecodeError : public Error {
 public:
  DecodeError(std::string path, std::string reason)
      : Error(path + ": " + reason), path_(std::move(path)), reason_(std::move(reason)) {}
  const std::string& path() const { return path_; }
  const std::string& reason() const { return reason_; }

 private:
  std::string path_;
  std::string reason_;
};

struct JpegDecodeOptions {
  // Reduced-size decoding: when > 0, decode at the smallest TurboJPEG scale
  // (1/8, 1/4, 3/8, ... 1) whose short side is still >= this; an image whose
  // short side is already below it decodes at full size (never upscaled).
  // A speed option: pixels then differ from the reference's full-size PIL
  // decode followed by its resize.
  int64_t min_short_side = 0;
  // Refuse images whose declared width * height exceeds this (before any
  // memory is allocated for pixels). Dimensions above 65500 are always refused.
  int64_t max_pixels = 100'000'000;
  // Refuse files larger than this before reading them.
  int64_t max_file_bytes = int64_t{1} << 30;
};

// What the header says, without decoding the pixels.
struct JpegHeader {
  int64_t width = 0;
  int64_t height = 0;
  int subsampling = 0;  // TJSAMP_*
  int colorspace = 0;   // TJCS_*
};

// Decoders return a data::Image (data/image.h): h x w x 3 bytes, RGB, HWC.
// `name` is only used in error messages (the file the bytes came from).
JpegHeader read_jpeg_header(const uint8_t* data, size_t size, const std::string& name,
                            const JpegDecodeOptions& opt = {});
Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name, const JpegDecodeOptions& opt = {});
Image decode_jpeg(const std::vector<uint8_t>& bytes, const std::string& name, const JpegDecodeOptions& opt = {});
Image decode_jpeg_file(const std::string& path, const JpegDecodeOptions& opt = {});

// Reads a whole file; DecodeError when it cannot be opened or read, or is
// larger than max_bytes.
std::vector<uint8_t> read_file_bytes(const std::string& path, int64_t max_bytes = int64_t{1} << 30);

// The (width, height) TurboJPEG gives at the scale chosen for min_short_side.
std::pair<int64_t, int64_t> jpeg_scaled_size(int64_t width, int64_t height, int64_t min_short_side);

// Encodes `channels` (1 = greyscale, 3 = RGB, 4 = CMYK, stored as given)
// interleaved uint8 pixels. subsampling is a TJSAMP_* value (ignored for
// greyscale); throws ofa::Error on failure.
struct JpegEncodeOptions {
  int quality = 95;
  int subsampling = 2;  // TJSAMP_420, PIL's default
  bool progressive = false;
};
std::vector<uint8_t> encode_jpeg(const uint8_t* pixels, int64_t width, int64_t height, int channels,
                                 const JpegEncodeOptions& opt = {});

// PIL's CMYK -> RGB conversion (Convert.c cmyk2rgb) of already un-inverted
// C, M, Y, K values: R = (255 - K) - round(C * (255 - K) / 255), likewise G, B.
void cmyk_to_rgb_pil(const uint8_t* cmyk, uint8_t* rgb, int64_t count);

}  // namespace ofa::data
