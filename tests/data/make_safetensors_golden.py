#!/usr/bin/env python3
"""Golden safetensors file written by the official library (huggingface safetensors).

tests/cpu/test_safetensors.cpp reads it back and checks that our writer, with
SafetensorsOrder::Reference, produces the same bytes for the same tensors.

Needs the `safetensors` and `numpy` packages (not in Debian's python3):
    python3 -m venv /tmp/stv && /tmp/stv/bin/pip install safetensors numpy
    /tmp/stv/bin/python tests/data/make_safetensors_golden.py
(made with safetensors 0.8.0, numpy 2.4). Output: tests/data/safetensors_golden.safetensors.

    /tmp/stv/bin/python tests/data/make_safetensors_golden.py --check FILE
reads FILE (e.g. one written by our save_safetensors) with the official reader
and prints its metadata and tensors, to check compatibility the other way.
"""
import os
import sys

import numpy as np
from safetensors import TensorSpec, deserialize, serialize_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "safetensors_golden.safetensors")


def tensors():
    # Values exactly representable in every dtype; the C++ test spells them out.
    return {
        "c": ("int64", np.array([[1, -2], [9007199254740993, -9223372036854775808]], dtype=np.int64)),
        "b": ("float64", np.array([0.1, -2.5, 1e300], dtype=np.float64)),
        "a": ("float32", (np.arange(6, dtype=np.float32) * 0.5 - 1).reshape(2, 3)),
        "e": ("float32", np.zeros((0, 3), dtype=np.float32)),
        "z": ("float32", np.array(3.25, dtype=np.float32)),
        # bfloat16 has no numpy dtype: its raw bits (1.0, -3.0) as uint16.
        "bf": ("bfloat16", np.array([0x3F80, 0xC040], dtype=np.uint16)),
        "h": ("float16", np.array([1.0, -0.5], dtype=np.float16)),
    }


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--check":
        with open(sys.argv[2], "rb") as f:
            raw = f.read()
        import json
        n = int.from_bytes(raw[:8], "little")
        print("metadata:", json.loads(raw[8:8 + n]).get("__metadata__"))
        for name, t in deserialize(raw):
            print(name, t["dtype"], t["shape"], t["data"].hex())
        return
    arrays = tensors()
    specs = {
        name: TensorSpec(dtype=dt, shape=list(a.shape), data_ptr=a.ctypes.data, data_len=a.nbytes)
        for name, (dt, a) in arrays.items()
    }
    # One metadata entry: the official writer emits metadata in hash order.
    serialize_file(specs, OUT, metadata={"format": "pt"})
    print("wrote", OUT, os.path.getsize(OUT), "bytes")


if __name__ == "__main__":
    main()
