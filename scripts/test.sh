#!/usr/bin/env bash
# The README's test command: installs dependencies, builds, runs the whole
# ctest suite and closes with one line: N passed, N failed, N skipped.
# Extra arguments go to ctest (e.g. -L cpu, -R Conv).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
build_dir=${OFA_BUILD_DIR:-build}
junit="$build_dir/ctest-results.xml"
rc=0
# Tests run in parallel on few cores: OpenMP threads that spin while they
# wait would starve each other (tens of times slower), so they sleep instead.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
(cd "$build_dir" && ctest -j "$(nproc)" --output-on-failure --output-junit "$(basename "$junit")" "$@") || rc=$?
if [ -f "$junit" ]; then
  # Counts from ctest's own JUnit report, so skips are never counted as passes.
  total=$(grep -o '<testcase ' "$junit" | wc -l)
  failed=$(grep '<testcase ' "$junit" | grep -c 'status="fail"' || true)
  skipped=$(grep '<testcase ' "$junit" | grep -c 'status="notrun"\|status="disabled"' || true)
  passed=$((total - failed - skipped))
  echo "ctest: ${passed} passed, ${failed} failed, ${skipped} skipped"
fi
exit $rc
