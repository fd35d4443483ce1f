"""The deterministic weights of the real-Keras goldens (keras_real_golden.py for Keras 2,
keras3_real_golden.py for Keras 3); the C++ twin is in tests/weights/test_keras_real_golden.cpp."""
import numpy as np


def fnv1a32(text):
    h = 0x811C9DC5
    for byte in text.encode():
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h


def uniform01(name, count):
    """splitmix64 of (fnv1a32(name) << 32) + index, as [0, 1) doubles; bit-exact with the C++ twin."""
    with np.errstate(over="ignore"):
        x = np.arange(count, dtype=np.uint64) + (np.uint64(fnv1a32(name)) << np.uint64(32))
        x = x * np.uint64(0x9E3779B97F4A7C15)
        x ^= x >> np.uint64(30)
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x = x * np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) * 2.0**-53


def generated_weight(name, shape):
    """Deterministic weights by name in Keras's layout (C++ twin in test_keras_real_golden.cpp):
    kernels He-uniform, gamma 1 +- 0.25, beta and biases +- 0.1."""
    leaf = name.split("/")[-1].split(":")[0]
    count = int(np.prod(shape)) if len(shape) else 1
    wave = 2.0 * uniform01(name, count) - 1.0
    if leaf == "gamma":
        values = 1.0 + 0.25 * wave
    elif leaf in ("beta", "bias"):
        values = 0.1 * wave
    else:  # kernel (kh, kw, Cin, Cout), depthwise_kernel (kh, kw, C, 1), Dense kernel (in, out)
        fan_in = int(np.prod(shape[:-1])) if leaf == "kernel" else int(np.prod(shape[:2]))
        values = np.sqrt(6.0 / fan_in) * wave
    return values.astype(np.float32).reshape(shape)
