"""Real Keras 3 goldens for the Keras importer's `.weights.h5` reader (weights/keras_import.h):
Keras 3's own EfficientNetB0 with generated weights at a small input, saved with save_weights to a
Keras 3 `.weights.h5` file, and Keras's own eval-mode logits. Run once by hand (Keras 3 is not a
test dependency). Keras 3's numpy backend runs inference on the CPU without TensorFlow:

    python3 -m venv /tmp/keras3_venv
    /tmp/keras3_venv/bin/pip install keras jax scipy h5py
    KERAS_BACKEND=numpy /tmp/keras3_venv/bin/python tests/golden/keras3_real_golden.py tests/golden/data

Writes (small: the weights themselves are not stored):
  keras3_real_b0.skeleton.weights.h5  Keras's own file with every generated dataset left unallocated
                                      (same groups, attributes, shapes, dtypes; no data) and given an
                                      attribute `sg_generated_as` = the generator's name for it
                                      ("stem_bn/gamma:0"), so the C++ test fills it without knowing
                                      the layout; the normalization layer and the BN moving statistics
                                      (calibrated as in keras_real_golden.py) are copied
  keras3_real_b0_logits.h5            pixels [2, 64, 64, 3] float32 in [0, 255], logits [2, 10]
                                      float32 (classifier_activation=None, training=False), attributes
                                      keras_version, keras_backend

Keras 3 stores each layer as layers/<auto name>/vars/<0..n-1> in the order the layer created its
variables, with the layer's own name in the vars group's `name` attribute.
"""
import os
import pathlib
import sys

os.environ.setdefault("KERAS_BACKEND", "numpy")

import h5py  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_generated_weights import generated_weight  # noqa: E402

SIZE = 64
CLASSES = 10
MEAN = np.array([0.485, 0.456, 0.406], np.float32)


def set_generated(model, calibration):
    """As keras_real_golden.py: generated kernels, biases, gamma, beta; BN statistics calibrated."""
    names = {}
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
                names[id(variable)] = f"{layer.name}/{leaf}:0"
                value = generated_weight(names[id(variable)], value.shape)
            new.append(value)
        layer.set_weights(new)
        if isinstance(layer, keras.layers.Normalization):
            # Keras 3's Normalization computes its mean and variance tensors from its variables
            # when built or loaded, not when set: without this it keeps normalising with 0 and 1.
            layer.finalize_state()
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            probe = keras.Model(model.inputs, layer.input)
            h = np.asarray(probe(calibration, training=False)).astype(np.float64)
            gamma, beta, _, _ = layer.get_weights()
            layer.set_weights([gamma, beta, h.mean(axis=(0, 1, 2)).astype(np.float32),
                               h.var(axis=(0, 1, 2)).astype(np.float32) + np.float32(1e-3)])
    return names


def generator_names_by_layer(model, names):
    """Layer name -> its variables' generator names in Keras's variable order (None: copied)."""
    return {layer.name: [names.get(id(v)) for v in layer.weights] for layer in model.layers}


def write_skeleton(source, target, by_layer):
    with h5py.File(source, "r") as src, h5py.File(target, "w") as dst:
        def copy_attrs(a, b):
            for key, value in a.attrs.items():
                b.attrs[key] = value

        copy_attrs(src, dst)
        generated = 0

        def visit(name, obj):
            nonlocal generated
            if isinstance(obj, h5py.Group):
                copy_attrs(obj, dst.require_group(name))
                return
            parent = src[name.rsplit("/", 1)[0]]
            layer = parent.attrs.get("name")
            index = int(name.rsplit("/", 1)[1])
            generator = by_layer.get(layer, [None] * (index + 1))[index] if layer is not None else None
            if generator is None:  # normalization, BN statistics: copied
                dst.create_dataset(name, data=obj[()])
            else:
                d = dst.create_dataset(name, shape=obj.shape, dtype=obj.dtype)
                copy_attrs(obj, d)
                d.attrs["sg_generated_as"] = generator
                generated += 1

        src.visititems(visit)
        return generated


def main(out_dir):
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20261126)
    model = keras.applications.EfficientNetB0(weights=None, input_shape=(SIZE, SIZE, 3), classes=CLASSES,
                                              classifier_activation=None)
    yy, xx = np.meshgrid(np.linspace(0, 1, SIZE), np.linspace(0, 1, SIZE), indexing="ij")

    def smooth(k):
        return np.stack([255 * yy ** k, 255 * xx, 127.5 * (1 + np.sin(6 * k * xx * yy))], axis=-1)

    noise = rng.uniform(0.0, 255.0, (3, SIZE, SIZE, 3))
    images = np.stack([noise[0], smooth(1), noise[1], smooth(2), noise[2], smooth(3)]).astype(np.float32)
    names = set_generated(model, images)
    pixels = images[:2]
    full = out / "keras3_real_b0.full.weights.h5"
    model.save_weights(str(full))
    # The logits of a fresh model loaded from the file: what Keras computes from these weights.
    loaded = keras.applications.EfficientNetB0(weights=None, input_shape=(SIZE, SIZE, 3), classes=CLASSES,
                                               classifier_activation=None)
    loaded.load_weights(str(full))
    logits = np.asarray(loaded(pixels, training=False)).astype(np.float32)
    in_memory = np.asarray(model(pixels, training=False)).astype(np.float32)
    assert np.allclose(logits, in_memory, rtol=1e-5, atol=1e-5), (logits, in_memory)
    by_layer = generator_names_by_layer(model, names)
    generated = write_skeleton(full, out / "keras3_real_b0.skeleton.weights.h5", by_layer)
    full.unlink()
    with h5py.File(out / "keras3_real_b0_logits.h5", "w") as f:
        f["pixels"] = pixels
        f["logits"] = logits
        f.attrs["keras_version"] = keras.__version__
        f.attrs["keras_backend"] = keras.backend.backend()
    print("b0 keras", keras.__version__, "generated datasets", generated, "logits", logits[:, :4], file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else str(pathlib.Path(__file__).resolve().parent / "data"))
