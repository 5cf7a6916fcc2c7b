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


def setup_device(torch, name):
    """(torch.device, its description, the backend's) for the request's
    "device" ("cpu", "cuda:N"), or the error answer. On a GPU: cudnn.benchmark
    (the reference's choice) and no TF32 (float32 as the engine computes)."""
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            fail("torch %s sees no CUDA device (torch.cuda.is_available() is False; built for CUDA %s)"
                 % (torch.__version__, torch.version.cuda))
        if device.index is not None and device.index >= torch.cuda.device_count():
            fail("%s: torch sees %d CUDA devices" % (device, torch.cuda.device_count()))
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        return (device, torch.cuda.get_device_name(device),
                "cuDNN %s, cudnn.benchmark" % torch.backends.cudnn.version())
    return (device, "CPU",
            "native CPU kernels, MKL-DNN %s" % ("on" if torch.backends.mkldnn.is_available() else "off"))


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
