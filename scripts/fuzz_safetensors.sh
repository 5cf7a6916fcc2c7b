#!/usr/bin/env bash
# Fuzzes the safetensors reader with libFuzzer + AddressSanitizer + UBSan.
#
#   scripts/fuzz_safetensors.sh [SECONDS=60] [extra libFuzzer flags...]
#
# Not part of the CMake build. Needs clang++ with the libFuzzer runtime
# (Debian: apt-get install -y clang libclang-rt-14-dev). Builds
# build-fuzz/fuzz_safetensors from tests/fuzz/fuzz_safetensors.cpp and the
# engine + CPU kernel sources (the Tensor code needs the ops it records),
# seeds build-fuzz/corpus with small valid files and the committed bad ones,
# then fuzzes for SECONDS. Crashing inputs land in build-fuzz/artifacts/: fix
# the bug, then keep the input as tests/data/safetensors_bad/fuzz-<what>.safetensors
# (the CPU test suite checks that every file there is refused cleanly).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
out=build-fuzz
mkdir -p "$out/obj" "$out/corpus" "$out/artifacts"

CXX=${CXX:-clang++}
FLAGS=(-std=c++17 -g -O1 -fno-omit-frame-pointer -fopenmp
       -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
       -I. -isystem /usr/include/x86_64-linux-gnu/openblas-openmp)

# Objects, rebuilt when their source or any project header is newer.
newest_header=$(ls -t engine/*.h kernels/common/*.h kernels/cpu/*.h 2>/dev/null | head -1)
sources=(engine/*.cpp kernels/cpu/*.cpp tests/fuzz/fuzz_safetensors.cpp)
stale=()
for src in "${sources[@]}"; do
  obj="$out/obj/$(echo "$src" | tr / _).o"
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ "$newest_header" -nt "$obj" ]; then stale+=("$src"); fi
done
if [ ${#stale[@]} -gt 0 ]; then
  echo "compiling ${#stale[@]} sources with $CXX ${FLAGS[*]}"
  printf '%s\n' "${stale[@]}" | xargs -P "$(nproc)" -I{} sh -c \
    "$CXX ${FLAGS[*]} -c {} -o $out/obj/\$(echo {} | tr / _).o"
fi
$CXX -fsanitize=fuzzer,address,undefined -fopenmp "$out"/obj/*.o -o "$out/fuzz_safetensors" -lopenblas -lpthread

# Seeds: small valid files (no Python packages needed) and the known bad ones.
python3 - "$out/corpus" <<'PY'
import json, os, struct, sys
out = sys.argv[1]
def st(tensors, metadata=None):
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data
seeds = {
    "empty": st({}),
    "meta": st({}, {"format": "pt", "k": "v"}),
    "f32": st({"w": ("F32", [2, 3], struct.pack("<6f", *range(6)))}),
    "scalar": st({"s": ("F64", [], struct.pack("<d", 1.5))}, {"a": "b"}),
    "mixed": st({"i": ("I64", [2], struct.pack("<2q", -1, 7)), "h": ("F16", [1], b"\x00\x3c"),
                 "b": ("BF16", [1, 1], b"\x80\x3f"), "e": ("F32", [0, 4], b"")}),
}
for name, data in seeds.items():
    with open(os.path.join(out, "seed-" + name), "wb") as f:
        f.write(data)
PY
cp tests/data/safetensors_golden.safetensors "$out/corpus/seed-golden"
for f in tests/data/safetensors_bad/*.safetensors; do cp "$f" "$out/corpus/bad-$(basename "$f")"; done

"$out/fuzz_safetensors" "$out/corpus" -dict=tests/fuzz/safetensors.dict -max_total_time="$seconds" \
  -max_len=4096 -rss_limit_mb=2048 -malloc_limit_mb=512 -artifact_prefix="$out/artifacts/" -print_final_stats=1 "$@"
