#include "data/jpeg.h"

#include <turbojpeg.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sys/stat.h>

namespace ofa::data {

namespace {

// One decompressor per thread, kept across images (creating one per image
// costs allocations); replaced after any failure (reset_decompressor).
struct TjHandles {
  tjhandle dec = nullptr;
  ~TjHandles() {
    if (dec) tjDestroy(dec);
  }
};
thread_local TjHandles tls_handles;

tjhandle decompressor(const std::string& name) {
  if (!tls_handles.dec) tls_handles.dec = tjInitDecompress();
  if (!tls_handles.dec) throw DecodeError(name, std::string("cannot create a TurboJPEG decompressor: ") + tjGetErrorStr2(nullptr));
  return tls_handles.dec;
}

// After a failure TurboJPEG 2.1 can leave the handle mid-header (the next
// image then fails with "Unsupported marker"): drop it and start afresh.
void reset_decompressor() {
  if (tls_handles.dec) tjDestroy(tls_handles.dec);
  tls_handles.dec = nullptr;
}

// A fresh compressor per image: a TurboJPEG 2.1.5 handle reused after a
// TJFLAG_PROGRESSIVE call writes corrupt baseline files ("bad Huffman code"
// on decoding). Encoding is rare (exporter, tests).
struct Compressor {
  tjhandle h = tjInitCompress();
  ~Compressor() {
    if (h) tjDestroy(h);
  }
};

bool starts_with(const uint8_t* d, size_t n, const char* magic, size_t m) {
  return n >= m && std::memcmp(d, magic, m) == 0;
}

// A readable reason for bytes that are not a JPEG at all: files of another
// format under a .jpg name are a common data-set fault.
std::string not_jpeg_reason(const uint8_t* d, size_t n) {
  const char* kind = nullptr;
  if (starts_with(d, n, "\x89PNG", 4)) kind = "PNG";
  else if (starts_with(d, n, "GIF8", 4)) kind = "GIF";
  else if (starts_with(d, n, "BM", 2)) kind = "BMP";
  else if (starts_with(d, n, "RIFF", 4) && n >= 12 && std::memcmp(d + 8, "WEBP", 4) == 0) kind = "WebP";
  else if (starts_with(d, n, "II*\0", 4) || starts_with(d, n, "MM\0*", 4)) kind = "TIFF";
  else if (n >= 2 && d[0] == 'P' && d[1] >= '1' && d[1] <= '6') kind = "PNM (PPM/PGM/PBM)";
  std::string r = "not a JPEG file (no JPEG start-of-image marker FF D8";
  if (kind) r += std::string("; the bytes look like ") + kind + " data, which this decoder does not read";
  return r + ")";
}

void check_dimensions(int64_t w, int64_t h, const std::string& name, const JpegDecodeOptions& opt) {
  if (w <= 0 || h <= 0)
    throw DecodeError(name, str_cat("invalid image size ", w, "x", h, " (no frame header: not a complete JPEG image)"));
  if (w > 65500 || h > 65500)
    throw DecodeError(name, str_cat("declared size ", w, "x", h, " exceeds the JPEG limit of 65500 pixels a side"));
  if (w * h > opt.max_pixels)
    throw DecodeError(name, str_cat("declared size ", w, "x", h, " = ", w * h, " pixels exceeds the limit of ",
                                    opt.max_pixels, " pixels (JpegDecodeOptions::max_pixels)"));
}

}  // namespace

std::vector<uint8_t> read_file_bytes(const std::string& path, int64_t max_bytes) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) throw DecodeError(path, str_cat("cannot open: ", std::strerror(errno)));
  if (!S_ISREG(st.st_mode)) throw DecodeError(path, "not a regular file");
  if (st.st_size > max_bytes)
    throw DecodeError(path, str_cat("file of ", static_cast<int64_t>(st.st_size), " bytes exceeds the limit of ",
                                    max_bytes, " bytes"));
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw DecodeError(path, str_cat("cannot open: ", std::strerror(errno)));
  std::vector<uint8_t> out(static_cast<size_t>(st.st_size));
  size_t got = out.empty() ? 0 : std::fread(out.data(), 1, out.size(), f.get());
  if (got != out.size()) throw DecodeError(path, str_cat("read error after ", got, " of ", out.size(), " bytes"));
  return out;
}

std::pair<int64_t, int64_t> jpeg_scaled_size(int64_t width, int64_t height, int64_t min_short_side) {
  if (min_short_side <= 0) return {width, height};
  int n = 0;
  tjscalingfactor* sf = tjGetScalingFactors(&n);
  std::pair<int64_t, int64_t> best{width, height};
  double best_scale = 1.0;
  for (int i = 0; i < n; ++i) {
    double s = static_cast<double>(sf[i].num) / sf[i].denom;
    if (s >= best_scale) continue;  // never upscale; 1/1 is the fallback
    int64_t w = TJSCALED(static_cast<int>(width), sf[i]);
    int64_t h = TJSCALED(static_cast<int>(height), sf[i]);
    if (std::min(w, h) >= min_short_side) {
      best = {w, h};
      best_scale = s;
    }
  }
  return best;
}

