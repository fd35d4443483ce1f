"""Helpers for the PyTorch golden files.

Each tests/golden/golden_<group>.py module defines generate(out) and writes tensors with
out.put(name, tensor). Activations go in NHWC (use nhwc()), conv weights in OHWI (use ohwi()),
everything as float32. The C++ tests read them with sg::testing::GoldenFile("<group>").
"""
import h5py
import numpy as np
import torch

FORMAT_VERSION = 1


def nhwc(t):
    """NCHW torch tensor -> NHWC numpy array."""
    return t.detach().permute(0, 2, 3, 1).contiguous().numpy()


def ohwi(w):
    """OIHW conv weight -> OHWI (our layout: [Cout, kh, kw, Cin/groups])."""
    return w.detach().permute(0, 2, 3, 1).contiguous().numpy()


class GoldenWriter:
    def __init__(self, path, generator):
        self.file = h5py.File(path, "w")
        self.file.attrs["format_version"] = np.int64(FORMAT_VERSION)
        self.file.attrs["torch_version"] = str(torch.__version__)
        self.file.attrs["generator"] = generator

    def put(self, name, value):
        if isinstance(value, torch.Tensor):
            value = value.detach().numpy()
        value = np.asarray(value, dtype=np.float32)
        self.file.create_dataset(name, data=value)

    def close(self):
        self.file.close()
