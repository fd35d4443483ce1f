"""Real Keras 2 goldens for the Keras importer (weights/keras_import.h): Keras's own EfficientNetB0 and
EfficientNetB1 with random weights at a small input, saved with save_weights to legacy .h5 files,
and Keras's own eval-mode logits. Run once by hand (TensorFlow is not a test dependency):

    /usr/bin/python3 -m venv /tmp/keras_venv
    /tmp/keras_venv/bin/pip install tf_keras tensorflow-cpu
    /tmp/keras_venv/bin/python tests/golden/keras_real_golden.py tests/golden/data

Writes, for arch in {b0, b1}:
  keras_real_<arch>.h5          the Keras legacy weight file (model.save_weights(..., save_format="h5"))
  keras_real_<arch>_logits.h5   pixels [2, 64, 64, 3] float32 in [0, 255] (what Keras's model takes),
                                logits [2, 10] float32 (classifier_activation=None, training=False),
                                attributes tensorflow_version, keras_version
Read by tests/weights/test_keras_real_golden.cpp: import, normalise the pixels with the imported
config's mean/std ((x/255 - mean) / std), our forward, compare within 1e-4 relative.

The in-graph normalization layer: Keras applies (x - mean) / sqrt(variance), and with
weights="imagenet" a Rescaling by 1/sqrt(std) after it, because the ImageNet files store the std
values in "variance" (REFERENCE section 4). With weights=None that Rescaling is absent, so here the
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

SIZE = 64
CLASSES = 10
MEAN = np.array([0.485, 0.456, 0.406], np.float32)


def randomise(model, rng):
    """Random BN statistics and affine terms (Keras's defaults are 0/1), biases, normalization mean."""
    for layer in model.layers:
        values = layer.get_weights()
        if not values:
            continue
        new = []
        for variable, value in zip(layer.weights, values):
            leaf = variable.name.split("/")[-1].split(":")[0]
            if isinstance(layer, keras.layers.Normalization):
                if leaf == "mean":
                    value = MEAN.reshape(value.shape)
                elif leaf == "variance":
                    value = np.ones_like(value)
            elif leaf in ("moving_mean", "beta", "bias"):
                value = rng.normal(0.0, 0.1, value.shape).astype(value.dtype)
            elif leaf in ("moving_variance", "gamma"):
                value = rng.uniform(0.5, 1.5, value.shape).astype(value.dtype)
            new.append(value)
        layer.set_weights(new)


def main(out_dir):
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(20261126)
    rng = np.random.default_rng(20261126)
    for arch, build in (("b0", keras.applications.EfficientNetB0), ("b1", keras.applications.EfficientNetB1)):
        model = build(weights=None, input_shape=(SIZE, SIZE, 3), classes=CLASSES, classifier_activation=None)
        randomise(model, rng)
        pixels = rng.uniform(0.0, 255.0, (2, SIZE, SIZE, 3)).astype(np.float32)
        logits = model(pixels, training=False).numpy().astype(np.float32)
        model.save_weights(str(out / f"keras_real_{arch}.h5"), save_format="h5")
        with h5py.File(out / f"keras_real_{arch}_logits.h5", "w") as f:
            f["pixels"] = pixels
            f["logits"] = logits
            f.attrs["tensorflow_version"] = tf.__version__
            f.attrs["keras_version"] = keras.__version__
        print(arch, "logits", logits[:, :4], file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(pathlib.Path(__file__).resolve().parent / "data"))
