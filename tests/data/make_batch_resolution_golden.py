#!/usr/bin/env python3
"""Writes tests/data/batch_resolution_golden.txt: the training resolution the
OFA reference draws for each batch (MyRandomResizedCrop.sample_image_size with
SYNC_DISTRIBUTED), restated here: seed Python's random with the decimal digits
of batch_id followed by the epoch zero-padded to three digits, then pick with
random.choices (no weights) from the candidates -- every multiple of 4 between
the smallest and largest size when continuous, else the sorted size list.
Any Python 3 works:  python3 tests/data/make_batch_resolution_golden.py

Line format: res CONTINUOUS(0/1) SIZES(comma list) EPOCH then the resolutions
for batch_id = 0, 1, ..., N-1."""
import os
import random


def candidates(sizes, continuous):
    sizes = sorted(sizes)
    if not continuous:
        return sizes
    return [s for s in range(sizes[0], sizes[-1] + 1) if s % 4 == 0]


def draw(batch_id, epoch, sizes, continuous):
    random.seed(int("%d%.3d" % (batch_id, epoch)))
    return random.choices(candidates(sizes, continuous))[0]


cases = [
    (True, [128, 160, 192, 224], 0), (True, [128, 160, 192, 224], 1), (True, [128, 160, 192, 224], 37),
    (True, [128, 160, 192, 224], 1234), (False, [128, 160, 192, 224], 5), (False, [224, 128], 2),
    (False, [224], 3), (True, [224], 3), (True, [130, 141], 0), (False, [160, 224, 192], 999),
]
batches = list(range(60)) + [123, 999, 1000, 4999, 123456]
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "batch_resolution_golden.txt")
with open(out, "w") as f:
    f.write("# batch ids: %s\n" % " ".join(map(str, batches)))
    f.write("batches %s\n" % " ".join(map(str, batches)))
    for cont, sizes, epoch in cases:
        vals = [draw(b, epoch, sizes, cont) for b in batches]
        f.write("res %d %s %d %s\n" % (int(cont), ",".join(map(str, sizes)), epoch, " ".join(map(str, vals))))
print("wrote", out)
