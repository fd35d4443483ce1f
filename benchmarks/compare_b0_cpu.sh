#!/usr/bin/env bash
# EfficientNet-B0 at 224 px on the CPU, slidegrade beside PyTorch (Debian's python3-torch and
# python3-torchvision, same threads, same shapes), alternated ROUNDS times; prints the ratio.
#   benchmarks/compare_b0_cpu.sh [BUILD_DIR] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
rounds=${2:-2}
source scripts/cpu_env.sh
threads=$(nproc)
out=$(mktemp -d)
for round in $(seq "$rounds"); do
  "$build/sg_bench_cpu" --benchmark_filter='BM_B0(Inference|InferenceFused|Forward|TrainingStep)/(1|8)/224/0' --benchmark_min_time=2 \
    --benchmark_format=json >"$out/ours_$round.json" 2>/dev/null
  OMP_NUM_THREADS=$threads /usr/bin/python3 benchmarks/pytorch_b0_step.py --batch 1 8 --threads "$threads" \
    --repeats 7 --json 2>/dev/null >"$out/torch_$round.jsonl"
done
/usr/bin/python3 - "$out" "$rounds" <<'PY'
import json, sys, statistics
out, rounds = sys.argv[1], int(sys.argv[2])
ours, torch = {}, {}
for r in range(1, rounds + 1):
    for b in json.load(open(f"{out}/ours_{r}.json"))["benchmarks"]:
        name = b["name"]
        kind = ("inference, BN folded" if "InferenceFused" in name else "inference" if "Inference" in name
                else "forward" if "Forward" in name else "step")
        batch = int(b["name"].split("/")[1])
        ours.setdefault((kind, batch), []).append(b["real_time"])  # ms
    for line in open(f"{out}/torch_{r}.jsonl"):
        t = json.loads(line)
        torch.setdefault(("inference", t["batch"]), []).append(t["infer_ms"])
        torch.setdefault(("inference, BN folded", t["batch"]), []).append(t["infer_ms"])
        torch.setdefault(("forward", t["batch"]), []).append(t["forward_ms"])
        torch.setdefault(("step", t["batch"]), []).append(t["step_ms"])
print(f"| B0 224 px f32, CPU | slidegrade ms | PyTorch ms | speed ratio (PyTorch time / ours) |")
print("|---|---|---|---|")
for key in sorted(ours):
    o, t = statistics.median(ours[key]), statistics.median(torch[key])
    print(f"| {key[0]} batch {key[1]} | {o:.0f} | {t:.0f} | {t / o:.2f} |")
PY
rm -rf "$out"
