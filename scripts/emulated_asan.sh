#!/usr/bin/env bash
# The `emulated` tests built with AddressSanitizer and
# UndefinedBehaviorSanitizer (CMake option OFA_SANITIZE, a CPU-only build
# directory of its own), then run through ctest: the hand-written CUDA
# kernels' own code on the CPU emulation (kernels/cuda/emu), and the engine's
# CUDA paths on the emulated backend (CPU-vs-CUDA tests with
# OFA_CUDA_EMULATION=1). The emulator tells ASan about every fiber switch
# (__sanitizer_start/finish_switch_fiber), so fiber stacks are tracked like
# thread stacks; dynamic shared memory is an allocation of exactly the
# launch's size, so overruns of it are caught too.
#
#   scripts/emulated_asan.sh [build-dir]     (default: build-emu-asan)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/build-emu-asan}"
JOBS="${JOBS:-$(nproc)}"
echo "== configuring $OUT (OFA_SANITIZE=ON, no nvcc, no MPI)"
mkdir -p "$OUT"
cmake -S "$ROOT" -B "$OUT" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DOFA_SANITIZE=ON -DOFA_CUDA=OFF \
  -DOFA_MPI=OFF -DOFA_BUILD_BENCHMARKS=OFF > "$OUT/configure.log" 2>&1 || { cat "$OUT/configure.log"; exit 1; }
# Only the executables of the emulated label (and what they link).
mapfile -t TARGETS < <(cd "$ROOT/tests" && ls emulated/test_*.cpp emulated_engine/test_*.cpp cuda/test_*.cpp |
                         sed -E 's#^([a-z_]+)/(test_[a-z0-9_]+)\.cpp$#\1_\2#')
echo "== building ${#TARGETS[@]} test executables with ASan + UBSan"
ninja -C "$OUT" -j "$JOBS" "${TARGETS[@]}"
# allocator_may_return_null: the emulated device's malloc is posix_memalign,
# and the out-of-memory test asks it for 4 PiB expecting a null pointer.
base="detect_leaks=1:abort_on_error=1:strict_string_checks=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0
# The kernels' own tests (a few launches each) also look for uses of stack
# memory after return. The engine-level tests (cuda_emulated.*,
# emulated_engine.*: whole networks, hundreds of thousands of fibers) run
# without that check: its fake stack per fiber made them several times slower
# (EvalCuda's float64 test: not done after 300 s with it, 128 s without),
# while every other check stays on.
echo "== running the emulated label: the kernels' tests (with detect_stack_use_after_return)"
(cd "$OUT" && ASAN_OPTIONS="${ASAN_OPTIONS:-$base:detect_stack_use_after_return=1}" \
   ctest -L emulated -R '^emulated\.' -j "$JOBS" --output-on-failure) || status=1
echo "== running the emulated label: the engine on the emulated backend"
(cd "$OUT" && ASAN_OPTIONS="${ASAN_OPTIONS:-$base:detect_stack_use_after_return=0}" \
   ctest -L emulated -E '^emulated\.' -j "$JOBS" --timeout 3000 --output-on-failure) || status=1
if [ "$status" -eq 0 ]; then
  echo "emulated_asan: all emulated tests passed under ASan + UBSan"
else
  echo "emulated_asan: FAILED"
  exit 1
fi
