#!/usr/bin/env bash
# Everything a GPU machine must run, in one command (issue: CUDA backend).
#
#   bash scripts/gpu_check.sh prepare   # here, on the build machine (has Debian's registry)
#   bash scripts/gpu_check.sh run       # there, on the lent GPU machine (no registry, no network)
#
# `prepare` gathers what the GPU machine lacks (our Debian libraries and
# headers; not Fashion-MNIST, 30 MiB: its real-data tests skip there, visibly,
# having run in CI) into .gpu_bundle/ (ignored by git; pass
# it to the device tool with carry: [".gpu_bundle"]), unpacked with dpkg -x.
# `run` uses only that folder and the machine's own CUDA toolkit: builds
# (Release, sm_90), runs the whole ctest suite on the GPU, runs
# NCCL on a single rank (no MPI there: the single-process communicator),
# compute-sanitizer (memcheck, racecheck, synccheck) over the CUDA tests, and
# the benchmarks (ofa_bench ops, kernels and train), writes logs to $OUT (or
# build-gpu/) and ends with a table.
set -uo pipefail
cd "$(dirname "$0")/.."
bundle=$PWD/.gpu_bundle
cmd=${1:-}

packages=(
  libopenblas0-openmp libopenblas-openmp-dev libgfortran5
  libyaml-cpp0.7 libyaml-cpp-dev libturbojpeg0 libturbojpeg0-dev
  libgtest-dev nlohmann-json3-dev zlib1g-dev
)

