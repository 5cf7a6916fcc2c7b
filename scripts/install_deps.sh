#!/usr/bin/env bash
# Installs every Debian package that the build, the tests and the demo need.
# Safe to rerun: does nothing when everything is already there.
# The CUDA toolkit is not a Debian package here: when it is installed
# (nvcc, cuDNN, cuBLAS, NCCL), the build uses it; when not, the build is CPU-only.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libopenblas-openmp-dev libyaml-cpp-dev libturbojpeg0-dev zlib1g-dev nlohmann-json3-dev
  libopenmpi-dev openmpi-bin
  googletest libgtest-dev
  dataset-fashion-mnist
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install_deps: run as root (or install sudo): missing ${missing[*]}" >&2; exit 1; }
  SUDO=sudo
fi
echo "install_deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install_deps: done"
