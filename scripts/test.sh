#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (ctest), then the sanitizer runs:
#   build/       the default build (CUDA when nvcc is found: its GPU tests skip, visibly, without a
#                GPU), every test;
#   build-asan/  the CPU-only build (-DSLIDEGRADE_CUDA=OFF) with AddressSanitizer (leaks included)
#                and UndefinedBehaviorSanitizer, every ctest test;
#   build-tsan/  ThreadSanitizer over the slide pipeline's tests (sg_data_tests: the loader's worker
#                threads, the shared slide cache, the tile cache).
# SG_SANITIZERS=0 leaves the sanitizer runs out (a quick local check).
set -euo pipefail
cd "$(dirname "$0")/.."

SG_PYTHON_PACKAGES=1 BUILD_DIR=build scripts/setup.sh
# Once in one process (catches state one test leaves for the next; OpenMP on every core), then
# under ctest, one process per test, as many at once as there are cores: one OpenMP thread each,
# because more threads than cores make every OpenMP barrier wait for a descheduled thread (a
# finite-difference test of thousands of small ops then runs 100 times slower).
build/sg_tests --gtest_brief=1
OMP_NUM_THREADS=1 ctest --test-dir build --output-on-failure -j "$(nproc)"

[ "${SG_SANITIZERS:-1}" = 1 ] || exit 0

# Any report fails the test that caused it: UBSan is built not to recover, ASan stops at the first
# error and LeakSanitizer runs at every exit.
export ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$PWD/tests/sanitizers/lsan.supp:print_suppressions=0
echo "test: CPU-only build with AddressSanitizer and UndefinedBehaviorSanitizer (build-asan)"
BUILD_DIR=build-asan CMAKE_ARGS="-DSLIDEGRADE_CUDA=OFF -DSLIDEGRADE_BENCHMARKS=OFF -DSLIDEGRADE_SANITIZE=address,undefined" \
  scripts/setup.sh
OMP_NUM_THREADS=1 ctest --test-dir build-asan --output-on-failure -j "$(nproc)"

echo "test: ThreadSanitizer over the slide pipeline's tests (build-tsan)"
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/sanitizers/tsan.supp
cmake -S . -B build-tsan -G Ninja -DSLIDEGRADE_CUDA=OFF -DSLIDEGRADE_BENCHMARKS=OFF -DSLIDEGRADE_SANITIZE=thread \
  >build-tsan.configure.log 2>&1 || { cat build-tsan.configure.log; exit 1; }
cmake --build build-tsan -j "$(nproc)" --target sg_data_tests
build-tsan/sg_data_tests --gtest_brief=1
