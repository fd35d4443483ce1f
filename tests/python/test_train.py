"""train(), grade() and evaluate() end to end on the session's dataset: progress events, a dict
config, Ctrl-C and resume, the CLI's messages for bad keys and values."""
import csv
import os
import pathlib
import signal
import threading

import pytest

import slidegrade
from conftest import REPO, TINY


def metrics_rows(run_dir):
    with open(pathlib.Path(run_dir) / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_train_result_and_files(trained):
    assert trained["fold"] == 0
    run = pathlib.Path(trained["run_dir"])
    assert trained["best_weights"] == str(run / "best.h5")
    for name in ["config.toml", "metrics.csv", "best.h5", "last.h5", "curves.svg", "oof_predictions.csv"]:
        assert (run / name).is_file(), name
    assert len(metrics_rows(run)) == 2
    assert 0 <= trained["best_epoch"] < 2
    assert trained["skipped_slides"] == []
    assert trained["time_report"]


def test_progress_events_and_dict_config(dataset, tmp_path):
    data, _ = dataset
    events = []
    config = {"arch": "b0", "width": 0.35, "depth": 0.34, "head": "softmax", "augment": "light", **TINY}
    config["epochs"] = 1
    result = slidegrade.train(config, data=data, out=tmp_path / "run", progress=events.append)
    steps = [e for e in events if e["kind"] == "step"]
    epochs = [e for e in events if e["kind"] == "epoch"]
    assert steps and len(epochs) == 1
    assert steps[-1]["batch"] == steps[-1]["batches"] and steps[0]["epochs"] == 1
    assert all(e["loss"] == e["loss"] for e in steps)  # finite, not nan
    assert len(epochs[0]["confusion"]) == 6 and epochs[0]["best"]
    assert any(e["kind"] == "message" for e in events)
    assert slidegrade.Model.load(result["best_weights"]).card["head"] == "softmax"


def test_ctrl_c_leaves_a_resumable_run(dataset, tmp_path):
    data, _ = dataset
    out = tmp_path / "run"
    config = dict(TINY, epochs=3)

    def interrupt_in_the_second_epoch(event):
        if event["kind"] == "step" and event["epoch"] == 1:
            os.kill(os.getpid(), 2)  # SIGINT, as Ctrl-C sends it

    with pytest.raises(KeyboardInterrupt):
        slidegrade.train(REPO / "configs" / "demo.toml", data=data, out=out, progress=interrupt_in_the_second_epoch,
                         **config)
    assert len(metrics_rows(out)) == 1 and (out / "last.h5").is_file()
    result = slidegrade.train(out=out, resume=True, progress=False)
    assert len(metrics_rows(out)) == 3
    assert result["run_dir"] == str(out)


def test_ctrl_c_without_a_callback(dataset, tmp_path):
    # No Python runs during the training but the trainer's own checks: SIGINT from another thread
    # (as a terminal's Ctrl-C) must still stop a run that would otherwise take a minute.
    data, _ = dataset
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            slidegrade.train(REPO / "configs" / "demo.toml", data=data, out=tmp_path / "run", progress=False,
                             **dict(TINY, epochs=300))
    finally:
        timer.cancel()


def test_callback_exception_stops_training(dataset, tmp_path):
    data, _ = dataset

    def fail(event):
        if event["kind"] == "step":
            raise ZeroDivisionError("from the callback")

    with pytest.raises(ZeroDivisionError, match="from the callback"):
        slidegrade.train(REPO / "configs" / "demo.toml", data=data, out=tmp_path / "run", progress=fail, **TINY)


def test_bad_keys_and_values(dataset, tmp_path):
    data, _ = dataset
    demo = REPO / "configs" / "demo.toml"
    with pytest.raises(slidegrade.ArgumentError, match="tile_sise"):
        slidegrade.train(demo, data=data, out=tmp_path / "r", tile_sise=32)
    with pytest.raises(slidegrade.ArgumentError, match="f32.*f16.*bf16"):
        slidegrade.train(demo, data=data, out=tmp_path / "r", precision="f8")
    with pytest.raises(slidegrade.ArgumentError, match="epochs"):
        slidegrade.train(demo, data=data, out=tmp_path / "r", epochs=0)
    with pytest.raises(slidegrade.ArgumentError, match="unknown key 'nope'"):
        bad = tmp_path / "bad.toml"
        bad.write_text("nope = 1\n")
        slidegrade.train(bad, data=data, out=tmp_path / "r")
    with pytest.raises(slidegrade.ArgumentError, match="list"):
        slidegrade.train(demo, data=data, out=tmp_path / "r", tiles=[1, 2])
    with pytest.raises(slidegrade.Error, match="not a run folder"):
        slidegrade.train(out=tmp_path / "nothing", resume=True)
    with pytest.raises(slidegrade.Error, match="missing"):
        slidegrade.train(demo, data=tmp_path / "missing", out=tmp_path / "r", progress=False, **TINY)


def test_grade_and_evaluate(trained, dataset, tmp_path):
    data, info = dataset
    seen = []
    rows = slidegrade.grade(trained["best_weights"], data, tta="none", out=tmp_path / "submission.csv",
                            details=tmp_path / "details.csv", progress=lambda done, total: seen.append((done, total)))
    assert [r["image_id"] for r in rows] == [s["image_id"] for s in info["test"]]
    assert all(r["ok"] and 0 <= r["grade"] <= 5 for r in rows)
    assert seen and seen[-1] == (4, 4)
    lines = (tmp_path / "submission.csv").read_text().splitlines()
    assert lines[0] == "image_id,isup_grade" and len(lines) == 5
    assert (tmp_path / "details.csv").is_file()
    result = slidegrade.evaluate(data / "test_truth.csv", tmp_path / "submission.csv")
    assert result["slides"] == 4
    truth = {s["image_id"]: s["isup_grade"] for s in info["test"]}
    expected = slidegrade.qwk([truth[r["image_id"]] for r in rows], [r["grade"] for r in rows])
    assert result["qwk"] == pytest.approx(expected, nan_ok=True)


def test_sharded_grading_merges_into_the_unsharded_submission(trained, dataset, tmp_path):
    data, _ = dataset
    whole = tmp_path / "whole.csv"
    slidegrade.grade(trained["best_weights"], data, tta="none", out=whole, device="cpu")
    parts = []
    for k in range(3):
        parts.append(tmp_path / f"part{k}.csv")
        shard = f"{k}/3" if k % 2 else (k, 3)  # both spellings
        rows = slidegrade.grade(trained["best_weights"], data, tta="none", out=parts[-1], device="cpu", shard=shard)
        assert len(rows) == (2 if k == 0 else 1)  # 4 slides: 0 and 3, 1, 2
    assert slidegrade.merge_grades(tmp_path / "merged.csv", parts[::-1], data) == 4
    assert (tmp_path / "merged.csv").read_bytes() == whole.read_bytes()
    with pytest.raises(slidegrade.Error, match="in no part"):
        slidegrade.merge_grades(tmp_path / "merged.csv", parts[:2], data)
    with pytest.raises(slidegrade.Error, match="overlap"):
        slidegrade.merge_grades(tmp_path / "merged.csv", parts + parts[:1], data)
    with pytest.raises(slidegrade.ArgumentError, match="0 <= K < N"):
        slidegrade.grade(trained["best_weights"], data, shard="3/3")


def test_grade_bad_input(trained, dataset, tmp_path):
    data, _ = dataset
    with pytest.raises(slidegrade.ArgumentError, match="none.*flips.*dihedral"):
        slidegrade.grade(trained["best_weights"], data, tta="flip")
    with pytest.raises(slidegrade.Error, match="missing.h5"):
        slidegrade.grade(tmp_path / "missing.h5", data)
    with pytest.raises(slidegrade.Error, match="nowhere"):
        slidegrade.grade(trained["best_weights"], tmp_path / "nowhere")
    with pytest.raises(slidegrade.OutOfMemoryError, match="best.h5"):
        slidegrade.grade(trained["best_weights"], data, memory_limit="64KiB", device="cpu")
    with pytest.raises(slidegrade.ArgumentError, match="lots"):
        slidegrade.grade(trained["best_weights"], data, memory_limit="lots")
