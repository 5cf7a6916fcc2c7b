"""What the PyTorch competitor scripts of ofa_bench share: the request on
stdin, the one-line JSON error protocol (exit status 3), --help, and the
torch import."""
import json
import sys
import time


def fail(msg):
    """The error answer: {"error": msg} on stdout, exit status 3."""
    print(json.dumps({"error": msg}))
    sys.exit(3)


def read_request(doc, name, what):
    """--help prints `doc` and exits 0; else the JSON request on stdin."""
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        sys.stderr.write(doc)
        sys.exit(0)
    try:
        return json.load(sys.stdin)
    except ValueError as e:
        fail("%s: stdin is not the JSON %s: %s" % (name, what, e))


def import_torch():
    """(torch, torch.nn.functional), or the error answer naming the interpreter."""
    try:
        import torch
        import torch.nn.functional as F
    except Exception as e:  # ImportError, or a broken install raising anything
        fail("torch is not importable by %s (%s: %s)" % (sys.executable, type(e).__name__, e))
    return torch, F


def time_runs(torch, device, warmup, repeat, before, fn):
    """Same protocol as ofa_bench: untimed warmup, then each run timed alone
    (milliseconds); on a CUDA device (torch and device given), `before` and a
    synchronisation, then events around fn."""
    for _ in range(warmup):
        before()
        fn()
    samples = []
    if device is not None and device.type == "cuda":
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize(device)
        for _ in range(repeat):
            before()
            torch.cuda.synchronize(device)
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            samples.append(start.elapsed_time(stop))
        return samples
    for _ in range(repeat):
        before()
        t0 = time.perf_counter()
        fn()
        t1 = time.perf_counter()
        samples.append((t1 - t0) * 1e3)
    return samples
