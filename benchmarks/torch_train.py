#!/usr/bin/env python3
"""PyTorch competitor of `ofa_bench train`.

Reads a request as JSON on stdin: {"net_config": the static subnet's config
(the reference's MobileNetV3 form), "image_size", "batch_size", "steps",
"warmup", "threads", "label_smoothing", "lr", "momentum", "weight_decay",
"seed", "device" ("cpu" or "cuda:N", default "cpu")}. Builds the network
with the reference's layer semantics (tests/data/make_ofa_golden.py, the
PyTorch model the golden tests use), and times training steps as the
reference's train loop runs them: zero_grad, forward, label-smoothed
cross-entropy, backward, SGD (Nesterov) step, on float32 NCHW tensors (the
reference's layout; on a GPU with cudnn.benchmark, no TF32), each step timed
alone as ofa_bench times its own (host clock on the CPU, events on a GPU).
Prints one JSON object on stdout: {"torch": VERSION, "device_name",
"backend", "threads": N, "step_ms": [...], "loss": [...], "max_rss_mib": X,
"peak_mib": X (the resident peak on the CPU, torch.cuda.max_memory_allocated
on a GPU)}, or {"error": "..."} with exit status 3.
"""
import json
import os
import resource
import sys

from competitor import fail, import_torch, read_request, setup_device, time_runs


def main():
    req = read_request(__doc__, "torch_train.py", "request")
    torch, F = import_torch()
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "tests", "data"))
    try:
        import make_ofa_golden as ref
    except Exception as e:
        fail("cannot import tests/data/make_ofa_golden.py (%s: %s)" % (type(e).__name__, e))
    device, name, backend = setup_device(torch, req.get("device", "cpu"))
    torch.set_num_threads(int(req["threads"]))
    torch.manual_seed(int(req.get("seed", 0)))
    net = ref.MobileNetV3.build_from_config(req["net_config"]).to(device)
    net.train()
    r, b = int(req["image_size"]), int(req["batch_size"])
    n_classes = req["net_config"]["classifier"]["out_features"]
    x = torch.randn(b, 3, r, r).to(device)
    y = torch.randint(0, n_classes, (b,)).to(device)
    decay = [p for n, p in net.named_parameters() if "bn" not in n and "bias" not in n]
    no_decay = [p for n, p in net.named_parameters() if "bn" in n or "bias" in n]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": req["weight_decay"]},
                           {"params": no_decay, "weight_decay": 0}],
                          lr=req["lr"], momentum=req["momentum"], nesterov=True)
    losses = []

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y, label_smoothing=req["label_smoothing"])
        loss.backward()
        opt.step()
        losses.append(float(loss))

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = time_runs(torch, device, int(req["warmup"]), int(req["steps"]), lambda: None, step)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    peak = torch.cuda.max_memory_allocated(device) / 2.0 ** 20 if device.type == "cuda" else rss
    print(json.dumps({"torch": torch.__version__, "device_name": name, "backend": backend,
                      "threads": torch.get_num_threads(), "step_ms": times,
                      "loss": losses[int(req["warmup"]):], "max_rss_mib": rss, "peak_mib": peak}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