case "$cmd" in
prepare)
  set -e
  rm -rf "$bundle"
  mkdir -p "$bundle/debs" "$bundle/root"
  (cd "$bundle/debs" && apt-get download "${packages[@]}" >/dev/null)
  for d in "$bundle"/debs/*.deb; do dpkg -x "$d" "$bundle/root"; done
  rm -rf "$bundle/debs" "$bundle/root/usr/share/doc" "$bundle/root/usr/share/man" "$bundle/root/usr/share/lintian"
  # Shared libraries only, but GoogleTest ships static libraries alone.
  find "$bundle/root" \( -name '*.a' ! -name 'libgtest*' \) -delete
  find "$bundle/root" \( -name 'liblapack*' -o -name 'libblas*' \) -delete
  grep -qx '/.gpu_bundle/' .git/info/exclude 2>/dev/null || echo '/.gpu_bundle/' >> .git/info/exclude
  size=$(du -sm "$bundle" | cut -f1)
  echo "gpu_check prepare: $bundle holds ${#packages[@]} packages, ${size} MiB (limit 60 MiB)"
  [ "$size" -le 60 ] || { echo "gpu_check prepare: bundle too large" >&2; exit 1; }
  ;;
run)
  [ -d "$bundle/root" ] || { echo "gpu_check run: $bundle missing: run 'prepare' here and carry .gpu_bundle" >&2; exit 2; }
  out=${OUT:-$PWD/build-gpu/logs}
  mkdir -p "$out"
  root=$bundle/root
  arch=x86_64-linux-gnu
  export LD_LIBRARY_PATH="$root/usr/lib/$arch/openblas-openmp:$root/usr/lib/$arch:${LD_LIBRARY_PATH:-}"
  export OFA_FASHION_MNIST_DIR=$bundle/no-fashion-mnist-here
  # The PyTorch competitors run with the machine's own python3 (its torch, on its GPU).
  export OFA_PYTHON=${OFA_PYTHON:-$(command -v python3 || echo /usr/bin/python3)}
  declare -A result
  step() {  # step NAME COMMAND...: runs, logs to $out/NAME.log, records PASS/FAIL and seconds
    local name=$1; shift
    local t0=$SECONDS
    if "$@" >"$out/$name.log" 2>&1; then result[$name]="PASS $((SECONDS - t0))s"; else result[$name]="FAIL $((SECONDS - t0))s"; fi
    echo "gpu_check: $name ${result[$name]}"
  }
  # cuDNN and NCCL may come only as PyTorch's pip wheels there (site-packages/nvidia/).
  prefix="$root/usr"
  nv=$(python3 -c 'import nvidia, os; print(os.path.dirname(list(nvidia.__path__)[0] + "/x"))' 2>/dev/null || true)
  for pkg in cudnn nccl; do
    if [ -n "$nv" ] && [ -d "$nv/$pkg" ]; then
      prefix="$prefix;$nv/$pkg"
      export LD_LIBRARY_PATH="$nv/$pkg/lib:$LD_LIBRARY_PATH"
    fi
  done
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$out/gpu.txt" 2>&1 || true
  step configure cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DOFA_CUDA=ON -DOFA_MPI=OFF \
    -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_RPATH="$root/usr/lib/$arch"
  step build cmake --build build-gpu -j "$(nproc)"
  step sm90 bash -c "cuobjdump --list-elf build-gpu/libofa_kernels.a | grep -q sm_90"
  step ctest bash -c "cd build-gpu && ctest -j 8 --output-on-failure --output-junit ctest.xml"
  cp build-gpu/ctest.xml "$out/" 2>/dev/null || true
  # NCCL on one rank without MPI (this machine has no Open MPI): the single-process
  # communicator, GradientSync's buckets and a DistributedRunManager stage on the GPU.
  # Must run, not skip: the step fails unless all its tests passed.
  nccl_single_rank() {
    local log=$out/nccl_single_rank.gtest
    ./build-gpu/tests/cuda_test_nccl_single_process 2>&1 | tee "$log"
    [ "${PIPESTATUS[0]}" -eq 0 ] && grep -q '^\[  PASSED  \] 4 tests' "$log" && ! grep -q '^\[  SKIPPED \]' "$log"
  }
  step nccl_single_rank nccl_single_rank
  # Every CPU-vs-CUDA executable (tests/cuda) under each tool, on the GPU. NCCL's own
  # kernels synchronise through memory flags racecheck and synccheck cannot follow, so
  # the NCCL test runs under memcheck only.
  sanitize() {
    local tool=$1 status=0 t
    for t in build-gpu/tests/cuda_test_*; do
      [ -x "$t" ] || continue
      [[ $t == *nccl* && $tool != memcheck ]] && continue
      echo "== $tool: $t"
      compute-sanitizer --tool "$tool" --error-exitcode 1 "$t" --gtest_brief=1 || status=1
    done
    return $status
  }
  for tool in memcheck racecheck synccheck; do
    step "sanitizer_$tool" sanitize "$tool"
  done
  step bench_ops ./build-gpu/ofa_bench ops --repeat 10 --json "$out/bench_ops.json"
  # The CUDA kernels against cuDNN at the OFA stage shapes (batch 64, res 128 and 224); bounded
  # so that the whole script stays under 8 minutes.
  step bench_kernels timeout 240 ./build-gpu/ofa_bench kernels --device cuda --repeat 10 --warmup 2 \
    --json "$out/bench_kernels.json"
  # End to end: the largest subnet training at 224 px, batch 64, against PyTorch on the same GPU.
  step bench_train timeout 180 ./build-gpu/ofa_bench train --device cuda --subnet max --image-size 224 \
    --batch-size 64 --steps 10 --warmup 3 --classes 1000 --json "$out/bench_train.json"
  echo
  echo "| step | result |"
  echo "| --- | --- |"
  for s in configure build sm90 ctest nccl_single_rank sanitizer_memcheck sanitizer_racecheck sanitizer_synccheck bench_ops bench_kernels bench_train; do
    echo "| $s | ${result[$s]:-not run} |"
  done
  if [ -f build-gpu/ctest.xml ]; then
    total=$(grep -o '<testcase ' build-gpu/ctest.xml | wc -l)
    failed=$(grep '<testcase ' build-gpu/ctest.xml | grep -c 'status="fail"')
    skipped=$(grep '<testcase ' build-gpu/ctest.xml | grep -c 'status="notrun"\|status="disabled"')
    echo "| ctest counts | $((total - failed - skipped)) passed, $failed failed, $skipped skipped |"
  fi
  echo "GPU: $(cat "$out/gpu.txt" 2>/dev/null)"
  if [ -f "$out/bench_train.log" ]; then
    echo "ofa_bench train (largest subnet, 224 px, batch 64):"
    sed -n '/^what /,$p' "$out/bench_train.log"
  fi
  [ -f "$out/bench_kernels.log" ] && sed -n "/geometric mean/,\$p" "$out/bench_kernels.log"
  for s in "${!result[@]}"; do [[ ${result[$s]} == PASS* ]] || exit 1; done
  ;;
*)
  echo "usage: bash scripts/gpu_check.sh prepare|run   (see the comment at the top)" >&2
  exit 2
  ;;
esac
