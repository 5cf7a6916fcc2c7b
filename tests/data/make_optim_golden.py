#!/usr/bin/python3
"""Writes optim_golden.txt: torch.optim.SGD / Adam trajectories in float64.

Run with Debian's torch: /usr/bin/python3 tests/data/make_optim_golden.py
Plain text, one record per line, whitespace separated (floats as repr, which
round-trips exactly):
  config <name> <sgd|adam>
  group <config> <index> <lr> <momentum> <dampening> <nesterov 0|1> <weight_decay> <beta1> <beta2> <eps>
  param <config> <group> <name> <ndim> <dims...> <values...>     initial values
  lr <config> <step> <lr>                                       set on all groups before that step
  grad <config> <step> <name> <n> <values...>                   n = 0: no gradient that step
  after <config> <step> <name> <n> <values...>                  parameter after the step
"""
import os

import torch

STEPS = 4
HERE = os.path.dirname(os.path.abspath(__file__))

# Small tensors with names that exercise the no-decay split ("bn", "bias").
SHAPES = {"conv.weight": (2, 3), "fc.weight": (4,), "bn.weight": (3,), "fc.bias": (2,)}

CONFIGS = [
    # The OFA recipe: nesterov momentum, weight decay off for bn and bias.
    ("sgd_nesterov", "sgd", [
        dict(names=["conv.weight", "fc.weight"], lr=0.1, momentum=0.9, dampening=0.0, nesterov=True, weight_decay=3e-5),
        dict(names=["bn.weight", "fc.bias"], lr=0.1, momentum=0.9, dampening=0.0, nesterov=True, weight_decay=0.0),
    ]),
    # Dampened heavy-ball momentum next to plain SGD (momentum 0).
    ("sgd_dampening", "sgd", [
        dict(names=["conv.weight", "fc.bias"], lr=0.1, momentum=0.9, dampening=0.1, nesterov=False, weight_decay=1e-2),
        dict(names=["fc.weight", "bn.weight"], lr=0.1, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=1e-2),
    ]),
    ("adam", "adam", [
        dict(names=["conv.weight", "fc.weight"], lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2),
        dict(names=["bn.weight", "fc.bias"], lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
    ]),
]
LR_CHANGE = (3, 0.05)  # a schedule's set_lr before step 3 (scaled for Adam)
NO_GRAD = (2, "fc.bias")  # no gradient for this parameter at this step: skipped


def fmt(t):
    return " ".join(repr(float(v)) for v in t.reshape(-1).tolist())


def main():
    lines = ["# torch %s; see make_optim_golden.py for the format" % torch.__version__]
    for ci, (cname, kind, groups) in enumerate(CONFIGS):
        gen = torch.Generator().manual_seed(1234 + ci)
        params = {n: torch.randn(s, generator=gen, dtype=torch.float64).requires_grad_() for n, s in SHAPES.items()}
        lines.append("config %s %s" % (cname, kind))
        torch_groups = []
        for gi, g in enumerate(groups):
            if kind == "sgd":
                lines.append("group %s %d %r %r %r %d %r 0.9 0.999 1e-08" % (
                    cname, gi, g["lr"], g["momentum"], g["dampening"], int(g["nesterov"]), g["weight_decay"]))
                torch_groups.append(dict(params=[params[n] for n in g["names"]], lr=g["lr"], momentum=g["momentum"],
                                         dampening=g["dampening"], nesterov=g["nesterov"],
                                         weight_decay=g["weight_decay"]))
            else:
                lines.append("group %s %d %r 0 0 0 %r %r %r %r" % (
                    cname, gi, g["lr"], g["weight_decay"], g["betas"][0], g["betas"][1], g["eps"]))
                torch_groups.append(dict(params=[params[n] for n in g["names"]], lr=g["lr"], betas=g["betas"],
                                         eps=g["eps"], weight_decay=g["weight_decay"]))
            for n in g["names"]:
                p = params[n]
                lines.append("param %s %d %s %d %s %s" % (cname, gi, n, p.dim(), " ".join(map(str, p.shape)),
                                                          fmt(p.detach())))
        if kind == "sgd":
            opt = torch.optim.SGD(torch_groups, lr=0.1, foreach=False)
        else:
            opt = torch.optim.Adam(torch_groups, foreach=False)
        for step in range(1, STEPS + 1):
            if step == LR_CHANGE[0]:
                new_lr = LR_CHANGE[1] if kind == "sgd" else LR_CHANGE[1] / 10
                for g in opt.param_groups:
                    g["lr"] = new_lr
                lines.append("lr %s %d %r" % (cname, step, new_lr))
            for n, p in params.items():
                if (step, n) == NO_GRAD:
                    p.grad = None
                    lines.append("grad %s %d %s 0" % (cname, step, n))
                else:
                    p.grad = torch.randn(p.shape, generator=gen, dtype=torch.float64)
                    lines.append("grad %s %d %s %d %s" % (cname, step, n, p.numel(), fmt(p.grad)))
            opt.step()
            for n, p in params.items():
                lines.append("after %s %d %s %d %s" % (cname, step, n, p.numel(), fmt(p.detach())))
    with open(os.path.join(HERE, "optim_golden.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
