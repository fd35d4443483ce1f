"""scikit-learn's quadratic weighted kappa on fixed cases, for tests/train/test_qwk.cpp:
cohen_kappa_score(truth, pred, labels=range(6), weights="quadratic"). Run once with Debian's
Python (python3-sklearn):  /usr/bin/python3 tests/golden/qwk_reference.py tests/golden/data/qwk.h5

Each case is a group with int32 `truth` and `pred` and a float64 attribute `kappa` (NaN where
scikit-learn's is undefined: every weighted expected count is zero)."""
import sys
import warnings

import h5py
import numpy as np
import sklearn
from sklearn.metrics import cohen_kappa_score


def cases():
    rng = np.random.default_rng(20261126)
    truth = rng.integers(0, 6, 200)
    yield "random_200", truth, rng.integers(0, 6, 200)
    noisy = np.clip(truth + rng.integers(-1, 2, 200), 0, 5)
    yield "near_200", truth, noisy
    yield "perfect", truth, truth.copy()
    yield "reversed", truth, 5 - truth
    yield "constant_prediction", truth, np.full(200, 2)
    yield "missing_classes", np.array([0, 1, 1, 2, 2, 2]), np.array([0, 2, 1, 2, 1, 2])
    yield "single_row", np.array([3]), np.array([4])
    yield "undefined_all_same", np.full(10, 3), np.full(10, 3)
    small = rng.integers(0, 6, 7)
    yield "small_7", small, rng.integers(0, 6, 7)


def main(path):
    with h5py.File(path, "w") as f:
        f.attrs["sklearn_version"] = sklearn.__version__
        for name, truth, pred in cases():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                kappa = cohen_kappa_score(truth, pred, labels=list(range(6)), weights="quadratic")
            g = f.create_group(name)
            g["truth"] = np.asarray(truth, np.int32)
            g["pred"] = np.asarray(pred, np.int32)
            g.attrs["kappa"] = np.float64(kappa)
            print(name, kappa)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/golden/data/qwk.h5")
