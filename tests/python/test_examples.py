"""The examples run, at tiny sizes, as a user runs them (a fresh interpreter each)."""
import subprocess
import sys

from conftest import REPO


def test_kaggle_inference(trained, dataset, tmp_path):
    data, info = dataset
    out = tmp_path / "submission.csv"
    result = subprocess.run([sys.executable, REPO / "examples" / "kaggle_inference.py", "--models",
                             trained["best_weights"], "--data", data, "--out", out, "--tta", "none",
                             "--device", "cpu"], capture_output=True, text=True, check=True)
    assert f"graded 4 of 4 slides -> {out}" in result.stdout
    lines = out.read_text().splitlines()
    assert lines[0] == "image_id,isup_grade"
    assert sorted(line.split(",")[0] for line in lines[1:]) == sorted(s["image_id"] for s in info["test"])


def test_kaggle_inference_without_test_images(tmp_path):
    (tmp_path / "test.csv").write_text("image_id,data_provider\n")
    (tmp_path / "sample_submission.csv").write_text("image_id,isup_grade\nabc,0\n")
    out = tmp_path / "submission.csv"
    subprocess.run([sys.executable, REPO / "examples" / "kaggle_inference.py", "--models", "unused.h5", "--data",
                    tmp_path, "--out", out], capture_output=True, text=True, check=True)
    assert out.read_text() == "image_id,isup_grade\nabc,0\n"


def test_walkthrough(tmp_path):
    out = tmp_path / "walk"
    result = subprocess.run([sys.executable, REPO / "examples" / "walkthrough.py", "--out", out, "--slides", "12",
                             "--width", "1024", "--height", "512", "--epochs", "2", "--tiles", "4",
                             "--tile-size", "32"], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "test QWK" in result.stdout
    for name in ["thumbnail.png", "mosaic.png", "submission.csv", "run/best.h5"]:
        assert (out / name).is_file(), name
