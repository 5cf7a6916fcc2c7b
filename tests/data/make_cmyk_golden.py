# JPEG files written by PIL and PIL's own decoding of them, for
# tests/cpu/test_jpeg.cpp: our TurboJPEG decoder must give PIL's RGB (what
# torchvision's ImageFolder loader returns: Image.open(f).convert("RGB")).
# Run with PIL 9.4: cd tests/data && /usr/bin/python3 make_cmyk_golden.py
# Writes pil_<name>.jpg and pil_<name>.rgb.txt ("<height> <width>" then the RGB
# bytes in HWC order, 3 * width numbers a line) for each case.
import PIL
from PIL import Image

W, H = 23, 17  # odd sizes: partial MCUs and edge upsampling


def pattern(mode):
    im = Image.new(mode, (W, H))
    px = im.load()
    for y in range(H):
        for x in range(W):
            if mode == "CMYK":
                px[x, y] = ((x * 11) % 256, (y * 15) % 256, ((x + y) * 7) % 256, ((x * y) * 3) % 200)
            elif mode == "RGB":
                px[x, y] = ((x * 11) % 256, (y * 15) % 256, ((x ^ y) * 9) % 256)
            else:
                px[x, y] = (x * 11 + y * 5) % 256
    return im


cases = {
    "cmyk_q95": (pattern("CMYK"), dict(quality=95)),
    "rgb_420_q90": (pattern("RGB"), dict(quality=90)),  # PIL's default 4:2:0 subsampling
    "rgb_progressive_q85": (pattern("RGB"), dict(quality=85, progressive=True)),
    "rgb_422_q75": (pattern("RGB"), dict(quality=75, subsampling=1)),  # h2v1 upsampling
    "rgb_444_q100": (pattern("RGB"), dict(quality=100, subsampling=0)),
    "gray_q90": (pattern("L"), dict(quality=90)),
}
for name, (im, kw) in cases.items():
    path = "pil_%s.jpg" % name
    im.save(path, "JPEG", **kw)
    rgb = Image.open(path).convert("RGB")
    data = list(rgb.getdata())
    with open("pil_%s.rgb.txt" % name, "w") as f:
        f.write("# PIL %s: Image.open(%s).convert('RGB')\n" % (PIL.__version__, path))
        f.write("%d %d\n" % (H, W))
        for y in range(H):
            f.write(" ".join("%d %d %d" % data[y * W + x] for x in range(W)) + "\n")
