"""The package itself: version, devices, the error classes, qwk and evaluate."""
import math
import pathlib

import numpy as np
import pytest

import slidegrade

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_version_is_the_projects():
    text = (REPO / "CMakeLists.txt").read_text()
    assert f"project(slidegrade VERSION {slidegrade.__version__} " in text


def test_devices_lists_the_cpu_first():
    devices = slidegrade.devices()
    assert devices[0]["name"] == "cpu" and devices[0]["kind"] == "cpu"
    assert devices[0]["description"]
    for d in devices[1:]:
        assert d["kind"] == "cuda" and d["name"].startswith("cuda:")
        assert isinstance(d["compute_capability"], int)
    assert slidegrade.default_device() in [d["name"] for d in devices]


def test_error_classes():
    assert issubclass(slidegrade.Error, RuntimeError)
    assert issubclass(slidegrade.ArgumentError, slidegrade.Error)
    assert issubclass(slidegrade.ArgumentError, ValueError)
    assert issubclass(slidegrade.OutOfMemoryError, slidegrade.Error)
    assert issubclass(slidegrade.OutOfMemoryError, MemoryError)
    assert slidegrade.Error.__module__ == "slidegrade"


def test_qwk_known_values():
    # Perfect agreement; then the definition (grading/quadratic_weighted_kappa.h) computed with NumPy.
    assert slidegrade.qwk([0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5]) == pytest.approx(1.0)
    truth, pred = np.array([0, 1, 2]), np.array([0, 2, 2])
    observed = np.zeros((6, 6))
    for t, p in zip(truth, pred):
        observed[t, p] += 1
    expected = np.outer(observed.sum(1), observed.sum(0)) / observed.sum()
    weights = np.subtract.outer(np.arange(6), np.arange(6)) ** 2
    reference = 1 - (weights * observed).sum() / (weights * expected).sum()
    assert slidegrade.qwk(truth, pred) == pytest.approx(reference, abs=1e-12)
    assert slidegrade.qwk(np.array([1, 2], dtype=np.int8), [2, 1]) == pytest.approx(-1.0)


def test_qwk_undefined_is_nan():
    assert math.isnan(slidegrade.qwk([3, 3, 3], [3, 3, 3]))


def test_qwk_bad_input():
    with pytest.raises(slidegrade.ArgumentError, match="y_true has 2 grades but y_pred has 3"):
        slidegrade.qwk([0, 1], [0, 1, 2])
    with pytest.raises(slidegrade.ArgumentError, match="0..5"):
        slidegrade.qwk([0, 7], [0, 1])
    with pytest.raises(slidegrade.ArgumentError, match="y_pred"):
        slidegrade.qwk([0, 1], [0.5, 1])
    with pytest.raises(slidegrade.ArgumentError, match="y_true"):
        slidegrade.qwk(5, [1])


def test_evaluate(tmp_path):
    truth = tmp_path / "truth.csv"
    truth.write_text("image_id,data_provider,isup_grade,gleason_score\n"
                     "a,radboud,0,0+0\nb,radboud,1,3+3\nc,karolinska,2,3+4\nd,karolinska,3,4+3\n")
    pred = tmp_path / "pred.csv"
    pred.write_text("image_id,isup_grade\na,0\nb,1\nc,3\nd,3\n")
    result = slidegrade.evaluate(truth, pred)
    assert result["slides"] == 4 and result["missing"] == 0
    assert result["qwk"] == pytest.approx(slidegrade.qwk([0, 1, 2, 3], [0, 1, 3, 3]))
    assert result["accuracy"] == pytest.approx(0.75)
    assert result["by_provider"]["radboud"]["qwk"] == pytest.approx(1.0)
    assert result["confusion"][2][3] == 1
    partial = tmp_path / "partial.csv"
    partial.write_text("image_id,isup_grade\na,0\nb,1\n")
    with pytest.raises(slidegrade.Error, match="2 of the 4 slides .* have no prediction"):
        slidegrade.evaluate(truth, partial)
    assert slidegrade.evaluate(truth, partial, partial=True)["missing"] == 2
    with pytest.raises(slidegrade.Error, match="missing.csv"):
        slidegrade.evaluate(truth, tmp_path / "missing.csv")
