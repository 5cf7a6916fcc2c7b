#!/usr/bin/env python3
"""Writes tests/data/transforms_golden.txt: outputs of the OFA reference's image
pipeline (torchvision 0.14 transforms on PIL 9.4 images) on small fixed images.
Run with Debian's python (torch 1.13, torchvision 0.14, Pillow 9.4):
    /usr/bin/python3 tests/data/make_transforms_golden.py

Line formats (hex = the uint8 HWC bytes; fnv = FNV-1a 64 of the bytes, used
where storing the bytes would make the file large):
  image NAME H W hex                 stored random source images
  synth NAME H W fnv                 the formula-made images (synth() below)
  resize SRC OUT_H OUT_W X0 Y0 X1 Y1 fnv    Image.resize((w, h), BILINEAR, box)
  resize_hex SRC OUT_H OUT_W hex     the same, bytes kept (whole-image box)
  resized_crop SRC TOP LEFT H W OUT fnv     F.resized_crop(..., (OUT, OUT), BILINEAR)
  flip SRC fnv                       F.hflip
  brightness|contrast|saturation|hue SRC FACTOR fnv   F.adjust_* (PIL ImageEnhance)
  gray SRC fnv                       convert('L').convert('RGB')
  eval SRC R fnv_uint8 fnv_float32   Resize(ceil(R/0.875)) + CenterCrop(R) [+ ToTensor + Normalize]
  eval_floats SRC R v...             the float32 tensor [3,R,R] (%.9g: exact for float32), small R only
  resize_short SRC SIZE H W          torchvision Resize(SIZE) output size
  all_colors_l fnv                   every RGB colour (4096x4096 image, index r<<16|g<<8|b) to 'L'
  all_colors_hue FACTOR fnv          F.adjust_hue over every colour
  blend_pairs ALPHA fnv              Image.blend over every (a, b) byte pair (256x256 'L' images)
"""
import math
import os

import numpy as np
import torch
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image


def fnv(b):
    h = 0xCBF29CE484222325
    for x in bytes(b):
        h ^= x
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def fnv_np(a):
    # Vectorised FNV-1a is sequential; chunk through Python bytes (sizes are small).
    return fnv(np.ascontiguousarray(a).tobytes())


def synth(h, w):
    # A deterministic image the C++ test rebuilds from the same formula.
    y, x = np.mgrid[0:h, 0:w]
    chans = [(x * 7 + y * 13 + (x * y) % 17) % 256, (x * x + 3 * y) % 256, ((x ^ y) * 5 + 11) % 256]
    return np.stack(chans, -1).astype(np.uint8)


def arr(img):
    return np.asarray(img, dtype=np.uint8)


rs = np.random.RandomState(1234)
images = {
    "a": rs.randint(0, 256, size=(37, 53, 3)).astype(np.uint8),
    "b": rs.randint(0, 256, size=(64, 48, 3)).astype(np.uint8),
}
synth_images = {"s": synth(157, 211), "t": synth(23, 300)}
all_images = dict(images, **synth_images)

lines = []
for name, a in synth_images.items():
    lines.append("synth %s %d %d %s" % (name, a.shape[0], a.shape[1], fnv_np(a)))
for name, a in images.items():
    lines.append("image %s %d %d %s" % (name, a.shape[0], a.shape[1], a.tobytes().hex()))

# PIL resize: up- and downscaling, odd sizes, boxes (integer and fractional).
sizes = [(1, 1), (1, 7), (5, 3), (13, 17), (32, 32), (36, 52), (37, 53), (38, 54), (64, 48), (50, 80), (100, 9),
         (128, 128), (7, 300), (147, 170), (10, 53), (37, 20), (5, 48), (64, 11), (9, 211), (157, 50), (23, 64),
         (11, 300)]
