"""Real Keras 2 goldens for the Keras importer (weights/keras_import.h): Keras's own EfficientNetB0 and
EfficientNetB1 with random weights at a small input, saved with save_weights to legacy .h5 files,
and Keras's own eval-mode logits. Run once by hand (TensorFlow is not a test dependency):

    /usr/bin/python3 -m venv /tmp/keras_venv
    /tmp/keras_venv/bin/pip install tf_keras tensorflow-cpu
    /tmp/keras_venv/bin/python tests/golden/keras_real_golden.py tests/golden/data

Writes, for arch in {b0, b1} (small: the weights themselves are not stored):
  keras_real_<arch>.skeleton.h5  Keras's own save_weights file with every dataset left unallocated
                                 (same groups, attributes, names, shapes and dtypes; no data), except
                                 the normalization layer's and the BN moving statistics (calibrated
                                 on 6 images, the 2 tested among them, so the logits depend on the input
                                 and stay well-conditioned), which are copied
  keras_real_<arch>_logits.h5    pixels [2, 64, 64, 3] float32 in [0, 255] (what Keras's model takes),
                                 logits [2, 10] float32 (classifier_activation=None, training=False),
                                 attributes tensorflow_version, keras_version
Every other weight is set from a generator of (its name "layer/weight:0", flat index) in Keras's layout,
generated_weight() in keras_generated_weights.py; tests/weights/test_keras_real_golden.cpp has its C++ twin, fills a copy
of the skeleton with it, imports it, normalises the pixels with the imported config
((x/255 - mean) / std), runs our forward and compares within 1e-4 relative.

The in-graph normalization layer: Keras applies (x - mean) / sqrt(variance), and with
weights="imagenet" a Rescaling by 1/sqrt(std) after it, because the ImageNet files store the std
values in "variance" (docs/efficientnet.md). With weights=None that Rescaling is absent, so here the
layer gets mean = ImageNet's mean and variance = 1 (sqrt(1) = 1 = what we read as std): both readings
agree and the mean is still exercised.
"""
import os
import pathlib
import sys

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

from keras_generated_weights import generated_weight  # noqa: E402

SIZE = 64
CLASSES = 10
MEAN = np.array([0.485, 0.456, 0.406], np.float32)


def set_generated(model, calibration):
    """Generated kernels, biases, gamma, beta; BN moving statistics calibrated on `calibration`
    (each BN's input mean and variance over N, H, W, in layer order) so the signal neither
    vanishes nor explodes and the logits depend on the input."""
    for layer in model.layers:
        if not layer.weights:
            continue
        new = []
        for variable, value in zip(layer.weights, layer.get_weights()):
            leaf = variable.name.split("/")[-1].split(":")[0]
            if isinstance(layer, keras.layers.Normalization):
                if leaf == "mean":
                    value = MEAN.reshape(value.shape)
                elif leaf == "variance":
                    value = np.ones_like(value)
            elif leaf not in ("moving_mean", "moving_variance"):
                value = generated_weight(f"{layer.name}/{leaf}:0", value.shape)
            new.append(value)
        layer.set_weights(new)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            probe = keras.Model(model.inputs, layer.input)
            h = probe(calibration, training=False).numpy().astype(np.float64)
            gamma, beta, _, _ = layer.get_weights()
            layer.set_weights([gamma, beta, h.mean(axis=(0, 1, 2)).astype(np.float32),
                               h.var(axis=(0, 1, 2)).astype(np.float32) + np.float32(1e-3)])


def is_copied(name):
    """Datasets stored with their data in the skeleton: the normalization layer and BN statistics."""
    return name.startswith("normalization") or name.endswith(("moving_mean:0", "moving_variance:0"))


def write_skeleton(source, target):
    """Copies groups and attributes; datasets keep shape and dtype but no data (unallocated)."""
    with h5py.File(source, "r") as src, h5py.File(target, "w") as dst:
        def copy_attrs(a, b):
            for key, value in a.attrs.items():
                b.attrs[key] = value

        copy_attrs(src, dst)

        def visit(name, obj):
            if isinstance(obj, h5py.Group):
                copy_attrs(obj, dst.require_group(name))
            elif is_copied(name):
                dst.create_dataset(name, data=obj[()])
            else:
                copy_attrs(obj, dst.create_dataset(name, shape=obj.shape, dtype=obj.dtype))

        src.visititems(visit)


def main(out_dir):
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20261126)
    for arch, build in (("b0", keras.applications.EfficientNetB0), ("b1", keras.applications.EfficientNetB1)):
        model = build(weights=None, input_shape=(SIZE, SIZE, 3), classes=CLASSES, classifier_activation=None)
        # Noise and smooth images: different enough that the logits differ.
        yy, xx = np.meshgrid(np.linspace(0, 1, SIZE), np.linspace(0, 1, SIZE), indexing="ij")
        def smooth(k):
            return np.stack([255 * yy ** k, 255 * xx, 127.5 * (1 + np.sin(6 * k * xx * yy))], axis=-1)
        noise = rng.uniform(0.0, 255.0, (3, SIZE, SIZE, 3))
        images = np.stack([noise[0], smooth(1), noise[1], smooth(2), noise[2], smooth(3)]).astype(np.float32)
        set_generated(model, images)
        pixels = images[:2]
        logits = model(pixels, training=False).numpy().astype(np.float32)
        full = out / f"keras_real_{arch}.full.h5"
        model.save_weights(str(full), save_format="h5")
        write_skeleton(full, out / f"keras_real_{arch}.skeleton.h5")
        full.unlink()
        with h5py.File(out / f"keras_real_{arch}_logits.h5", "w") as f:
            f["pixels"] = pixels
            f["logits"] = logits
            f.attrs["tensorflow_version"] = tf.__version__
            f.attrs["keras_version"] = keras.__version__
        print(arch, "logits", logits[:, :4], file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(pathlib.Path(__file__).resolve().parent / "data"))
