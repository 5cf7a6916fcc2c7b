# Golden sampler orders for tests/cpu/test_sampler.cpp, from torch 1.13:
#   dist N W R E SEED DROP : torch DistributedSampler over a dataset of N,
#       num_replicas=W, rank=R, shuffle=True, seed=SEED, drop_last=DROP, set_epoch(E)
#   sub N K SEED : build_sub_train_loader's subset, randperm(N, generator
#       seeded with SEED)[:K]
#   mydist W R E : the reference's MyDistributedSampler (inlined: ofa is not
#       installed) over the sub-train subset of the preceding 'sub' line
# Run: /usr/bin/python3 tests/data/make_sampler_golden.py > tests/data/sampler_golden.txt
import math

import torch
from torch.utils.data.distributed import DistributedSampler


class Sized:
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n


def dist(n, w, r, e, seed=0, drop=False):
    s = DistributedSampler(Sized(n), num_replicas=w, rank=r, shuffle=True, seed=seed, drop_last=drop)
    s.set_epoch(e)
    idx = list(s)
    print("dist %d %d %d %d %d %d :" % (n, w, r, e, seed, int(drop)), *idx)


def my_dist(sub, w, r, e):
    # ofa/utils/my_dataloader/my_distributed_sampler.py, MyDistributedSampler.__iter__
    num_samples = int(math.ceil(len(sub) * 1.0 / w))
    total = num_samples * w
    g = torch.Generator()
    g.manual_seed(e)
    indices = torch.randperm(len(sub), generator=g).tolist()
    indices += indices[: (total - len(indices))]
    indices = [sub[i] for i in indices]
    indices = indices[r:total:w]
    print("mydist %d %d %d :" % (w, r, e), *indices)


print("torch", torch.__version__)
for n, w, e, seed, drop in [(10, 1, 0, 0, False), (10, 1, 3, 0, False), (10, 3, 0, 0, False), (10, 3, 1, 0, False),
                            (7, 4, 2, 0, False), (2, 4, 0, 0, False), (1, 3, 5, 0, False), (25, 2, 5, 7, False),
                            (10, 3, 0, 0, True), (11, 4, 9, 0, True), (257, 8, 12, 0, False), (1000, 1, 0, 0, False)]:
    for r in range(w):
        dist(n, w, r, e, seed, drop)
for n, k in [(1000, 100), (50, 50), (30, 64)]:
    g = torch.Generator()
    g.manual_seed(937162211)
    sub = torch.randperm(n, generator=g).tolist()[:k]
    print("sub %d %d %d :" % (n, k, 937162211), *sub)
    for w, e in [(1, 0), (3, 0), (3, 2)]:
        for r in range(w):
            my_dist(sub, w, r, e)
