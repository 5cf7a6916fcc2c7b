#!/usr/bin/env python3
"""Hand-made malformed safetensors files (every one must be refused cleanly).

Run from anywhere: python3 tests/data/safetensors_bad/make_bad_files.py
Files found by fuzzing (scripts/fuzz_safetensors.sh) are kept here too, as
fuzz-*.safetensors; this script does not touch them.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def st(header, data=b"", declared=None):
    if isinstance(header, str):
        header = header.encode()
    n = len(header) if declared is None else declared
    return struct.pack("<Q", n) + header + data


W = '"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}'
FILES = {
    "empty": b"",
    "short_length": b"\x05\x00\x00",
    "length_past_end": st("{}", declared=1000),
    "length_huge": st("{}", declared=2**63 + 5),
    "not_json": st("{this is not json}"),
    "nul_in_header": st("{\"w\"\x00:1}"),
    "nul_after_object": st("{}\x00 anything here went unread before NUL bytes were refused"),
    "top_level_array": st("[]"),
    "invalid_utf8": st(b'{"\xed\xa0\x80":1}'),  # a UTF-8-encoded surrogate
    "deep_nesting": st("{\"w\":{\"shape\":" + "[" * 10000 + "]" * 10000 + "}}"),
    "dtype_number": st('{"w":{"dtype":1,"shape":[2],"data_offsets":[0,8]}}', b"\0" * 8),
    "dtype_unknown": st('{"w":{"dtype":"Q8","shape":[2],"data_offsets":[0,8]}}', b"\0" * 8),
    "shape_negative": st('{"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,8]}}', b"\0" * 8),
    "shape_overflow": st('{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}}', b"\0" * 8),
    "size_mismatch": st('{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', b"\0" * 8),
    "overlap": st('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
                  '"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}', b"\0" * 12),
    "hole": st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
               '"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}', b"\0" * 12),
    "offsets_reversed": st('{"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}', b"\0" * 8),
    "offsets_past_end": st("{" + W + "}", b"\0" * 4),
    "trailing_bytes": st("{" + W + "}", b"\0" * 12),
    "duplicate_tensor": st("{" + W + "," + W + "}", b"\0" * 8),
    "duplicate_metadata_key": st('{"__metadata__":{"a":"1","a":"1"}}'),
    "metadata_not_string": st('{"__metadata__":{"a":true}}'),
    "unknown_field": st('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":0}}', b"\0" * 8),
}

for name, data in FILES.items():
    with open(os.path.join(HERE, name + ".safetensors"), "wb") as f:
        f.write(data)
print(len(FILES), "files written to", HERE)
