#!/usr/bin/env bash
# The `emulated` CUDA tests (kernel sources compiled as C++ against the CPU
# emulation in kernels/cuda/emu) built by hand with AddressSanitizer and
# UndefinedBehaviorSanitizer, then run. The emulator tells ASan about every
# fiber switch (__sanitizer_start/finish_switch_fiber), so its fiber stacks
# are tracked like thread stacks; dynamic shared memory is an allocation of
# exactly the launch's size, so overruns of it are caught too.
#
#   scripts/emulated_asan.sh [build-dir]     (default: build-emu-asan)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/build-emu-asan}"
CXX="${CXX:-g++}"
mkdir -p "$OUT"
FLAGS=(-std=gnu++17 -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
       -fopenmp -UNDEBUG -I"$ROOT")
TESTS=(test_emulator test_depthwise_emulated)
echo "== building test_emulator (ASan + UBSan)"
"$CXX" "${FLAGS[@]}" "$ROOT/tests/emulated/test_emulator.cpp" -o "$OUT/test_emulator" -lgtest -lgtest_main -pthread
echo "== building test_depthwise_emulated (ASan + UBSan; the CPU kernel is the reference)"
"$CXX" "${FLAGS[@]}" "$ROOT/tests/emulated/test_depthwise_emulated.cpp" "$ROOT/kernels/cpu/depthwise_conv.cpp" \
  -o "$OUT/test_depthwise_emulated" -lgtest -lgtest_main -pthread
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0
for t in "${TESTS[@]}"; do
  echo "== running $t"
  if ! "$OUT/$t" --gtest_brief=1; then status=1; fi
done
if [ "$status" -eq 0 ]; then echo "emulated_asan: all emulated tests passed under ASan + UBSan"; else echo "emulated_asan: FAILED"; fi
exit "$status"
