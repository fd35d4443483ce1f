#!/usr/bin/env bash
# The main job. Until the trainer exists (issue 6) it builds slidegrade and runs a short
# kernel benchmark on the best device here: the CUDA kernels beside cuDNN/cuBLAS on a GPU,
# the CPU kernels otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=build scripts/setup.sh
source scripts/cpu_env.sh
build/slidegrade info
if build/slidegrade info 2>/dev/null | grep -q "^  cuda:0" && [ -x build/sg_bench_cuda ]; then
  build/sg_bench_cuda --benchmark_min_time=0.05
else
  # Every op once, briefly, then the whole B0 training step (forward, backward, AdamW).
  build/sg_bench_cpu --benchmark_filter='B0|Conv2d/./0/1/0|BatchNormForwardTrain|Linear' --benchmark_min_time=0.05
fi
