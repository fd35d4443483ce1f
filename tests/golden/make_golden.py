#!/usr/bin/python3
"""Writes the PyTorch golden files in tests/golden/data/ (one HDF5 file per op group).

Run with Debian's Python, which sees python3-torch and python3-h5py:
    /usr/bin/python3 tests/golden/make_golden.py [group ...]
Every tests/golden/golden_<group>.py module contributes one file. The files are small and
committed; the C++ test suite reads them and never needs PyTorch.
"""
import importlib
import pathlib
import sys

import torch

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from golden_io import GoldenWriter  # noqa: E402


def main(argv):
    torch.set_num_threads(1)
    groups = argv or sorted(p.stem[len("golden_"):] for p in HERE.glob("golden_*.py") if p.stem != "golden_io")
    (HERE / "data").mkdir(exist_ok=True)
    for group in groups:
        module = importlib.import_module(f"golden_{group}")
        torch.manual_seed(1234)
        path = HERE / "data" / f"{group}.h5"
        out = GoldenWriter(path, f"tests/golden/golden_{group}.py")
        try:
            module.generate(out)
        finally:
            out.close()
        print(f"wrote {path.relative_to(HERE.parent.parent)} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1:])
