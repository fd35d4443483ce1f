#!/usr/bin/env bash
# `slidegrade bench` beside PyTorch (benchmarks/pytorch_bench.py) on the same shapes, threads and
# precision, alternated ROUNDS times; prints a Markdown table of images/s (best of the rounds'
# medians), peak memory and the speed ratio (ours / PyTorch's images per second), also for the
# single fastest iterations (less sensitive to a noisy machine).
#
#   benchmarks/compare_bench.sh [--build DIR] [--rounds N] [--device cpu|cuda] [--precision f32|f16|bf16]
#                               [--arch b0] [--image 224] [--batches "1 8"] [--modes "infer train"]
# CPU: uses Debian's /usr/bin/python3 (torch 1.13 + torchvision) and $(nproc) threads on both sides.
# GPU: PYTHON=python3 benchmarks/compare_bench.sh --device cuda --precision f16   (PyTorch + timm there).
set -euo pipefail
cd "$(dirname "$0")/.."
build=build rounds=2 device=cpu precision=f32 arch=b0 image=224 batches="1 8" modes="infer train"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --build) build=$2 ;; --rounds) rounds=$2 ;; --device) device=$2 ;; --precision) precision=$2 ;;
    --arch) arch=$2 ;; --image) image=$2 ;; --batches) batches=$2 ;; --modes) modes=$2 ;;
    *) echo "compare_bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift 2
done
python=${PYTHON:-/usr/bin/python3}
source scripts/cpu_env.sh
threads=$(nproc)
export OMP_NUM_THREADS=$threads
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for round in $(seq "$rounds"); do
  for mode in $modes; do
    for batch in $batches; do
      # Fewer iterations for big CPU training batches keep a round near a minute.
      iterations=10; [[ $device == cpu && $mode == train && $batch -ge 8 ]] && iterations=5
      common=(--arch "$arch" --image "$image" --batch "$batch" --mode "$mode" --precision "$precision"
              --device "$device" --warmup 2 --iterations "$iterations")
      "$build/slidegrade" bench "${common[@]}" >"$out/ours_${mode}_${batch}_$round.txt" 2>/dev/null
      "$python" benchmarks/pytorch_bench.py "${common[@]}" --threads "$threads" \
        >"$out/torch_${mode}_${batch}_$round.txt" 2>/dev/null
    done
  done
done
"$python" - "$out" "$rounds" "$modes" "$batches" "$arch" "$image" "$precision" "$device" <<'PY'
import re, sys
out, rounds, modes, batches, arch, image, precision, device = sys.argv[1:]
def read(path):
    text = open(path).read()
    ips = float(re.search(r"images/s: ([0-9.]+) \(median\)", text).group(1))
    best = float(re.search(r"([0-9.]+) \(best\)", text).group(1))
    mem = re.search(r"peak memory: ([0-9.]+ MiB [a-zA-Z ]+)", text).group(1).strip()
    rss = re.search(r"peak process RSS: ([0-9.]+) MiB", text)
    return ips, best, (f"{mem}, RSS {rss.group(1)} MiB" if rss else mem), text.splitlines()[0]
print(f"| {arch} {image}x{image} {precision} on {device} | slidegrade images/s | PyTorch images/s | ratio | ratio of the fastest iterations | slidegrade peak memory | PyTorch peak memory |")
print("|---|---|---|---|---|---|---|")
for mode in modes.split():
    for batch in batches.split():
        ours = [read(f"{out}/ours_{mode}_{batch}_{r}.txt") for r in range(1, int(rounds) + 1)]
        torch = [read(f"{out}/torch_{mode}_{batch}_{r}.txt") for r in range(1, int(rounds) + 1)]
        o, t = max(x[0] for x in ours), max(x[0] for x in torch)
        ob, tb = max(x[1] for x in ours), max(x[1] for x in torch)
        print(f"| {mode} batch {batch} | {o:.2f} | {t:.2f} | {o / t:.2f}x | {ob / tb:.2f}x | {ours[0][2]} | {torch[0][2]} |")
print()
print("ours:    " + ours[0][3])
print("PyTorch: " + torch[0][3])
print(f"images/s: the best of {rounds} rounds' medians; the fastest-iteration ratio compares single best iterations.")
PY
