#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (ctest).
# With nvcc present this builds twice: the CUDA build (its GPU tests skip, visibly, without a
# GPU) and the CPU-only build (-DSLIDEGRADE_CUDA=OFF), which must pass every test too.
set -euo pipefail
cd "$(dirname "$0")/.."

SG_PYTHON_PACKAGES=1 BUILD_DIR=build scripts/setup.sh
# Once in one process (catches state one test leaves for the next; OpenMP on every core), then
# under ctest, one process per test, as many at once as there are cores: one OpenMP thread each,
# because more threads than cores make every OpenMP barrier wait for a descheduled thread (a
# finite-difference test of thousands of small ops then runs 100 times slower).
build/sg_tests --gtest_brief=1
OMP_NUM_THREADS=1 ctest --test-dir build --output-on-failure -j "$(nproc)"

if grep -q "SLIDEGRADE_CUDA:BOOL=ON" build/CMakeCache.txt; then
  echo "test: CPU-only build (SLIDEGRADE_CUDA=OFF)"
  BUILD_DIR=build-cpu CMAKE_ARGS="-DSLIDEGRADE_CUDA=OFF -DSLIDEGRADE_BENCHMARKS=OFF" scripts/setup.sh
  build-cpu/sg_tests --gtest_brief=1
  OMP_NUM_THREADS=1 ctest --test-dir build-cpu --output-on-failure -j "$(nproc)"
fi
