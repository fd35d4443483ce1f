#!/usr/bin/env bash
# The Python package's tests, built from an existing build folder of the command (CI's):
#   scripts/python_tests.sh BUILD_DIR
# 1. a venv BUILD_DIR/python-venv (Debian's /usr/bin/python3) with scikit-build-core, nanobind, numpy
#    and pytest from PyPI, and onnx, onnxruntime and h5py for the ONNX export's tests (tests/python/test_onnx_export.py);
# 2. pip install --no-build-isolation --config-settings=build-dir=BUILD_DIR . : scikit-build-core
#    configures BUILD_DIR again and builds the _slidegrade target alone, so the libraries' objects
#    are reused and only the binding files compile. The folder's own SLIDEGRADE_TESTS,
#    SLIDEGRADE_BENCHMARKS and build type are passed through, so pyproject.toml's defaults for a
#    fresh `pip install .` (tests and benchmarks off) leave CI's configuration as it was;
# 3. pytest tests/python, with SG_SLIDEGRADE_BINARY naming BUILD_DIR/slidegrade (the tests compare
#    Model.predict with `slidegrade forward`).
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: scripts/python_tests.sh BUILD_DIR" >&2; exit 2; }
root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "$1" && pwd)
[ -f "$build/CMakeCache.txt" ] || { echo "python_tests: $build is not a configured build folder" >&2; exit 2; }
[ -x "$build/slidegrade" ] || { echo "python_tests: $build/slidegrade is missing: build the command first" >&2; exit 2; }

venv=$build/python-venv
[ -x "$venv/bin/python" ] || /usr/bin/python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check scikit-build-core nanobind numpy pytest \
  onnx onnxruntime h5py

cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$build/CMakeCache.txt"; }
settings=(--config-settings=build-dir="$build")
for option in SLIDEGRADE_TESTS SLIDEGRADE_BENCHMARKS; do
  value=$(cache_value "$option")
  [ -z "$value" ] || settings+=(--config-settings=cmake.define."$option"="$value")
done
build_type=$(cache_value CMAKE_BUILD_TYPE)
[ -z "$build_type" ] || settings+=(--config-settings=cmake.build-type="$build_type")

# scikit-build-core's build runs one compile per core (ninja alone would run two more).
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
start=$(date +%s)
"$venv/bin/python" -m pip install --disable-pip-version-check --no-build-isolation "${settings[@]}" "$root"
echo "python_tests: pip install took $(($(date +%s) - start)) s"

start=$(date +%s)
SG_SLIDEGRADE_BINARY=$build/slidegrade "$venv/bin/python" -m pytest -q "$root/tests/python"
echo "python_tests: pytest took $(($(date +%s) - start)) s"