for name, a in all_images.items():
    im = Image.fromarray(a)
    H, W = a.shape[:2]
    boxes = [(0, 0, W, H), (1, 2, W - 3, H - 1), (0.5, 1.25, W - 0.75, H - 2.5), (W // 3, H // 4, W // 3 + 5, H // 4 + 4),
             (0, 0, W, 1), (W - 1, 0, W, H)]
    for (oh, ow) in sizes:
        for box in boxes:
            out = arr(im.resize((ow, oh), Image.BILINEAR, box=box))
            lines.append("resize %s %d %d %r %r %r %r %s" % (name, oh, ow, float(box[0]), float(box[1]),
                                                         float(box[2]), float(box[3]), fnv_np(out)))
for name, (oh, ow) in [("a", (16, 24)), ("b", (100, 70)), ("a", (37, 40))]:
    out = arr(Image.fromarray(images[name]).resize((ow, oh), Image.BILINEAR))
    lines.append("resize_hex %s %d %d %s" % (name, oh, ow, out.tobytes().hex()))

# F.resized_crop with fixed boxes (crop, then resize).
for name, a in all_images.items():
    im = Image.fromarray(a)
    H, W = a.shape[:2]
    for (top, left, h, w, out) in [(0, 0, H, W, 32), (3, 5, H - 7, W - 9, 24), (1, 2, 10, 6, 33), (H // 2, W // 2, H - H // 2, W - W // 2, 16),
                                   (2, 1, 5, 5, 5), (0, 0, 1, 1, 4)]:
        r = arr(F.resized_crop(im, top, left, h, w, [out, out], T.InterpolationMode.BILINEAR))
        lines.append("resized_crop %s %d %d %d %d %d %s" % (name, top, left, h, w, out, fnv_np(r)))

for name, a in all_images.items():
    im = Image.fromarray(a)
    lines.append("flip %s %s" % (name, fnv_np(arr(F.hflip(im)))))
    lines.append("gray %s %s" % (name, fnv_np(arr(im.convert("L").convert("RGB")))))
    for f in [0.0, 0.5, 1 - 32 / 255, 0.9, 1.0, 1 + 32 / 255, 1.4, 2.5]:
        lines.append("brightness %s %r %s" % (name, f, fnv_np(arr(F.adjust_brightness(im, f)))))
    for f in [0.0, 0.5, 0.6, 0.77, 1.0, 1.3, 1.5, 3.0]:
        lines.append("saturation %s %r %s" % (name, f, fnv_np(arr(F.adjust_saturation(im, f)))))
    for f in [0.0, 0.6, 0.95, 1.0, 1.4, 2.0]:
        lines.append("contrast %s %r %s" % (name, f, fnv_np(arr(F.adjust_contrast(im, f)))))
    for f in [-0.5, -0.1, -0.05, -0.003, 0.0, 0.02, 0.1, 0.5]:
        lines.append("hue %s %r %s" % (name, f, fnv_np(arr(F.adjust_hue(im, f)))))

# Evaluation transform.
norm = T.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
for name, a in all_images.items():
    im = Image.fromarray(a)
    for R in [8, 32, 40, 128, 160]:
        pre = T.Compose([T.Resize(int(math.ceil(R / 0.875))), T.CenterCrop(R)])(im)
        t = norm(T.ToTensor()(pre))
        assert t.dtype == torch.float32 and tuple(t.shape) == (3, R, R)
        lines.append("eval %s %d %s %s" % (name, R, fnv_np(arr(pre)), fnv_np(t.numpy())))
        if R == 8 or (R == 32 and name == "a"):
            lines.append("eval_floats %s %d %s" % (name, R, " ".join("%.9g" % v for v in t.numpy().ravel())))
for name, a in all_images.items():
    for size in [1, 10, 37, 46, 147, 300]:
        out = F.resize(Image.fromarray(a), size, T.InterpolationMode.BILINEAR)
        lines.append("resize_short %s %d %d %d" % (name, size, out.size[1], out.size[0]))

# Exhaustive pixel maths.
idx = np.arange(1 << 24, dtype=np.uint32)
allc = np.stack([(idx >> 16) & 255, (idx >> 8) & 255, idx & 255], -1).astype(np.uint8).reshape(4096, 4096, 3)
allim = Image.fromarray(allc)
lines.append("all_colors_l %s" % fnv_np(arr(allim.convert("L"))))
for f in [-0.5, -0.1, 0.0, 0.07, 0.5]:
    lines.append("all_colors_hue %r %s" % (f, fnv_np(arr(F.adjust_hue(allim, f)))))
pa = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 256, 1)
pb = np.repeat(np.arange(256, dtype=np.uint8)[None, :], 256, 0)
for alpha in [0.0, 0.1, 0.3, 1 / 3, 0.5, 0.7, 0.999, 1.0, 1.1, 1.5, 2.0, 3.7, -0.5]:
    out = arr(Image.blend(Image.fromarray(pa, "L"), Image.fromarray(pb, "L"), alpha))
    lines.append("blend_pairs %r %s" % (alpha, fnv_np(out)))

path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "transforms_golden.txt")
with open(path, "w") as f:
    f.write("# made by make_transforms_golden.py (torchvision %s, Pillow %s)\n" % (
        __import__("torchvision").__version__, Image.__version__))
    f.write("\n".join(lines) + "\n")
print("wrote", path, len(lines), "lines")
