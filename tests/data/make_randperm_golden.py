# Golden torch.randperm permutations for tests/cpu/test_torch_random.cpp.
# Run with PyTorch 1.13 (CPU): /usr/bin/python3 make_randperm_golden.py > randperm_golden.txt
# Each case line: "case <n> <seed> <calls>" where <calls> randperm draws are made
# in turn from one generator seeded with <seed>; the checked draw is the last one.
# Then "head <k> v..." (the first k values; all of them when n <= 1000),
# "tail <k> v..." (the last k values) and "checksum <sum over i of (i + 1) * r[i]>".
# Raw draws: "randint31 <seed> v..." = torch.randint(0, 2**31, (8,)) (random() % 2^31) and
# "randint62 <seed> v..." = torch.randint(0, 2**62, (8,)) (random64() % 2^62: ranges
# of 2^32 and more use random64(), two 32-bit draws, the first in the high word).
import torch

cases = [(0, 1, [0]), (1, 0, [1]), (2, 0, [2]), (2, 2147483647, [2]), (10, 2147483647, [10]), (10, 1, [10]),
         (1000, 2147483647, [1000]), (1000, 937162211, [1000]), (60000, 2147483647, [60000]), (60000, 0, [60000]),
         (1000, 2147483647, [10, 700, 1000]), (1281167, 2147483647, [1281167])]
print("# torch", torch.__version__)
for n, seed, calls in cases:
    g = torch.Generator()
    g.manual_seed(seed)
    for m in calls:
        r = torch.randperm(m, generator=g).tolist()
    k = n if n <= 1000 else 64
    print("case", n, seed, " ".join(str(c) for c in calls))
    print("head", k, " ".join(str(v) for v in r[:k]))
    print("tail", min(k, 32), " ".join(str(v) for v in r[n - min(k, 32):]))
    print("checksum", sum((i + 1) * v for i, v in enumerate(r)))
for seed in [0, 2147483647]:
    for bits in [31, 62]:
        g = torch.Generator()
        g.manual_seed(seed)
        print("randint%d" % bits, seed, " ".join(str(int(v)) for v in torch.randint(0, 2**bits, (8,), generator=g)))
