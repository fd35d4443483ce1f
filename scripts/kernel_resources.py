#!/usr/bin/env python3
"""The ptxas resource check: can every kernel launch on every architecture it is built for?

Reads
  * ptxas's report of each kernel for each architecture (registers, spills, stack, static shared
    memory), which every CUDA compile keeps beside its object (cmake/keep_ptxas_report.sh writes
    OBJECT.ptxas from nvcc --resource-usage), from one or more build folders;
  * the launch configurations the tests use (threads per block, dynamic shared memory), which the
    emulated CUDA device records when SLIDEGRADE_EMULATED_LAUNCH_LOG names a folder
    (tests/emulated_cuda/executor.cpp), matched to the kernels by qualified name;
and compares them with each architecture's limits (docs/gpu_architectures.md). A kernel that
cannot launch on an architecture it is built for fails the check (exit 1); spills are reported.

  scripts/kernel_resources.py --build build --build build-sm61 --launches build-emu/launches \
      --markdown benchmarks/results/kernel-resources.md
"""
import argparse
import collections
import glob
import math
import os
import re
import subprocess
import sys

KIB = 1024


class Limits:
    """Per-architecture limits from the CUDA C++ Programming Guide's table of compute capabilities."""

    def __init__(self, threads_per_sm, blocks_per_sm, smem_per_sm_kib, smem_per_block_optin_kib):
        self.threads_per_block = 1024
        self.registers_per_thread = 255
        self.registers_per_block = 64 * KIB
        self.registers_per_sm = 64 * KIB
        self.threads_per_sm = threads_per_sm
        self.blocks_per_sm = blocks_per_sm
        self.static_smem_per_block = 48 * KIB
        # Without cudaFuncSetAttribute(cudaFuncAttributeMaxDynamicSharedMemorySize), which no kernel of
        # ours calls, static + dynamic shared memory must fit in 48 KiB on every architecture.
        self.smem_per_block = 48 * KIB
        self.smem_per_block_optin = smem_per_block_optin_kib * KIB
        self.smem_per_sm = smem_per_sm_kib * KIB


LIMITS = {
    61: Limits(2048, 32, 96, 48),
    75: Limits(1024, 16, 64, 64),
    80: Limits(2048, 32, 164, 163),
    86: Limits(1536, 16, 100, 99),
    89: Limits(1536, 24, 100, 99),
    90: Limits(2048, 32, 228, 227),
    120: Limits(1536, 32, 100, 99),
}


def registers_per_warp(registers):
    # Registers are allocated per warp in units of 256 (8 per thread).
    return math.ceil(registers * 32 / 256) * 256


def qualified_name(signature):
    """'void sg::cuda::(anonymous namespace)::k<T, 4>(T const*, ...)' -> 'sg::cuda::{anon}::k'.

    Works for c++filt's demangled names and for clang's __PRETTY_FUNCTION__ (which puts template
    arguments after the parameters, in [T = ...])."""
    s = signature.replace("(anonymous namespace)", "{anon}")
    if s.startswith("void "):
        s = s[len("void "):]
    cut = len(s)
    for mark in "<([ ":
        i = s.find(mark)
        if i >= 0:
            cut = min(cut, i)
    return s[:cut]


def demangle(names):
    if not names:
        return {}
    out = subprocess.run(["c++filt"], input="\n".join(names), capture_output=True, text=True, check=True).stdout
    return dict(zip(names, out.splitlines()))


Kernel = collections.namedtuple("Kernel", "arch mangled registers stack spill_stores spill_loads smem source")


def read_ptxas_reports(build_dirs):
    kernels = {}
    entry = re.compile(r"Compiling entry function '([^']+)' for 'sm_(\d+)a?'")
    props = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
    used = re.compile(r"Used (\d+) registers(?:.*?, (\d+) bytes smem)?")
    reports = 0
    for build in build_dirs:
        paths = glob.glob(os.path.join(build, "CMakeFiles", "sg_kernels.dir", "**", "*.ptxas"), recursive=True)
        if not paths:
            sys.exit(f"kernel_resources: no ptxas reports (*.ptxas) under {build}/CMakeFiles/sg_kernels.dir: "
                     "build sg_kernels there with SLIDEGRADE_CUDA=ON first")
        for path in sorted(paths):
            reports += 1
            source = os.path.basename(path).removesuffix(".o.ptxas")
            current = None
            stack = spills = (0, 0)
            for line in open(path, encoding="utf-8"):
                if m := entry.search(line):
                    current = (m.group(1), int(m.group(2)))
                    stack, spills = 0, (0, 0)
                elif current and (m := props.search(line)):
                    stack, spills = int(m.group(1)), (int(m.group(2)), int(m.group(3)))
                elif current and (m := used.search(line)):
                    mangled, arch = current
                    kernels[(arch, mangled)] = Kernel(arch, mangled, int(m.group(1)), stack, spills[0], spills[1],
                                                      int(m.group(2) or 0), source)
                    current = None
    return kernels, reports


