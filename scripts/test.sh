#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite, in four builds:
#   build/      the default build (CUDA with nvcc when found): the slidegrade program, compiled and
#               linked as users build it, and the Python package built from it (tests/python);
#   build-sm61/ the Pascal build (GTX 1050 Ti, sm_61; scripts/build_pascal.sh): CUDA 12.9 from PyPI
#               wheels, compiled by clang; slidegrade, sg_tests and sg_bench_cuda compiled and linked;
#   build-emu/  clang with AddressSanitizer (leaks included) and UndefinedBehaviorSanitizer, and the
#               CUDA code on the emulated CUDA device (tests/emulated_cuda): every ctest test, one
#               process each (the CPU tests under the sanitizers; the CUDA tests on an emulated GTX
#               1050 Ti), then the CUDA tests again as a T4 and as an H100 would run them;
#   build-tsan/ ThreadSanitizer over the slide pipeline's tests (sg_data_tests: the loader's worker
#               threads, the shared slide cache, the tile cache).
# SG_SANITIZERS=0 runs the build/ tests instead of the last three (a quick local check).
set -euo pipefail
cd "$(dirname "$0")/.."

# The CUDA build as users build it (nvcc, every default architecture): compiled and linked here,
# where nothing CUDA can run; its tests would repeat the CPU tests that build-emu runs under the
# sanitizers, so only the programs are built (the demo uses this build).
SG_PYTHON_PACKAGES=1 BUILD_DIR=build BUILD_TARGETS="slidegrade" scripts/setup.sh
# The Python package from the same build folder (only its binding files compile: the libraries are
# reused), and its tests: every call, the examples, the ONNX export against ONNX Runtime (tests/python).
echo "test: the Python package (built from build/, tests/python)"
scripts/python_tests.sh build

if [ "${SG_SANITIZERS:-1}" != 1 ]; then
  cmake --build build -j "$(nproc)" --target sg_tests
  build/sg_tests --gtest_brief=1
  exit 0
fi

# The Pascal build, as its users build it: nothing CUDA runs here, so its programs are compiled and
# linked (the script checks that only the wheels' CUDA 12.9 went into them) but not run.
echo "test: the Pascal build (build-sm61: CUDA 12.9 wheels, clang, sm_61)"
bash scripts/build_pascal.sh

# Any report fails the test that caused it: UBSan is built not to recover, ASan stops at the first
# error and LeakSanitizer runs at every exit.
export ASAN_OPTIONS=detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$PWD/tests/sanitizers/lsan.supp:print_suppressions=0
echo "test: clang with AddressSanitizer and UndefinedBehaviorSanitizer, CUDA on the emulated device (build-emu)"
BUILD_DIR=build-emu CMAKE_ARGS="-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=clang -DSLIDEGRADE_EMULATED_CUDA=ON \
  -DSLIDEGRADE_BENCHMARKS=OFF -DSLIDEGRADE_SANITIZE=address,undefined" scripts/setup.sh
# The emulated device records the launch configurations the tests use, for the ptxas resource check.
export SLIDEGRADE_EMULATED_LAUNCH_LOG=$PWD/build-emu/launches
rm -rf "$SLIDEGRADE_EMULATED_LAUNCH_LOG" && mkdir -p "$SLIDEGRADE_EMULATED_LAUNCH_LOG"
# One OpenMP thread per test process: ctest runs as many processes as there are cores, and more
# threads than cores make every OpenMP barrier wait for a descheduled thread.
OMP_NUM_THREADS=1 ctest --test-dir build-emu --output-on-failure -j "$(nproc)"
# The emulated card decides which kernels run (SIMT below sm_75, mma.sync m16n8k8 on sm_75,
# m16n8k16 with cp.async from sm_80; cuBLAS bf16 from sm_70): the tests of those paths once more as
# each other card, the two cards side by side (one core each).
arch_tests=$(cat tests/emulated_cuda/arch_dependent_tests.filter)
for card in t4 h100; do
  SLIDEGRADE_EMULATED_GPU=$card OMP_NUM_THREADS=1 build-emu/sg_tests --gtest_brief=1 --gtest_filter="$arch_tests" \
    >"build-emu/tests-$card.log" 2>&1 &
done
status=0
for card in t4 h100; do
  wait -n || status=1
done
for card in t4 h100; do
  echo "test: the CUDA tests whose kernels depend on the card, on the emulated ${card}"
  cat "build-emu/tests-$card.log"
done
[ "$status" -eq 0 ]

# ptxas's registers, spills and shared memory of every kernel for every architecture built (build/,
# and build-sm61/ where the Pascal build ran), against each architecture's limits at the launch
# configurations the tests used: a kernel that cannot launch on a card it is built for fails here.
if compgen -G "build/CMakeFiles/sg_kernels.dir/kernels/cuda/*.ptxas" >/dev/null; then
  echo "test: ptxas resources of every kernel against each architecture's limits"
  resource_builds=(--build build)
  [ -d build-sm61/CMakeFiles/sg_kernels.dir ] && resource_builds+=(--build build-sm61)
  python3 scripts/kernel_resources.py "${resource_builds[@]}" --launches "$SLIDEGRADE_EMULATED_LAUNCH_LOG" \
    --markdown build-emu/kernel-resources.md --title "$(git rev-parse --short HEAD 2>/dev/null || true), $(date -u +%F)"
else
  echo "test: no CUDA build (nvcc not found): the ptxas resource check is left out"
fi

echo "test: ThreadSanitizer over the slide pipeline's tests (build-tsan)"
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/sanitizers/tsan.supp
cmake -S . -B build-tsan -G Ninja -DSLIDEGRADE_CUDA=OFF -DSLIDEGRADE_BENCHMARKS=OFF -DSLIDEGRADE_SANITIZE=thread \
  >build-tsan.configure.log 2>&1 || { cat build-tsan.configure.log; exit 1; }
cmake --build build-tsan -j "$(nproc)" --target sg_data_tests
build-tsan/sg_data_tests --gtest_brief=1
