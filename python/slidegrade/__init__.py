"""slidegrade: grade prostate biopsy slides (ISUP 0-5, Kaggle PANDA) with EfficientNets.

The engine is C++ (the same libraries as the ``slidegrade`` command); this package calls it:

    import slidegrade as sg
    sg.synth("data", slides=12, width=2048, height=1024)          # a synthetic PANDA-like dataset
    run = sg.train("configs/demo.toml", data="data", out="run", epochs=2)
    rows = sg.grade([run["best_weights"]], "data", tta="flips", out="submission.csv")
    print(sg.evaluate("data/test_truth.csv", "submission.csv")["qwk"])

Errors raise slidegrade.Error (a RuntimeError) with the command's messages; bad arguments raise
slidegrade.ArgumentError (also a ValueError).
"""
from __future__ import annotations

import os
from typing import Any, Callable, Mapping, Optional, Sequence, Union

from ._slidegrade import (
    ArgumentError,
    Error,
    Model,
    OutOfMemoryError,
    Slide,
    __version__,
    default_device,
    devices,
    evaluate,
    export_onnx,
    merge_grades,
    qwk,
    read_png,
    synth,
    tile,
    write_png,
)
from . import _slidegrade

__all__ = [
    "ArgumentError",
    "Error",
    "Model",
    "OutOfMemoryError",
    "Slide",
    "__version__",
    "default_device",
    "devices",
    "evaluate",
    "export_onnx",
    "grade",
    "merge_grades",
    "qwk",
    "read_png",
    "synth",
    "tile",
    "train",
    "write_png",
]

PathLike = Union[str, "os.PathLike[str]"]


def _flag_value(key: str, value: Any) -> str:
    """A config value as `slidegrade train`'s flag value (the TOML spelling for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float, os.PathLike)):
        return os.fspath(value) if isinstance(value, os.PathLike) else str(value)
    raise ArgumentError(f"train: key '{key}' has a {type(value).__name__} value {value!r}; "
                        "expected a string, number or bool")


def _print_progress(event: Mapping[str, Any]) -> None:
    """The default progress: the trainer's messages and one line per epoch."""
    if event["kind"] == "message":
        print(event["text"], flush=True)
    elif event["kind"] == "epoch":
        qwk_text = "undefined" if event["val_qwk"] is None else f"{event['val_qwk']:.4f}"
        print(f"epoch {event['epoch'] + 1}/{event['epochs']}: train loss {event['train_loss']:.4f}, "
              f"validation loss {event['val_loss']:.4f}, QWK {qwk_text}"
              f"{' (best)' if event['best'] else ''}, {event['seconds']:.1f} s", flush=True)


def train(config: Union[PathLike, Mapping[str, Any], None] = None,
          data: Optional[PathLike] = None,
          out: Optional[PathLike] = None,
          fold: Optional[int] = 0,
          progress: Union[Callable[[dict], Any], None, bool] = None,
          resume: bool = False,
          **overrides: Any) -> Union[dict, list]:
    """Train an EfficientNet on a PANDA-layout dataset, as ``slidegrade train`` does.

    config: a run config file (TOML, e.g. configs/demo.toml) or a dict of its keys; data: the
    dataset folder (train.csv, train_images/); out: the run folder; fold: the validation fold
    (None with all_folds=True). Every other keyword is a run config key that overrides the config
    (epochs=2, tile_size=64, precision="f16", ...): the same keys, values and messages as the
    command's flags. progress: a callable receiving a dict per event ({"kind": "step", ...} per
    batch, {"kind": "epoch", ...} per epoch, {"kind": "message", "text"}); None prints the messages
    and a line per epoch; False prints nothing.

    resume=True continues the run folder `out` from its last checkpoint with its saved config
    (keywords override it; a change to what the run computes is refused), exactly as an
    uninterrupted run. Ctrl-C (KeyboardInterrupt) stops at the next batch and leaves the folder
    resumable from its last completed epoch.

    Returns the fold's result {"fold", "run_dir", "best_qwk", "best_epoch", "best_weights",
    "skipped_slides", "time_report"}, or a list of them with all_folds=True.
    """
    arguments: list[str] = []
    keys: dict[str, Any] = {}
    if resume:
        if out is None:
            raise ArgumentError("train: resume=True needs out, the run folder to continue")
        if config is not None:
            raise ArgumentError("train: resume=True reads the run folder's config.toml; give keys as keywords, "
                                "not config")
    elif isinstance(config, Mapping):
        keys.update(config)
    elif config is not None:
        arguments += ["--config", os.fspath(config)]
    if data is not None:
        keys["data"] = data
    if out is not None and not resume:
        keys["out"] = out
    if fold is not None and not resume and not overrides.get("all_folds", keys.get("all_folds", False)):
        keys["fold"] = fold
    keys.update(overrides)
    for key, value in keys.items():
        arguments.append(f"--{key}={_flag_value(key, value)}")
    callback = _print_progress if progress is None else (None if progress is False else progress)
    results = _slidegrade._train(arguments, os.fspath(out) if resume else "", callback)
    all_folds = bool(keys.get("all_folds", False)) or len(results) > 1
    return results if all_folds else results[0]


def grade(models: Union[PathLike, Sequence[PathLike]],
          data: PathLike,
          tta: str = "flips",
          out: Optional[PathLike] = None,
          details: Optional[PathLike] = None,
          device: str = "auto",
          memory_limit: str = "",
          batch: int = 8,
          threads: int = 2,
          progress: Optional[Callable[[int, int], Any]] = None,
          shard: Union[None, str, Sequence[int]] = None) -> list:
    """Grade test slides with trained models, as ``slidegrade grade`` does.

    models: one best.h5 or several (an ensemble averages them); data: a folder with test.csv and
    test_images/, or with *.tiff slides; tta: "none" (1 view), "flips" (4) or "dihedral" (8). With
    out, writes Kaggle's submission CSV (image_id,isup_grade); with details, the details CSV.
    memory_limit ("4GiB", "512MiB"; "": none) caps the device's allocator, weights included, as
    --memory-limit does. progress(done, total) is called as slides finish. Returns one dict per slide, in order:
    {"image_id", "path", "data_provider", "ok", "error", "grade", "score", "outputs"}; a slide that
    cannot be read has ok False, the reason in error, and grade 0. shard "K/N" or (K, N) grades only
    every N-th slide from the K-th (0 <= K < N), one task of N; merge_grades joins the parts.
    """
    if isinstance(models, (str, os.PathLike)):
        models = [models]
    if shard is None:
        shard_text = ""
    elif isinstance(shard, str):
        shard_text = shard
    else:
        index, count = shard
        shard_text = f"{int(index)}/{int(count)}"
    return _slidegrade._grade([os.fspath(m) for m in models], os.fspath(data), tta,
                              "" if out is None else os.fspath(out),
                              "" if details is None else os.fspath(details), device, memory_limit, batch, threads,
                              shard_text, progress)
