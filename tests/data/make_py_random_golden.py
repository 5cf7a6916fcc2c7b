#!/usr/bin/env python3
"""Writes tests/data/py_random_golden.txt: draws of Python's random module for
the seeds the OFA reference uses (small ints, and the long ints it builds as
int("%d%.3d%.3d" % (step, j, 0)) and int("%d%.3d" % (batch, epoch))).
Any Python 3 works:  python3 tests/data/make_py_random_golden.py"""
import os
import random
import sys

seeds = [0, 1, 42, 2**32 - 1, 2**32, 123456789012, 10000000, 7001000, 12345003000, 2**63 - 1]
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "py_random_golden.txt")
with open(out, "w") as f:
    f.write("# python %s: seed, then lines of draws\n" % sys.version.split()[0])
    for s in seeds:
        random.seed(s)
        u32 = [random.getrandbits(32) for _ in range(3)]
        r = [repr(random.random()) for _ in range(3)]
        bits = [random.getrandbits(k) for k in (1, 7, 33, 64)]
        below = [random.randrange(n) for n in (1, 3, 5, 100, 2**40 + 3)]
        ch = [random.choice([3, 5, 7]) for _ in range(10)]
        ri = [random.randint(128, 224) for _ in range(3)]
        sh = list(range(10))
        random.shuffle(sh)
        f.write("seed %d\n" % s)
        f.write("u32 %s\n" % " ".join(map(str, u32)))
        f.write("random %s\n" % " ".join(r))
        f.write("bits %s\n" % " ".join(map(str, bits)))
        f.write("below %s\n" % " ".join(map(str, below)))
        f.write("choice %s\n" % " ".join(map(str, ch)))
        f.write("randint %s\n" % " ".join(map(str, ri)))
        f.write("shuffle %s\n" % " ".join(map(str, sh)))
print("wrote", out)
