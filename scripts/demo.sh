#!/usr/bin/env bash
# The main job on built-in demo data, on the best device here (the GPU if there is one, the CPU
# otherwise; about 5 minutes on 2 CPU cores):
#   1. the devices and the CPU GEMM library,
#   2. a synthetic PANDA-like dataset (slidegrade synth: 240 training and 40 test slides, pyramidal
#      JPEG TIFFs with masks) in demo_data/, and one slide tiled into the mosaic the model sees
#      (demo_out/mosaic.png, its label mask demo_out/mosaic_mask.png),
#   3. training a small EfficientNet on fold 0 of 5 (configs/demo.toml) into demo_out/run/:
#      metrics.csv, curves.svg, confusion.svg, best.h5, last.h5,
#   4. grading the held-out test slides with flip TTA into demo_out/submission.csv (Kaggle's
#      format) and scoring it against their true grades (quadratic weighted kappa),
#   5. the memory plan of the public recipe (B0, 36 tiles of 256 px, f16) on a 4 GiB card.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD_DIR=build scripts/setup.sh
source scripts/cpu_env.sh
SG=build/slidegrade
$SG info
echo
[ -s demo_data/test_truth.csv ] ||
  $SG synth --out demo_data --slides 240 --test-slides 40 --width 2048 --height 1024 --seed 1
slide=$(awk -F, 'NR > 1 && $3 == 4 {print $1; exit}' demo_data/train.csv)
mkdir -p demo_out
$SG tile --slide "demo_data/train_images/$slide.tiff" --level 1 --tiles 16 --size 64 \
  --out demo_out/mosaic.png --mask "demo_data/train_label_masks/${slide}_mask.tiff" | grep -v "^  tile"
echo
start=$(date +%s)
rm -rf demo_out/run
$SG train --config configs/demo.toml --data demo_data --out demo_out/run
trained=$(date +%s)
echo
$SG grade --models demo_out/run/best.h5 --data demo_data --tta flips --out demo_out/submission.csv \
  --details demo_out/details.csv
echo
$SG evaluate --truth demo_data/test_truth.csv --pred demo_out/submission.csv | tee demo_out/test_scores.txt
echo
echo "training took $((trained - start)) s; the run's files: demo_out/run/ (metrics.csv, curves.svg, confusion.svg,"
echo "best.h5, last.h5), the submission: demo_out/submission.csv, the mosaic: demo_out/mosaic.png"
echo
$SG plan --arch b0 --image 1536 --batch 6 --precision f16 --checkpoint auto --memory 4GiB --outputs 5
