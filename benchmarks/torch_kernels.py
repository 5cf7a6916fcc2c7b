#!/usr/bin/env python3
"""PyTorch competitor of `ofa_bench kernels`.

Reads the case table as JSON on stdin (written by ofa_bench, the single source
of truth) and builds the same ops in PyTorch on the requested device
("cpu" or "cuda:N"): float32, channels_last activations, the depthwise kernel
a centre-crop view of the stored 7x7 weight and the 1x1 weights leading
slices, taken as views on every forward. On a GPU cudnn.benchmark is on, so
the convolutions run PyTorch's choice of cuDNN algorithm. Forward and
backward (from a fixed output gradient, after an untimed forward) are timed
separately, as ofa_bench does; on a GPU with CUDA events around the call and a
buffer of `flush_bytes` overwritten before each run. Prints one JSON object:

  {"torch": VERSION, "device_name": ..., "backend": ..., "threads": N,
   "cases": [{"name", "fwd_ms": [...], "bwd_ms": [...], "finite": bool}
             or {"name", "error"}]}

or {"error": "..."} (exit status 3) when torch or the device cannot be used.
Nothing else is written to stdout.
"""
import json
import math
import sys

from competitor import import_torch, read_request, setup_device, time_runs


def main():
    req = read_request(__doc__, "torch_kernels.py", "case table")
    torch, F = import_torch()

    device, name, backend = setup_device(torch, req["device"])
    torch.set_num_threads(int(req["threads"]))
    torch.manual_seed(1234)
    repeat, warmup = int(req["repeat"]), int(req["warmup"])
    flush_bytes = int(req.get("flush_bytes", 0))
    flush_buf = torch.empty(flush_bytes // 4, device=device) if flush_bytes > 0 else None

    def flush():
        if flush_buf is not None:
            flush_buf.zero_()

    out_cases = []
    for case in req["cases"]:
        try:
            out_cases.append(run_case(torch, F, device, case, repeat, warmup, flush))
        except Exception as e:  # report per case, keep going
            out_cases.append({"name": case["name"], "error": "%s: %s" % (type(e).__name__, e)})
        if device.type == "cuda":
            torch.cuda.empty_cache()
    print(json.dumps({"torch": torch.__version__, "device_name": name, "backend": backend,
                      "threads": torch.get_num_threads(), "cases": out_cases}))
    return 0


def build(torch, F, device, c):
    """Returns (leaves that receive gradients, forward closure)."""
    x = torch.randn(c["input"]).to(device).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    leaves = [x]
    kind = c["kind"]
    if kind in ("depthwise", "pointwise"):
        w = c["weight"]
        fan_in = w[1] * w[2] * w[3]
        w_full = (torch.randn(c["weight_full"]) / math.sqrt(fan_in)).to(device)
        w_full.requires_grad_(True)
        leaves.append(w_full)
        index = tuple(slice(s, s + n) for s, n in c["weight_view"])
        s, p = c["stride"], c["padding"]
        # The view is taken inside the forward, as a dynamic OFA layer does.
        if kind == "depthwise":
            groups = c["input"][1]
            return leaves, lambda: F.conv2d(x, w_full[index], None, s, p, 1, groups)
        return leaves, lambda: F.conv2d(x, w_full[index], None, s, p)
    if kind == "bn_act":
        C = c["input"][1]
        gamma = torch.ones(C, device=device, requires_grad=True)
        beta = torch.zeros(C, device=device, requires_grad=True)
        leaves += [gamma, beta]
        rm, rv = torch.zeros(C, device=device), torch.ones(C, device=device)
        act = F.hardswish if c["act"] == "hswish" else F.relu
        return leaves, lambda: act(F.batch_norm(x, rm, rv, gamma, beta, training=True, momentum=0.1, eps=1e-5))
    raise ValueError("unknown kind " + kind)


def run_case(torch, F, device, c, repeat, warmup, flush):
    leaves, fwd = build(torch, F, device, c)

    def drop_grads():
        for t in leaves:
            t.grad = None

    # Fixed upstream gradient with the output's (channels_last) layout.
    probe = fwd()
    r = torch.randn(probe.shape).to(device).contiguous(memory_format=torch.channels_last)
    probe.backward(r)
    finite = bool(torch.isfinite(probe).all()) and all(
        t.grad is not None and bool(torch.isfinite(t.grad).all()) for t in leaves)
    del probe
    drop_grads()

    fwd_ms = time_runs(torch, device, warmup, repeat, flush, fwd)
    state = {}

    def before_bwd():
        drop_grads()
        state["out"] = fwd()
        flush()

    bwd_ms = time_runs(torch, device, warmup, repeat, before_bwd, lambda: state["out"].backward(r))
    state.clear()
    return {"name": c["name"], "fwd_ms": fwd_ms, "bwd_ms": bwd_ms, "finite": finite}


if __name__ == "__main__":
    sys.exit(main())