JpegHeader read_jpeg_header(const uint8_t* data, size_t size, const std::string& name, const JpegDecodeOptions& opt) {
  if (size == 0) throw DecodeError(name, "empty file (0 bytes)");
  if (size < 2 || data[0] != 0xFF || data[1] != 0xD8) throw DecodeError(name, not_jpeg_reason(data, size));
  tjhandle h = decompressor(name);
  int w = 0, ht = 0, subsamp = 0, cs = 0;
  if (tjDecompressHeader3(h, data, static_cast<unsigned long>(size), &w, &ht, &subsamp, &cs) != 0) {
    std::string msg = tjGetErrorStr2(h);
    reset_decompressor();
    throw DecodeError(name, "corrupt or truncated JPEG header: " + msg);
  }
  try {
    check_dimensions(w, ht, name, opt);
  } catch (...) {
    reset_decompressor();  // e.g. a tables-only stream leaves the handle mid-stream
    throw;
  }
  return {w, ht, subsamp, cs};
}

void cmyk_to_rgb_pil(const uint8_t* cmyk, uint8_t* rgb, int64_t count) {
  for (int64_t i = 0; i < count; ++i) {
    const uint8_t* in = cmyk + 4 * i;
    int nk = 255 - in[3];
    for (int c = 0; c < 3; ++c) {
      int tmp = in[c] * nk + 128;  // PIL's MULDIV255: a * b / 255, rounded
      int v = nk - (((tmp >> 8) + tmp) >> 8);
      rgb[3 * i + c] = static_cast<uint8_t>(std::clamp(v, 0, 255));
    }
  }
}

Image decode_jpeg(const uint8_t* data, size_t size, const std::string& name, const JpegDecodeOptions& opt) {
  JpegHeader hd = read_jpeg_header(data, size, name, opt);
  auto [w, h] = jpeg_scaled_size(hd.width, hd.height, opt.min_short_side);
  const bool cmyk = hd.colorspace == TJCS_CMYK || hd.colorspace == TJCS_YCCK;
  const int flags = TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS;  // warnings are errors; no scan floods
  tjhandle tj = decompressor(name);
  Image img;
  img.w = w;
  img.h = h;
  img.rgb.resize(static_cast<size_t>(w * h * 3));
  std::vector<uint8_t> raw;
  uint8_t* dst = img.rgb.data();
  if (cmyk) {
    raw.resize(static_cast<size_t>(w * h * 4));
    dst = raw.data();
  }
  if (tjDecompress2(tj, data, static_cast<unsigned long>(size), dst, static_cast<int>(w), 0, static_cast<int>(h),
                    cmyk ? TJPF_CMYK : TJPF_RGB, flags) != 0) {
    bool warning = tjGetErrorCode(tj) == TJERR_WARNING;
    std::string msg = tjGetErrorStr2(tj);
    reset_decompressor();
    throw DecodeError(name, (warning ? "damaged JPEG data (libjpeg warning treated as an error): "
                                     : "corrupt JPEG data: ") + msg);
  }
  if (cmyk) {
    // Adobe (and PIL, which always assumes Adobe polarity) store CMYK inverted.
    for (auto& v : raw) v = static_cast<uint8_t>(255 - v);
    cmyk_to_rgb_pil(raw.data(), img.rgb.data(), w * h);
  }
  return img;
}

Image decode_jpeg(const std::vector<uint8_t>& bytes, const std::string& name, const JpegDecodeOptions& opt) {
  return decode_jpeg(bytes.data(), bytes.size(), name, opt);
}

Image decode_jpeg_file(const std::string& path, const JpegDecodeOptions& opt) {
  std::vector<uint8_t> bytes = read_file_bytes(path, opt.max_file_bytes);
  return decode_jpeg(bytes.data(), bytes.size(), path, opt);
}

std::vector<uint8_t> encode_jpeg(const uint8_t* pixels, int64_t width, int64_t height, int channels,
                                 const JpegEncodeOptions& opt) {
  OFA_CHECK(channels == 1 || channels == 3 || channels == 4, "encode_jpeg: channels must be 1, 3 or 4, got ", channels);
  OFA_CHECK(width > 0 && height > 0 && width <= 65500 && height <= 65500, "encode_jpeg: invalid size ", width, "x",
            height, " (each side must be in [1, 65500])");
  OFA_CHECK(opt.quality >= 1 && opt.quality <= 100, "encode_jpeg: quality must be in [1, 100], got ", opt.quality);
  OFA_CHECK(opt.subsampling >= 0 && opt.subsampling < TJ_NUMSAMP, "encode_jpeg: unknown subsampling ", opt.subsampling);
  const int pf = channels == 1 ? TJPF_GRAY : channels == 3 ? TJPF_RGB : TJPF_CMYK;
  const int samp = channels == 1 ? TJSAMP_GRAY : opt.subsampling;
  Compressor c;
  OFA_CHECK(c.h != nullptr, "encode_jpeg: cannot create a TurboJPEG compressor: ", tjGetErrorStr2(nullptr));
  tjhandle tj = c.h;
  unsigned char* buf = nullptr;
  unsigned long len = 0;
  int rc = tjCompress2(tj, pixels, static_cast<int>(width), 0, static_cast<int>(height), pf, &buf, &len, samp,
                       opt.quality, opt.progressive ? TJFLAG_PROGRESSIVE : 0);
  if (rc != 0) {
    std::string msg = tjGetErrorStr2(tj);
    if (buf) tjFree(buf);
    throw Error("encode_jpeg: TurboJPEG failed: " + msg);
  }
  std::vector<uint8_t> out(buf, buf + len);
  tjFree(buf);
  return out;
}

}  // namespace ofa::data
