"""Model: loading, predict() against `slidegrade forward`, uint8 normalisation, grade_slide, and
every kind of bad input as a Python exception."""
import shutil
import subprocess

import numpy as np
import pytest

import slidegrade


@pytest.fixture(scope="module")
def model(trained):
    return slidegrade.Model.load(trained["best_weights"])


def normalised(model, pixels):
    norm = model.input_normalization
    x = (255 - pixels if norm["invert"] else pixels).astype(np.float32) / np.float32(255)
    return ((x - np.array(norm["mean"], np.float32)) / np.array(norm["std"], np.float32)).astype(np.float32)


def test_load_reads_the_card(model, trained):
    assert model.arch == "b0" and model.outputs == 5  # binned head: 5 sigmoids
    assert model.device == "cpu" and model.precision == "f32" and not model.is_checkpoint
    card = model.card
    assert card["head"] == "binned" and card["tiles"] == 4 and card["tile_size"] == 32 and card["tile_level"] == 1
    assert len(card["thresholds"]) == 5 and card["fold"] == 0
    assert card["epoch"] == trained["best_epoch"]
    assert model.input_normalization["invert"] is True
    assert "efficientnet-b0" in repr(model)


def test_predict_equals_slidegrade_forward(trained, binary, tmp_path):
    # The same batches on both sides (2 images per forward pass, so the last one holds 1): the
    # same function computes both, so the logits are the same bits.
    model = slidegrade.Model.load(trained["best_weights"], batch=2)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 64, 64, 3), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    subprocess.run([binary, "forward", "--weights", trained["best_weights"], "--input", str(tmp_path / "x.npy"),
                    "--output", str(tmp_path / "y.npy"), "--device", "cpu", "--batch", "2"],
                   check=True, capture_output=True)
    expected = np.load(tmp_path / "y.npy")
    got = model.predict(x)
    assert got.dtype == np.float32 and got.shape == (3, 5)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(model(x), expected)


def test_predict_takes_non_contiguous_arrays(model):
    x = np.random.default_rng(1).standard_normal((2, 64, 64, 3), dtype=np.float32)
    np.testing.assert_array_equal(model.predict(x[:, ::-1]), model.predict(np.ascontiguousarray(x[:, ::-1])))


def test_predict_normalises_uint8_by_the_card(model):
    pixels = np.random.default_rng(2).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    np.testing.assert_allclose(model.predict(pixels), model.predict(normalised(model, pixels)), rtol=0, atol=1e-5)


def test_predict_bad_input(model):
    with pytest.raises(slidegrade.ArgumentError, match=r"is a list, expected a numpy.ndarray \[N, H, W, 3\]"):
        model.predict([[1, 2, 3]])
    with pytest.raises(slidegrade.ArgumentError, match=r"shape \[64, 64, 3\], expected .*\[N, H, W, 3\].*float32"):
        model.predict(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(slidegrade.ArgumentError, match=r"shape \[1, 64, 64, 4\]"):
        model.predict(np.zeros((1, 64, 64, 4), np.float32))
    with pytest.raises(slidegrade.ArgumentError, match="dtype float64, expected .*float32.*uint8"):
        model.predict(np.zeros((1, 64, 64, 3)))
    with pytest.raises(slidegrade.ArgumentError, match=r"shape \[0, 64, 64, 3\]"):
        model.predict(np.zeros((0, 64, 64, 3), np.float32))
    with pytest.raises(slidegrade.ArgumentError, match=r"16x16 is too small for efficientnet-b0 \(at least 32x32\)"):
        model.predict(np.zeros((1, 16, 16, 3), np.float32))


def test_load_bad_files(tmp_path, trained):
    with pytest.raises(slidegrade.Error, match="missing.h5: no such weight file"):
        slidegrade.Model.load(tmp_path / "missing.h5")
    damaged = tmp_path / "damaged.h5"
    shutil.copy(trained["best_weights"], damaged)
    data = bytearray(damaged.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(slidegrade.Error, match="damaged.h5"):
        slidegrade.Model.load(damaged)
    text = tmp_path / "text.h5"
    text.write_text("hello")
    with pytest.raises(slidegrade.Error, match="text.h5"):
        slidegrade.Model.load(text)


def test_load_bad_words(trained):
    with pytest.raises(slidegrade.ArgumentError, match="f32.*f16.*bf16"):
        slidegrade.Model.load(trained["best_weights"], precision="f8")
    with pytest.raises(slidegrade.ArgumentError, match="gpu"):
        slidegrade.Model.load(trained["best_weights"], device="gpu")
    with pytest.raises(slidegrade.ArgumentError, match="batch"):
        slidegrade.Model.load(trained["best_weights"], batch=0)


def test_checkpoint_loads(trained):
    last = slidegrade.Model.load(trained["run_dir"] + "/last.h5")
    assert last.is_checkpoint and last.arch == "b0"
    assert last.predict(np.zeros((1, 64, 64, 3), np.uint8)).shape == (1, 5)


def test_bf16_precision_is_close(model, trained):
    low = slidegrade.Model.load(trained["best_weights"], precision="bf16")
    assert low.precision == "bf16"
    x = np.random.default_rng(3).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    np.testing.assert_allclose(low.predict(x), model.predict(x), atol=0.25)


def test_grade_slide(model, dataset):
    data, info = dataset
    slide = data / "test_images" / (info["test"][0]["image_id"] + ".tiff")
    result = model.grade_slide(slide, tta="flips")
    assert result["image_id"] == info["test"][0]["image_id"]
    assert 0 <= result["grade"] <= 5
    assert set(result["outputs"]) == {f"sigmoid{k}" for k in range(1, 6)}
    assert result["score"] == pytest.approx(sum(result["outputs"].values()))
    # the same numbers as the grader
    rows = slidegrade.grade([model.path], data, tta="flips")
    row = next(r for r in rows if r["image_id"] == result["image_id"])
    assert row["grade"] == result["grade"] and row["score"] == pytest.approx(result["score"], abs=1e-5)


def test_grade_slide_bad_input(model, tmp_path):
    with pytest.raises(slidegrade.ArgumentError, match="none.*flips.*dihedral"):
        model.grade_slide(tmp_path / "x.tiff", tta="flip")
    with pytest.raises(slidegrade.Error, match="missing.tiff"):
        model.grade_slide(tmp_path / "missing.tiff")


def test_memory_limit(trained):
    with pytest.raises(slidegrade.OutOfMemoryError, match="loading the weights"):
        slidegrade.Model.load(trained["best_weights"], memory_limit="64KiB")
    with pytest.raises(slidegrade.ArgumentError, match="lots"):
        slidegrade.Model.load(trained["best_weights"], memory_limit="lots")
    capped = slidegrade.Model.load(trained["best_weights"], memory_limit="256MiB")
    assert capped.predict(np.zeros((1, 64, 64, 3), np.uint8)).shape == (1, 5)
