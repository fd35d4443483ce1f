"""Type stubs of slidegrade's extension module (python/src/*.cpp); the docstrings are the module's."""
import os
from typing import Any, Callable, Optional, Union

import numpy as np
import numpy.typing as npt

PathLike = Union[str, os.PathLike[str]]

__version__: str

class Error(RuntimeError):
    """A failure while running (the CLI's exit status 1), with the CLI's message."""

class ArgumentError(Error, ValueError):
    """A bad argument: an unknown word, key or value, a wrongly shaped or typed array."""

class OutOfMemoryError(Error, MemoryError):
    """A device allocation over the memory limit, or a full device."""

def devices() -> list[dict[str, Any]]:
    """The CPU and every CUDA device: name, kind, description (CUDA: compute_capability, usable, why_not)."""

def default_device() -> str:
    """The device 'auto' selects: 'cuda:0' with a usable GPU, else 'cpu'."""

class Slide:
    """A whole-slide image, with OpenSlide Python's names; a context manager."""
    def __init__(self, path: PathLike) -> None: ...
    @staticmethod
    def create(arch: str, outputs: int = 1000, seed: int = 0, device: str = "cpu", precision: str = "f32",
               batch: int = 8, memory_limit: str = "") -> "Model":
        """A new network of `arch` initialised from `seed` (no pretrained weights, no model card)."""
    def save(self, path: PathLike) -> None:
        """Writes the network in slidegrade's weight format (arch config, and the card of a trained model)."""
    def export_onnx(self, out: PathLike, layout: str = "nhwc", batch: Optional[int] = None, opset: int = 17,
                    precision: str = "f32") -> dict[str, Any]:
        """Writes this network as an ONNX model; see slidegrade.export_onnx."""
    @property
    def path(self) -> str: ...
    @property
    def closed(self) -> bool: ...
    @property
    def level_count(self) -> int: ...
    @property
    def dimensions(self) -> tuple[int, int]:
        """(width, height) of level 0."""
    @property
    def level_dimensions(self) -> tuple[tuple[int, int], ...]: ...
    @property
    def level_downsamples(self) -> tuple[float, ...]: ...
    @property
    def mpp(self) -> Optional[tuple[float, float]]:
        """(x, y) microns per level-0 pixel, or None."""
    @property
    def vendor(self) -> str: ...
    @property
    def properties(self) -> dict[str, str]: ...
    def read_region(self, location: tuple[int, int], level: int, size: tuple[int, int]) -> npt.NDArray[np.uint8]:
        """RGB uint8 [height, width, 3]; location (x, y) in level-0 pixels, size (width, height) in level pixels."""
    def read_level(self, level: int) -> npt.NDArray[np.uint8]:
        """The whole level as RGB uint8 [height, width, 3]."""
    def close(self) -> None: ...
    def __enter__(self) -> "Slide": ...
    def __exit__(self, *args: Any) -> None: ...

def tile(path: PathLike, level: int = 1, tiles: int = 36, size: int = 256, half_offset: bool = False,
         rows: int = 0, cols: int = 0) -> tuple[npt.NDArray[np.uint8], list[dict[str, Any]]]:
    """(mosaic uint8 [rows*size, cols*size, 3], placements: grid_row, grid_col, x, y, pixel_sum, white_filler)."""

def synth(out: PathLike, slides: int = 40, test_slides: int = -1, seed: int = 1, width: int = 4096,
          height: int = 2048, jpeg_quality: int = 90, pen_marks: float = 0.3, threads: int = 0) -> dict[str, Any]:
    """A synthetic PANDA-like dataset in `out`; {'path', 'train': [...], 'test': [...]}."""

def write_png(path: PathLike, image: npt.NDArray[np.uint8]) -> None:
    """Writes uint8 [height, width] or [height, width, 1|3|4] as a PNG, atomically."""

def read_png(path: PathLike) -> npt.NDArray[np.uint8]:
    """A PNG as uint8 [height, width, channels]."""

class Model:
    """An EfficientNet from one of our weight files (ImageNet import, best.h5, last.h5), eval mode."""
    @staticmethod
    def load(path: PathLike, device: str = "cpu", precision: str = "f32", batch: int = 8,
             memory_limit: str = "") -> "Model": ...
    @property
    def path(self) -> str: ...
    @property
    def arch(self) -> str: ...
    @property
    def outputs(self) -> int: ...
    @property
    def device(self) -> str: ...
    @property
    def precision(self) -> str: ...
    @property
    def is_checkpoint(self) -> bool: ...
    @property
    def card(self) -> Optional[dict[str, Any]]:
        """The model card (head, tiles, tile_size, tile_level, ..., thresholds), or None."""
    @property
    def input_normalization(self) -> dict[str, Any]:
        """{'invert', 'mean', 'std'}: how predict() normalises uint8 images."""
    def predict(self, images: npt.NDArray[Union[np.float32, np.uint8]]) -> npt.NDArray[np.float32]:
        """Logits float32 [N, outputs] of images [N, H, W, 3] (float32 normalised, or uint8 RGB)."""
    def __call__(self, images: npt.NDArray[Union[np.float32, np.uint8]]) -> npt.NDArray[np.float32]: ...
    def grade_slide(self, path: PathLike, tta: str = "flips") -> dict[str, Any]:
        """{'image_id', 'path', 'ok', 'error', 'grade', 'score', 'outputs'} of one slide; tta 'none', 'flips' or 'dihedral'."""

def evaluate(truth: PathLike, pred: PathLike, partial: bool = False) -> dict[str, Any]:
    """QWK overall and per provider, accuracy, confusion matrix of a submission CSV against the truth."""

def export_onnx(weights: PathLike, out: PathLike, layout: str = "nhwc", batch: Optional[int] = None,
                opset: int = 17, precision: str = "f32") -> dict[str, Any]:
    """A weight file's network as an ONNX model, as `slidegrade export --format onnx` writes it: input 'image'
    float32 [N, H, W, 3] (layout 'nchw': [N, 3, H, W]), output 'logits' float32 [N, outputs]; batch None is
    symbolic; opset 13..17; precision 'f32' or 'f16' inside. Returns {'path', 'arch', 'outputs', 'model_card',
    'nodes', 'initializers', 'bytes'}."""

def qwk(y_true: Any, y_pred: Any) -> float:
    """Quadratic weighted kappa over ISUP grades 0..5; nan where undefined."""

def _train(arguments: list[str], resume_dir: str, progress: Optional[Callable[[dict[str, Any]], Any]]) -> list[dict[str, Any]]: ...
def _grade(models: list[str], data: str, tta: str, out: str, details: str, device: str, memory_limit: str,
           batch: int, threads: int, shard: str,
           progress: Optional[Callable[[int, int], Any]]) -> list[dict[str, Any]]: ...
def merge_grades(out: PathLike, parts: list[PathLike], data: PathLike) -> int:
    """Joins the submissions of grade(..., shard="K/N") into the unsharded submission; returns the slide count."""
