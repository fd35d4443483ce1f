#!/usr/bin/python3
"""Writes small Keras-layout seeds for fuzz_keras_weights into fuzz/corpus/fuzz_keras_weights/.

Run once by hand with Debian's Python (h5py); the outputs are committed. Each holds the first
layers of an EfficientNetB0 as Keras names them, with the weight shapes Keras gives them, so the
fuzzer starts from files the importer walks deep into (it then refuses them: layers are missing).
Three layouts: Keras 2 with layer_names at the root (a weights-only file), Keras 2 under
/model_weights (a whole-model file) with split weight_names attributes, and Keras 3 .weights.h5.
"""
import os

import h5py
import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "fuzz_keras_weights")

# name -> [(weight name, shape)]: Keras 2 names, B0's stem and first block.
LAYERS = [
    ("rescaling", []),
    ("normalization", [("mean:0", (3,)), ("variance:0", (3,)), ("count:0", ())]),
    ("stem_conv", [("kernel:0", (3, 3, 3, 32))]),
    ("stem_bn", [("gamma:0", (32,)), ("beta:0", (32,)), ("moving_mean:0", (32,)), ("moving_variance:0", (32,))]),
    ("block1a_dwconv", [("depthwise_kernel:0", (3, 3, 32, 1))]),
    ("block1a_bn", [("gamma:0", (32,)), ("beta:0", (32,)), ("moving_mean:0", (32,)), ("moving_variance:0", (32,))]),
    ("block1a_se_reduce", [("kernel:0", (1, 1, 32, 8)), ("bias:0", (8,))]),
]


def values(shape, seed):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(np.float32) if shape else np.float32(4)


def keras2(path, under_model_weights, split):
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if under_model_weights else f
        root.attrs["layer_names"] = np.array([n.encode() for n, _ in LAYERS])
        root.attrs["backend"] = b"tensorflow"
        root.attrs["keras_version"] = b"2.13.1"
        for i, (name, weights) in enumerate(LAYERS):
            g = root.create_group(name)
            names = [f"{name}/{w}".encode() for w, _ in weights]
            if split and len(names) > 1:
                g.attrs["weight_names0"] = np.array(names[:1])
                g.attrs["weight_names1"] = np.array(names[1:])
            else:
                g.attrs["weight_names"] = np.array(names, dtype="S64")
            for j, (w, shape) in enumerate(weights):
                g.create_dataset(f"{name}/{w}", data=values(shape, 10 * i + j))


def keras3(path):
    with h5py.File(path, "w") as f:
        layers = f.create_group("layers")
        for i, (name, weights) in enumerate(LAYERS):
            auto = "conv2d" if "conv" in name else "layer_" + str(i)
            g = layers.create_group(f"{auto}_{i}")
            v = g.create_group("vars")
            v.attrs["name"] = name
            for j, (_, shape) in enumerate(weights):
                v.create_dataset(str(j), data=values(shape, 10 * i + j))
        f.create_group("optimizer").create_group("vars")


os.makedirs(OUT, exist_ok=True)
keras2(os.path.join(OUT, "keras2_root.h5"), False, False)
keras2(os.path.join(OUT, "keras2_model_weights_split.h5"), True, True)
keras3(os.path.join(OUT, "keras3.weights.h5"))
