#!/usr/bin/env bash
# The main job on built-in demo data. Until the slide loader and trainer exist (issues 5 and 6)
# it shows the network side on synthetic batches, on the best device here (the GPU if there is
# one, the CPU otherwise):
#   1. the devices and the CPU GEMM library,
#   2. the memory plan of the PANDA recipe the project is built for (B0 on 1536x1536 mosaics of
#      36 tiles, f16, checkpointing chosen for a 4 GiB card),
#   3. EfficientNet-B0 training steps (forward, loss, backward, AdamW) and inference, timed, with
#      the allocator's peak memory.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=build scripts/setup.sh
source scripts/cpu_env.sh
build/slidegrade info
echo
build/slidegrade plan --arch b0 --image 1536 --batch 6 --precision f16 --checkpoint auto --memory 4GiB --outputs 6
echo
if build/slidegrade info 2>/dev/null | grep -q "^  cuda:0"; then
  build/slidegrade bench --device cuda --arch b0 --image 512 --batch 16 --mode train --precision f16 --outputs 6
  build/slidegrade bench --device cuda --arch b0 --image 512 --batch 16 --mode infer --precision f16 --outputs 6
else
  build/slidegrade bench --device cpu --arch b0 --image 224 --batch 4 --mode train --outputs 6 --iterations 5
  build/slidegrade bench --device cpu --arch b0 --image 224 --batch 8 --mode infer --outputs 6 --iterations 5
fi
