#!/usr/bin/env python3
"""Convert a PyTorch checkpoint of the OFA reference (mit-han-lab/once-for-all)
to the engine's safetensors checkpoint.

  convert_pytorch_checkpoint.py IN.pth OUT.safetensors --net ofa_mbv3_d234_e346_k357_w1.0
  convert_pytorch_checkpoint.py IN.pth OUT.safetensors --net-config net.config

IN is what torch.save wrote: {"state_dict": ...} (the reference's checkpoints)
or a bare state_dict; a DataParallel "module." prefix is removed and the
reference's older ".mobile_inverted_conv." names become ".conv.". Floating
tensors are written as float32, integer ones (num_batches_tracked) as int64.
n_classes comes from the classifier weight.

--net takes a model-zoo id, ofa_mbv3_d<depths>_e<expands>_k<kernels>_w<width>
(one digit per list entry): a supernet checkpoint, whose metadata holds the
OFAMobileNetV3 constructor arguments (format "OFAMobileNetV3"). --net-config
takes a static subnet's net config JSON (the reference's `net.config` file):
a static MobileNetV3 checkpoint (format "MobileNetV3", net_config in the
metadata). See ofa/eval_tensors.h for the metadata keys.

Needs only Python 3 and torch (the safetensors file is written by hand).
"""
import argparse
import collections
import json
import os
import re
import struct
import sys

import torch

DTYPE_NAMES = {torch.float32: "F32", torch.int64: "I64"}


def fail(msg):
    sys.stderr.write("convert_pytorch_checkpoint: error: %s\n" % msg)
    sys.exit(1)


def parse_net_id(net_id):
    """'ofa_mbv3_d234_e346_k357_w1.0' -> (depths, expands, kernels, width_mult)."""
    m = re.fullmatch(r"ofa_mbv3_d(\d+)_e(\d+)_k(\d+)_w(\d+(?:\.\d+)?)", net_id)
    if m is None:
        fail("--net '%s' is not an OFA-MobileNetV3 model-zoo id such as ofa_mbv3_d234_e346_k357_w1.0 "
             "(d: depths, e: expand ratios, k: kernel sizes, one digit each; w: width multiplier)" % net_id)
    depths = sorted(int(c) for c in m.group(1))
    expands = sorted(int(c) for c in m.group(2))
    kernels = sorted(int(c) for c in m.group(3))
    width = float(m.group(4))
    if any(k % 2 == 0 for k in kernels):
        fail("--net '%s': kernel sizes must be odd, got %s" % (net_id, kernels))
    if min(depths) < 1 or min(expands) < 1 or width <= 0:
        fail("--net '%s': depths and expand ratios must be >= 1 and the width positive" % net_id)
    return depths, expands, kernels, width


def load_state_dict(path):
    try:
        obj = torch.load(path, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - report any reader failure by file
        fail("cannot read '%s' with torch.load: %s" % (path, e))
    if isinstance(obj, dict) and "state_dict" in obj:
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        keys = list(obj.keys())[:10] if isinstance(obj, dict) else type(obj).__name__
        fail("'%s' holds neither {'state_dict': ...} nor a state_dict of tensors (top level: %s)" % (path, keys))
    return obj


def convert_keys(state):
    out = collections.OrderedDict()
    for key, t in state.items():
        k = key[len("module."):] if key.startswith("module.") else key
        k = k.replace(".mobile_inverted_conv.", ".conv.")
        if k in out:
            fail("two checkpoint keys map to '%s'" % k)
        if t.is_floating_point():
            t = t.to(torch.float32)
        elif t.dtype in (torch.int32, torch.int64, torch.int16, torch.int8, torch.uint8):
            t = t.to(torch.int64)
        else:
            fail("tensor '%s' has dtype %s, which has no safetensors mapping here" % (key, t.dtype))
        out[k] = t.detach().contiguous()
    return out


def classifier_classes(state):
    for k in ("classifier.linear.weight", "classifier.linear.linear.weight"):
        if k in state:
            if state[k].dim() != 2:
                fail("'%s' has shape %s, expected [n_classes, features]" % (k, list(state[k].shape)))
            return int(state[k].shape[0])
    fail("no classifier weight ('classifier.linear.weight') in the checkpoint; keys end with %s"
         % list(state.keys())[-3:])


def number_text(v):
    return json.dumps(int(v) if float(v).is_integer() else float(v))


def write_safetensors(path, tensors, metadata):
    """The safetensors format: u64 header length, JSON header, data buffer."""
    header = collections.OrderedDict()
    header["__metadata__"] = collections.OrderedDict((k, str(v)) for k, v in metadata.items())
    blobs, offset = [], 0
    for name, t in tensors.items():
        data = t.numpy().tobytes()  # row-major, little-endian on every platform torch runs on here
        header[name] = {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)  # the official writer pads the header to 8 bytes
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("input", help="the PyTorch checkpoint (.pth / .pth.tar / init)")
    ap.add_argument("output", help="the safetensors file to write")
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--net", help="supernet model-zoo id, e.g. ofa_mbv3_d234_e346_k357_w1.0")
    g.add_argument("--net-config", help="net config JSON of a static subnet")
    ap.add_argument("--dropout", type=float, default=0.0,
                    help="supernet dropout before the classifier (default 0, as the model zoo's ofa_net builds it)")
    ap.add_argument("--bn-momentum", type=float, default=0.1, help="supernet BN momentum (default 0.1)")
    ap.add_argument("--bn-eps", type=float, default=1e-5, help="supernet BN eps (default 1e-5)")
    a = ap.parse_args(argv)

    state = convert_keys(load_state_dict(a.input))
    n_classes = classifier_classes(state)
    if a.net is not None:
        depths, expands, kernels, width = parse_net_id(a.net)
        meta = collections.OrderedDict([
            ("format", "OFAMobileNetV3"),
            ("net", a.net),
            ("n_classes", str(n_classes)),
            ("width_mult", json.dumps(width)),
            ("ks_list", json.dumps(kernels)),
            ("expand_ratio_list", json.dumps(expands)),
            ("depth_list", json.dumps(depths)),
            ("bn_momentum", number_text(a.bn_momentum)),
            ("bn_eps", number_text(a.bn_eps)),
            ("dropout_rate", number_text(a.dropout)),
        ])
    else:
        try:
            with open(a.net_config) as f:
                cfg = json.load(f)
        except (OSError, ValueError) as e:
            fail("cannot read the net config '%s': %s" % (a.net_config, e))
        if not isinstance(cfg, dict) or cfg.get("name") != "MobileNetV3":
            fail("'%s' is not a MobileNetV3 net config (its name is %r)" % (
                a.net_config, cfg.get("name") if isinstance(cfg, dict) else None))
        want = cfg.get("classifier", {}).get("out_features")
        if want != n_classes:
            fail("the net config's classifier has %s outputs but the checkpoint's classifier weight has %d"
                 % (want, n_classes))
        meta = collections.OrderedDict([("format", "MobileNetV3"), ("net_config", json.dumps(cfg))])
    write_safetensors(a.output, state, meta)
    print("wrote %s: %d tensors, n_classes %d, format %s" % (a.output, len(state), n_classes, meta["format"]))


if __name__ == "__main__":
    main()
