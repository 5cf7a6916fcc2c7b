#!/usr/bin/env python3
"""PyTorch competitor of `ofa_bench ops`.

Reads the case table as JSON on stdin (written by ofa_bench, the single source
of truth), builds the same ops in PyTorch (float32, channels_last for 4-D
activations, the same weight slices and centre crops taken as views on every
forward), times forward and forward+backward exactly as ofa_bench does, and
prints one JSON object on stdout:

  {"torch": VERSION, "threads": N, "cases": [{"name", "fwd_ms": [...],
   "fwd_bwd_ms": [...], "finite": bool} or {"name", "error"}]}

or {"error": "..."} (exit status 3) when torch cannot be used. Nothing else is
written to stdout.
"""
import json
import math
import sys

from competitor import fail, import_torch, read_request, time_runs


def main():
    req = read_request(__doc__, "torch_ops.py", "case table")
    torch, F = import_torch()

    threads = int(req["threads"])
    torch.set_num_threads(threads)
    torch.manual_seed(1234)
    repeat, warmup = int(req["repeat"]), int(req["warmup"])
    check = bool(req.get("check", False))

    out_cases = []
    for case in req["cases"]:
        try:
            out_cases.append(run_case(torch, F, case, repeat, warmup, check))
        except Exception as e:  # report per case, keep going
            out_cases.append({"name": case["name"], "error": "%s: %s" % (type(e).__name__, e)})
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "cases": out_cases}))
    return 0


def build(torch, F, c):
    """Returns (leaves that receive gradients, forward closure)."""
    x = torch.randn(c["input"])
    if len(c["input"]) == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(bool(c["input_grad"]))
    leaves = [x] if c["input_grad"] else []
    kind = c["kind"]
    w_full = bias = None
    if c["weight_full"] is not None:
        shape = c["weight_full"]
        if kind == "batch_norm":
            w_full = torch.ones(shape)
        else:
            fan_in = math.prod(shape[1:])
            w_full = torch.randn(shape) / math.sqrt(fan_in)
        w_full.requires_grad_(True)
        leaves.append(w_full)
    if c["bias"]:
        n = c["weight"][0]
        bias = torch.zeros(n) if kind == "batch_norm" else torch.randn(n) * 0.1
        bias.requires_grad_(True)
        leaves.append(bias)
    view = c["weight_view"]
    index = tuple(slice(s, s + n) for s, n in view) if view is not None else None

    def w():
        # The view is taken inside the forward, as a dynamic OFA layer does.
        return w_full[index] if index is not None else w_full

    s, p = c["stride"], c["padding"]
    if kind == "conv2d":
        fwd = lambda: F.conv2d(x, w(), bias, s, p)
    elif kind == "depthwise_conv2d":
        groups = c["input"][1]
        fwd = lambda: F.conv2d(x, w(), None, s, p, 1, groups)
    elif kind == "batch_norm":
        C = c["input"][1]
        rm, rv = torch.zeros(C), torch.ones(C)
        fwd = lambda: F.batch_norm(x, rm, rv, w_full, bias, training=True, momentum=0.1, eps=1e-5)
    elif kind == "hswish":
        fwd = lambda: F.hardswish(x)
    elif kind == "se":
        fwd = lambda: x * F.adaptive_avg_pool2d(x, 1)
    elif kind == "linear":
        fwd = lambda: F.linear(x, w(), bias)
    elif kind == "cross_entropy":
        N, K = c["input"]
        target = torch.tensor([(i * 7919) % K for i in range(N)], dtype=torch.int64)
        ls = c["label_smoothing"]
        fwd = lambda: F.cross_entropy(x, target, label_smoothing=ls)
    else:
        raise ValueError("unknown kind " + kind)
    return leaves, fwd


def run_case(torch, F, c, repeat, warmup, check):
    leaves, fwd = build(torch, F, c)

    def drop_grads():
        for t in leaves:
            t.grad = None

    probe = fwd()
    scalar = probe.dim() == 0
    # Fixed upstream gradient with the output's memory layout; backward(r) is
    # the backward of sum(out * r).
    r = None if scalar else torch.randn_like(probe)
    finite = bool(torch.isfinite(probe).all())
    del probe

    def fwd_bwd():
        out = fwd()
        if scalar:
            out.backward()
        else:
            out.backward(r)

    if check:
        drop_grads()
        fwd_bwd()
        finite = finite and all(t.grad is not None and bool(torch.isfinite(t.grad).all()) for t in leaves)

    fwd_ms = time_runs(None, None, warmup, repeat, lambda: None, fwd)
    fwd_bwd_ms = time_runs(None, None, warmup, repeat, drop_grads, fwd_bwd)
    return {"name": c["name"], "fwd_ms": fwd_ms, "fwd_bwd_ms": fwd_bwd_ms, "finite": finite}


if __name__ == "__main__":
    sys.exit(main())
