#!/usr/bin/env python3
"""Checks that each source folder includes only the folders below it.

The layers, bottom up: core (device, tensors, allocators), kernels (the ops), nn (modules and
networks), weights (weight files and imports), data (slides and files), grading (what the trainer
and the grader share), then train (the trainer) and infer (the grader) side by side, and cli on
top, with python (the Python package's extension module) beside it: the two front ends share
what they need through the libraries, never through each other's files. An include that points upwards, or sideways between train and infer, couples two parts that
are meant to be built, linked and changed apart: for example the grader would link the trainer.
Exit status 1 lists every such include with its file and line.
"""
import pathlib
import re
import sys

ALLOWED = {
    "core": {"core"},
    "kernels": {"core", "kernels"},
    "nn": {"core", "kernels", "nn"},
    "weights": {"core", "kernels", "nn", "weights"},
    "data": {"core", "data"},
    "grading": {"core", "kernels", "data", "weights", "grading"},
    "train": {"core", "kernels", "nn", "weights", "data", "grading", "train"},
    "infer": {"core", "kernels", "nn", "weights", "data", "grading", "infer"},
    "cli": {"core", "kernels", "nn", "weights", "data", "grading", "train", "infer", "cli"},
    "python": {"core", "kernels", "nn", "weights", "data", "grading", "train", "infer", "python"},
}
SUFFIXES = {".h", ".cpp", ".cu", ".cuh"}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([a-z_]+)/')


def main() -> int:
    root = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent
    problems = []
    for folder, allowed in ALLOWED.items():
        files = [p for p in sorted((root / folder).rglob("*")) if p.suffix in SUFFIXES]
        if not files:
            problems.append(f"{folder}/: no sources found (is {root} the repository?)")
        for path in files:
            for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                match = INCLUDE.match(line)
                if match and match.group(1) in ALLOWED and match.group(1) not in allowed:
                    problems.append(f"{path.relative_to(root)}:{number}: {folder}/ includes {match.group(1)}/, "
                                    f"which is not below it (allowed: {', '.join(sorted(allowed))})")
    for problem in problems:
        print(problem)
    if not problems:
        print(f"layers: every include in {', '.join(ALLOWED)} points downwards")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
