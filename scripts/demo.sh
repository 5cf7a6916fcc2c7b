#!/usr/bin/env bash
# The README's main job: installs dependencies, builds, and runs the smoke
# training on Fashion-MNIST (the full OFA training replaces it when
# ofa_train lands). Extra arguments go to ofa_smoke (see --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
"${OFA_BUILD_DIR:-build}/ofa_smoke" "$@"
