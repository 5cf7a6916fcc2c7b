#!/usr/bin/env bash
# Compiles the given kernels/cuda/*.cu files with nvcc for sm_90 alone (no
# link, no CMake): a quick check that a kernel source still builds for the
# GPU while its emulated tests are being written.
#   bash scripts/nvcc_check.sh kernels/cuda/elementwise.cu [...]
set -euo pipefail
cd "$(dirname "$0")/.."
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0
for f in "$@"; do
  if "$NVCC" -DOFA_WITH_CUDA=1 -I. -isystem=/usr/local/cuda/include -O3 -std=c++17 \
       --generate-code=arch=compute_90,code=sm_90 -Xcompiler=-Wall,-Wno-unused-parameter,-Wno-unknown-pragmas \
       -x cu -c "$f" -o "$out/$(basename "$f").o"; then
    echo "nvcc_check: $f OK"
  else
    echo "nvcc_check: $f FAILED"; status=1
  fi
done
exit $status
