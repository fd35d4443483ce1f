#!/usr/bin/env python3
"""Checks that no file in the repository points outside it for its facts.

Comments and docs must point to something a user who clones the repository can read (docs/,
another source file), never to notes that live beside a developer's checkout. Exit status 1
lists every file and line that does.
"""
import pathlib
import subprocess
import sys

# Built from parts so that this file does not match itself.
FORBIDDEN = ["../" + "shared", "REFERENCE" + ".md", "DESIGN" + ".md", "REFERENCE " + "section", "DESIGN" + ' "']


def tracked_files(root: pathlib.Path):
    try:
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z"], check=True, capture_output=True).stdout
        return [root / name for name in out.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        # Not a git checkout (a source archive): every file but build folders.
        return [p for p in root.rglob("*") if p.is_file() and not any(part.startswith("build") for part in p.parts)]


def main() -> int:
    root = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parent.parent
    problems = []
    for path in tracked_files(root):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data[:8192]:  # binary files (images, HDF5 goldens)
            continue
        for number, line in enumerate(data.decode(errors="replace").splitlines(), 1):
            for word in FORBIDDEN:
                if word in line:
                    problems.append(f"{path.relative_to(root)}:{number}: refers to '{word}', which is not in the repository")
    for problem in problems:
        print(problem)
    if not problems:
        print("self-contained: no file refers to notes outside the repository")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
