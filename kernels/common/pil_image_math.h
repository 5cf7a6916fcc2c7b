// PIL's per-pixel arithmetic (Pillow 9.4 libImaging), shared by the CPU
// transforms and a future CUDA path. Every cast and float/double choice
// copies PIL's C code: changing one changes output bytes.
// A fused multiply-add rounds once where PIL rounds twice and changes bytes
// (the build's -march=x86-64-v3 has FMA): contraction is off for these
// functions; a CUDA port must use -fmad=false or the __f*_rn intrinsics.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common/philox.h"  // OFA_HD

#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__) && !defined(__CUDACC__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

namespace ofa::kernels::pil {

// Resample.c: 8-bit results from fixed-point sums with 22 fraction bits.
constexpr int kPrecisionBits = 32 - 8 - 2;

OFA_HD uint8_t clip8(int32_t ss) {
  int32_t v = ss >> kPrecisionBits;  // arithmetic shift, as PIL's table lookup
  return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

// Convert.c rgb2l: ITU-R 601-2 luma in 16.16 fixed point (L24).
OFA_HD uint8_t rgb_to_l(uint8_t r, uint8_t g, uint8_t b) {
  return static_cast<uint8_t>((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16);
}

// Blend.c ImagingBlend: in1 + alpha * (in2 - in1) in float, truncated; clipped
// only when alpha lies outside [0, 1] (extrapolation).
OFA_HD uint8_t blend(uint8_t in1, uint8_t in2, float alpha) {
  float t = static_cast<float>(static_cast<int>(in1)) +
            alpha * static_cast<float>(static_cast<int>(in2) - static_cast<int>(in1));
  if (alpha >= 0 && alpha <= 1.0) return static_cast<uint8_t>(t);
  if (t <= 0.0) return 0;
  if (t >= 255.0) return 255;
  return static_cast<uint8_t>(t);
}

OFA_HD uint8_t clip8i(int v) { return static_cast<uint8_t>(v <= 0 ? 0 : (v >= 255 ? 255 : v)); }

// Convert.c rgb2hsv_row (follows colorsys.py; mixed float/double as in PIL).
OFA_HD void rgb_to_hsv(const uint8_t* in, uint8_t* out) {
  uint8_t r = in[0], g = in[1], b = in[2];
  uint8_t maxc = r > g ? (r > b ? r : b) : (g > b ? g : b);
  uint8_t minc = r < g ? (r < b ? r : b) : (g < b ? g : b);
  uint8_t uh = 0, us = 0, uv = maxc;
  if (minc != maxc) {
    float cr = static_cast<float>(maxc - minc);
    float s = cr / static_cast<float>(maxc);
    float rc = static_cast<float>(maxc - r) / cr;
    float gc = static_cast<float>(maxc - g) / cr;
    float bc = static_cast<float>(maxc - b) / cr;
    float h;
    if (r == maxc)
      h = bc - gc;
    else if (g == maxc)
      h = static_cast<float>(2.0 + rc - bc);
    else
      h = static_cast<float>(4.0 + gc - rc);
    h = static_cast<float>(std::fmod((h / 6.0 + 1.0), 1.0));
    uh = clip8i(static_cast<int>(h * 255.0));
    us = clip8i(static_cast<int>(s * 255.0));
  }
  out[0] = uh;
  out[1] = us;
  out[2] = uv;
}

// Convert.c hsv2rgb.
OFA_HD void hsv_to_rgb(const uint8_t* in, uint8_t* out) {
  uint8_t h = in[0], s = in[1], v = in[2];
  if (s == 0) {
    out[0] = out[1] = out[2] = v;
    return;
  }
  int i = static_cast<int>(std::floor(static_cast<float>(h) * 6.0 / 255.0));
  float f = static_cast<float>(static_cast<float>(h) * 6.0 / 255.0 - static_cast<float>(i));
  float fs = static_cast<float>(static_cast<float>(s) / 255.0);
  uint8_t up = clip8i(static_cast<int>(std::round(static_cast<float>(v) * (1.0 - fs))));
  uint8_t uq = clip8i(static_cast<int>(std::round(static_cast<float>(v) * (1.0 - fs * f))));
  uint8_t ut = clip8i(static_cast<int>(std::round(static_cast<float>(v) * (1.0 - fs * (1.0 - f)))));
  switch (i % 6) {
    case 0: out[0] = v; out[1] = ut; out[2] = up; break;
    case 1: out[0] = uq; out[1] = v; out[2] = up; break;
    case 2: out[0] = up; out[1] = v; out[2] = ut; break;
    case 3: out[0] = up; out[1] = uq; out[2] = v; break;
    case 4: out[0] = ut; out[1] = up; out[2] = v; break;
    default: out[0] = v; out[1] = up; out[2] = uq; break;
  }
}

}  // namespace ofa::kernels::pil

#if defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__)
#pragma GCC pop_options
#endif
