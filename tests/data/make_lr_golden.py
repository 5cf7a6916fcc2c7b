#!/usr/bin/env python3
"""Golden learning rates for tests/cpu/test_lr_schedule.cpp.

Restates the once-for-all reference's per-batch schedule in plain Python:
during warmup epochs the lr climbs linearly from warmup_lr to init_lr, reaching
init_lr on the last warmup batch; afterwards the epoch index is shifted back by
warmup_epochs and a half-cosine over n_epochs * n_batch steps (or a constant)
is used. init_lr = base_lr * world_size; warmup_lr is not scaled.

Output: tests/data/lr_golden.txt, one line per (config, epoch, batch):
  name base_lr warmup_epochs warmup_lr n_epochs n_batch world_size schedule epoch batch lr
with lr printed with repr() (round-trip exact double).
"""
import math
import os

CONFIGS = [
    # name, base_lr, warmup_epochs, warmup_lr, n_epochs, n_batch, world_size, schedule
    ("cos_w0_ws1", 0.1, 0, 0.0, 3, 7, 1, "cosine"),
    ("cos_w0_ws4", 2.5e-3, 0, 0.0, 4, 5, 4, "cosine"),
    ("cos_w5_ws1", 0.026, 5, 0.0, 6, 3, 1, "cosine"),
    ("cos_w5_ws4", 3e-2, 5, 1e-3, 2, 4, 4, "cosine"),
    ("none_w2_ws1", 0.05, 2, 0.01, 3, 2, 1, "none"),
]


def lr_at(base_lr, warmup_epochs, warmup_lr, n_epochs, n_batch, world_size, schedule, epoch, batch):
    top = base_lr * world_size
    if epoch < warmup_epochs:
        steps = warmup_epochs * n_batch
        done = epoch * n_batch + batch + 1
        return done / steps * (top - warmup_lr) + warmup_lr
    e = epoch - warmup_epochs
    if schedule == "cosine":
        steps = n_epochs * n_batch
        done = e * n_batch + batch
        return 0.5 * top * (1 + math.cos(math.pi * done / steps))
    return top


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lr_golden.txt")
    with open(out, "w") as f:
        for name, blr, we, wlr, ne, nb, ws, sch in CONFIGS:
            for epoch in range(we + ne):
                for batch in range(nb):
                    lr = lr_at(blr, we, wlr, ne, nb, ws, sch, epoch, batch)
                    f.write("%s %r %d %r %d %d %d %s %d %d %r\n" % (name, blr, we, wlr, ne, nb, ws, sch, epoch, batch, lr))


if __name__ == "__main__":
    main()
