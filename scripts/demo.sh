#!/usr/bin/env bash
# The main job on built-in demo data. Until the trainer exists (issue 6) it shows the slide side
# and the network side separately, on the best device here (the GPU if there is one, the CPU
# otherwise):
#   1. the devices and the CPU GEMM library,
#   2. a synthetic PANDA-like dataset (slidegrade synth: pyramidal TIFFs, masks, CSVs) in
#      demo_data/, and one slide tiled with the public recipe (36 tiles of 256 px at level 1) into
#      demo_out/mosaic.png and its label mask into demo_out/mosaic_mask.png,
#   3. the memory plan of that recipe for EfficientNet-B0 (1536x1536 mosaics, f16, checkpointing
#      chosen for a 4 GiB card),
#   4. EfficientNet-B0 training steps (forward, loss, backward, AdamW) and inference, timed, with
#      the allocator's peak memory.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=build scripts/setup.sh
source scripts/cpu_env.sh
build/slidegrade info
echo
[ -s demo_data/train.csv ] || build/slidegrade synth --out demo_data --slides 12 --width 12288 --height 6144 --seed 1
slide=$(awk -F, 'NR > 1 && $3 == 4 {print $1; exit}' demo_data/train.csv)
mkdir -p demo_out
build/slidegrade tile --slide "demo_data/train_images/$slide.tiff" --level 1 --tiles 36 --size 256 \
  --out demo_out/mosaic.png --mask "demo_data/train_label_masks/${slide}_mask.tiff" | grep -v "^  tile"
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
