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
  # The whole B0 training step, then B0's depthwise layers beside cuDNN.
  build/sg_bench_cuda --benchmark_filter='B0|Depthwise/224px' --benchmark_min_time=0.05
else
  # B0 layers (convolutions, batch norm, linear), then the whole B0 training step.
  build/sg_bench_cpu --benchmark_filter='B0|Conv2d/./0/1/0|BatchNormForwardTrain|Linear' --benchmark_min_time=0.05
fi
