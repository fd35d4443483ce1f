"""Shared fixtures of the Python package's tests: one small synthetic dataset and one tiny trained
model for the whole session (seconds on 2 CPU cores), and the `slidegrade` command to compare with.

SG_SLIDEGRADE_BINARY names the command (scripts/python_tests.sh sets it to the build folder's)."""
import os
import pathlib
import shutil

import pytest

import slidegrade

REPO = pathlib.Path(__file__).resolve().parents[2]

# The demo config (configs/demo.toml) shrunk: 4 tiles of 32 px (a 64 x 64 mosaic), 2 epochs.
TINY = dict(epochs=2, tiles=4, tile_size=32, level=1, batch=4, folds=3, loader_threads=1,
            warmup_epochs=0, device="cpu")


@pytest.fixture(scope="session")
def binary():
    path = os.environ.get("SG_SLIDEGRADE_BINARY") or shutil.which("slidegrade")
    if not path:
        pytest.fail("set SG_SLIDEGRADE_BINARY to the slidegrade command (scripts/python_tests.sh does)")
    return path


@pytest.fixture(scope="session")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("data")
    info = slidegrade.synth(out, slides=12, test_slides=4, width=1024, height=512, seed=3)
    return pathlib.Path(info["path"]), info


@pytest.fixture(scope="session")
def trained(dataset, tmp_path_factory):
    data, _ = dataset
    out = tmp_path_factory.mktemp("run") / "run"
    result = slidegrade.train(REPO / "configs" / "demo.toml", data=data, out=out, progress=False, **TINY)
    return result
