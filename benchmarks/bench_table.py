#!/usr/bin/env python3
"""Prints a Google Benchmark JSON file as a Markdown table: time, throughput, and the ratio of
our kernel to its baseline where one exists. A baseline is the same benchmark name with
`ours` replaced by `cudnn` or `cublas` (e.g. BM_Depthwise/ours/... and BM_Depthwise/cudnn/...)."""
import json
import sys


def throughput(b):
    if "bytes_per_second" in b:
        return b["bytes_per_second"] / 1e9, "GB/s"
    if "FLOP/s" in b:
        return b["FLOP/s"] / 1e12, "TFLOP/s"
    return None, ""


def main(path):
    with open(path) as f:
        data = json.load(f)
    rows = [b for b in data["benchmarks"] if b.get("run_type", "iteration") == "iteration" and not b.get("error_occurred")]
    by_name = {b["name"]: b for b in rows}
    print(f"| benchmark | label | time (us) | throughput | vs baseline |")
    print("|---|---|---|---|---|")
    for b in rows:
        name = b["name"]
        t_us = b["real_time"] * {"ns": 1e-3, "us": 1, "ms": 1e3, "s": 1e6}[b.get("time_unit", "ns")]
        value, unit = throughput(b)
        shown = f"{value:.3g} {unit}" if value is not None else ""
        ratio = ""
        if "/ours/" in name or name.endswith("/ours"):
            for base in ("cudnn", "cublas"):
                other = by_name.get(name.replace("ours", base, 1))
                if other:
                    ratio = f"{other['real_time'] / b['real_time']:.2f}x {base}"
        print(f"| {name} | {b.get('label', '')} | {t_us:.1f} | {shown} | {ratio} |")
    errors = [b for b in data["benchmarks"] if b.get("error_occurred")]
    for b in errors:
        print(f"skipped/error: {b['name']}: {b.get('error_message', '')}")


if __name__ == "__main__":
    main(sys.argv[1])
