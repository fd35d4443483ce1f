#!/usr/bin/env bash
# Installs what is missing on Debian 12, then configures and builds slidegrade.
#   BUILD_DIR   build folder (default: build)
#   CMAKE_ARGS  extra configure arguments, e.g. -DSLIDEGRADE_CUDA=OFF
#   BUILD_TARGETS  the targets to build (default: all)
# CUDA is used when nvcc is found (PATH or /usr/local/cuda/bin); the binary still runs, on the
# CPU, where there is no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(build-essential cmake ninja-build pkg-config libopenblas-openmp-dev libhdf5-dev zlib1g-dev libgtest-dev libgmock-dev
          libbenchmark-dev libcli11-dev libopenslide-dev openslide-tools libtiff-dev libopencv-imgproc-dev
          libspng-dev libonnx-dev libprotobuf-dev python3-dev python3-venv)
# The test suite also runs weights/convert_torch.py against torchvision (Debian's Python).
if [[ ${SG_PYTHON_PACKAGES:-0} == 1 ]]; then
  packages+=(python3-torch python3-torchvision python3-h5py python3-numpy)
fi
# The emulated CUDA device's test build (tests/emulated_cuda): clang with its sanitizer runtimes and
# OpenMP, and Python for the source translation.
if [[ ${CMAKE_ARGS:-} == *SLIDEGRADE_EMULATED_CUDA=ON* ]]; then
  packages+=(clang libclang-rt-14-dev libomp-dev python3)
fi
# The Pascal build (scripts/build_pascal.sh) compiles its CUDA code with clang 16.
if [[ ${CMAKE_ARGS:-} == *CMAKE_CUDA_COMPILER=clang++-16* ]]; then
  packages+=(clang-16)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v nvcc >/dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi

build_dir=${BUILD_DIR:-build}
# shellcheck disable=SC2086  # CMAKE_ARGS is a list of arguments
cmake -S . -B "$build_dir" -G Ninja ${CMAKE_ARGS:-} >"${build_dir}.configure.log" 2>&1 ||
  { cat "${build_dir}.configure.log"; exit 1; }
grep -E "slidegrade:" "${build_dir}.configure.log" || true
# shellcheck disable=SC2086  # BUILD_TARGETS is a list of targets
cmake --build "$build_dir" -j "$(nproc)" ${BUILD_TARGETS:+--target $BUILD_TARGETS}