def read_launches(directory):
    """qualified name -> (most threads per block, most dynamic shared bytes, cards it ran on)."""
    launches = {}
    paths = glob.glob(os.path.join(directory, "launches-*.tsv"))
    if not paths:
        sys.exit(f"kernel_resources: no launch logs in {directory}: run the tests on the emulated CUDA device "
                 "with SLIDEGRADE_EMULATED_LAUNCH_LOG set to that folder")
    for path in paths:
        for line in open(path, encoding="utf-8"):
            card, threads, shared, kernel = line.rstrip("\n").split("\t", 3)
            name = qualified_name(kernel)
            t, s, cards = launches.get(name, (0, 0, set()))
            launches[name] = (max(t, int(threads)), max(s, int(shared)), cards | {card})
    return launches


def check(kernel, limits, threads, dynamic_smem):
    """The reasons the kernel cannot launch with `threads` threads and `dynamic_smem` bytes; resident warps per SM."""
    problems = []
    if threads > limits.threads_per_block:
        problems.append(f"{threads} threads per block > {limits.threads_per_block}")
    if kernel.registers > limits.registers_per_thread:
        problems.append(f"{kernel.registers} registers per thread > {limits.registers_per_thread}")
    warps = math.ceil(threads / 32)
    block_registers = registers_per_warp(kernel.registers) * warps
    if block_registers > limits.registers_per_block:
        problems.append(f"{block_registers} registers per block of {threads} threads > {limits.registers_per_block}")
    if kernel.smem > limits.static_smem_per_block:
        problems.append(f"{kernel.smem} bytes of static shared memory > {limits.static_smem_per_block}")
    if kernel.smem + dynamic_smem > limits.smem_per_block:
        problems.append(f"{kernel.smem} + {dynamic_smem} bytes of shared memory > {limits.smem_per_block} "
                        "(no kernel opts in to more)")
    blocks = min(limits.blocks_per_sm, limits.threads_per_sm // max(threads, 1),
                 limits.registers_per_sm // max(block_registers, 1),
                 limits.smem_per_sm // max(kernel.smem + dynamic_smem, 1) if kernel.smem + dynamic_smem else 10**9)
    return problems, blocks * warps


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", action="append", required=True, help="a CUDA build folder (repeatable)")
    parser.add_argument("--launches", required=True, help="the emulated device's launch logs")
    parser.add_argument("--markdown", help="write the table here")
    parser.add_argument("--title", default="", help="a line under the table's heading (card, date, commit)")
    args = parser.parse_args()

    kernels, reports = read_ptxas_reports(args.build)
    launches = read_launches(args.launches)
    demangled = demangle(sorted({k.mangled for k in kernels.values()}))
    archs = sorted({k.arch for k in kernels.values()})
    unknown = [a for a in archs if a not in LIMITS]
    if unknown:
        sys.exit(f"kernel_resources: no limits known for sm_{unknown}: add them to LIMITS (docs/gpu_architectures.md)")

    rows, failures, spills, unlaunched = [], [], [], set()
    worst = {}
    for (arch, mangled), k in sorted(kernels.items(), key=lambda item: (item[0][0], demangled[item[0][1]])):
        signature = demangled[mangled]
        name = qualified_name(signature)
        if name not in launches:
            unlaunched.add(name)
            threads, dynamic_smem, cards = 0, 0, set()
        else:
            threads, dynamic_smem, cards = launches[name]
        problems, resident_warps = check(k, LIMITS[arch], max(threads, 1), dynamic_smem)
        if problems:
            failures.append(f"sm_{arch} {signature}: " + "; ".join(problems))
        if k.spill_stores or k.spill_loads:
            spills.append(f"sm_{arch} {signature}: {k.spill_stores} bytes spill stores, {k.spill_loads} bytes spill loads")
        rows.append((arch, signature, k, threads, dynamic_smem, resident_warps, problems))
        w = worst.setdefault(arch, {"registers": (0, ""), "smem": (0, ""), "occupancy": (10**9, "")})
        if k.registers > w["registers"][0]:
            w["registers"] = (k.registers, signature)
        if k.smem + dynamic_smem > w["smem"][0]:
            w["smem"] = (k.smem + dynamic_smem, signature)
        if threads and resident_warps < w["occupancy"][0]:
            w["occupancy"] = (resident_warps, signature)

    # One row per kernel (all its template instantiations) and architecture: the largest figures.
    per_kernel = {}
    for arch, signature, k, threads, dynamic_smem, warps, problems in rows:
        key = (arch, qualified_name(signature))
        r = per_kernel.setdefault(key, {"count": 0, "registers": 0, "stack": 0, "spills": 0, "smem": 0,
                                        "threads": threads, "dynamic": dynamic_smem, "warps": None, "problems": 0})
        r["count"] += 1
        r["registers"] = max(r["registers"], k.registers)
        r["stack"] = max(r["stack"], k.stack)
        r["spills"] = max(r["spills"], k.spill_stores + k.spill_loads)
        r["smem"] = max(r["smem"], k.smem)
        if threads:
            r["warps"] = warps if r["warps"] is None else min(r["warps"], warps)
        r["problems"] += bool(problems)

    lines = ["# Kernel resources per architecture (ptxas)", ""]
    if args.title:
        lines += [args.title, ""]
    lines += [f"{len(kernels)} kernel instantiations ({len({n for _, n in per_kernel})} kernels) from {reports} ptxas "
              "reports, architectures " + ", ".join(f"sm_{a}" for a in archs) + "; launch configurations from the "
              "tests on the emulated CUDA device (the most threads per block and dynamic shared memory any test "
              "used). Limits: docs/gpu_architectures.md.", "",
              "Written by `scripts/kernel_resources.py` (CI runs it: `scripts/test.sh`).", ""]
    lines += ["## Worst cases", "", "| arch | most registers | most shared memory (static + dynamic) | fewest resident warps per SM |",
              "|---|---|---|---|"]
    for arch in archs:
        w = worst[arch]
        lines.append(f"| sm_{arch} | {w['registers'][0]}: `{qualified_name(w['registers'][1])}` | {w['smem'][0]} B: "
                     f"`{qualified_name(w['smem'][1])}` | {w['occupancy'][0]}: `{qualified_name(w['occupancy'][1])}` |")
    lines += ["", f"Kernel instantiations that cannot launch: {len(failures)}. That spill: {len(spills)}.", ""]
    lines += [f"- cannot launch: {f}" for f in failures]
    lines += [f"- spills: {s}" for s in spills]
    if unlaunched:
        lines += ["", "Never launched by a test on the emulated device (launch configuration unchecked): "
                  + ", ".join(f"`{n}`" for n in sorted(unlaunched))]
    lines += ["", "## Every kernel (the largest figures over its template instantiations)", "",
              "| arch | kernel | instantiations | registers | stack B | spills B | static smem B | threads | "
              "dynamic smem B | resident warps/SM | cannot launch |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for (arch, name), r in sorted(per_kernel.items()):
        lines.append(f"| sm_{arch} | `{name}` | {r['count']} | {r['registers']} | {r['stack']} | {r['spills']} | "
                     f"{r['smem']} | {r['threads'] or '-'} | {r['dynamic']} | "
                     f"{r['warps'] if r['warps'] is not None else '-'} | {r['problems']} |")
    text = "\n".join(lines) + "\n"
    if args.markdown:
        with open(args.markdown + ".tmp", "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(args.markdown + ".tmp", args.markdown)

    print(f"kernel resources: {len(kernels)} kernel instantiations, architectures "
          + " ".join(f"sm_{a}" for a in archs) + (f"; table in {args.markdown}" if args.markdown else ""))
    for arch in archs:
        w = worst[arch]
        spilling = sum(1 for s in spills if s.startswith(f"sm_{arch} "))
        print(f"  sm_{arch}: most registers {w['registers'][0]} ({qualified_name(w['registers'][1])}), "
              f"most shared memory {w['smem'][0]} B ({qualified_name(w['smem'][1])}), "
              f"fewest resident warps/SM {w['occupancy'][0]} ({qualified_name(w['occupancy'][1])}), "
              f"{spilling} instantiations spill")
    if unlaunched:
        print("  never launched by a test (unchecked): " + ", ".join(sorted(unlaunched)))
    for f in failures:
        print("  CANNOT LAUNCH: " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
