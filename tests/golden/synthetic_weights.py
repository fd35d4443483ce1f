"""Deterministic synthetic weights and inputs for the EfficientNet parity golden files.

The same generator is implemented in C++ (tests/support/synthetic_weights.{h,cpp}); both must
give bit-identical f32 values, so the golden files need not carry megabytes of weights.

Element i (flat, C order, in OUR layout: conv OHWI, depthwise [C, k, k, 1], linear [out, in]) of
the tensor called `name` is
    x = splitmix64(fnv1a64(name) + i)            (uint64 arithmetic, wrapping)
    u = (x >> 40) / 2^24                         (top 24 bits, u in [0, 1))
    value = f32(lo + (hi - lo) * u)              (in double, rounded to nearest f32)
with [lo, hi] from synthetic_range(name, shape):
    rank-4 conv weights    +- gain * sqrt(3 / fan_in), fan_in = kh * kw * Cin/groups (shape[1:]),
                           gain = CONV_GAIN: a uniform of std gain / sqrt(fan_in)
    classifier.weight/bias +- 1 / sqrt(in features)
    SE biases (se.conv_*)  [-0.1, 0.1]
    BN weight (gamma)      [0.5, 1.5];   BN bias (beta) [-0.1, 0.1]
    BN running_mean        [-0.1, 0.1];  BN running_var [0.5, 1.5]
Inputs use synthetic_tensor with an explicit range (see golden_efficientnet.py).
"""
import math

import numpy as np

MASK64 = (1 << 64) - 1
CONV_GAIN = 1.3


def fnv1a64(text):
    h = 0xCBF29CE484222325
    for byte in text.encode("utf-8"):
        h ^= byte
        h = (h * 0x100000001B3) & MASK64
    return h


def splitmix64(x):
    """Vectorised over a uint64 array (numpy wraps on overflow)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def unit_uniform(name, count):
    """u in [0, 1) for elements 0..count-1 of `name` (float64, multiples of 2^-24)."""
    with np.errstate(over="ignore"):
        x = np.uint64(fnv1a64(name)) + np.arange(count, dtype=np.uint64)
    return (splitmix64(x) >> np.uint64(40)).astype(np.float64) / float(1 << 24)


def synthetic_range(name, shape):
    leaf = name.rsplit(".", 1)[-1]
    if len(shape) == 4:
        fan_in = shape[1] * shape[2] * shape[3]
        a = CONV_GAIN * math.sqrt(3.0 / fan_in)
        return -a, a
    if name.startswith("classifier."):
        # weight [out, in]; the bias uses the same bound, so the caller passes the weight's `in`.
        raise ValueError("use classifier_range(in_features) for the classifier")
    if ".se." in name or name.startswith("se."):
        return -0.1, 0.1
    if leaf == "weight":
        return 0.5, 1.5
    if leaf in ("bias", "running_mean"):
        return -0.1, 0.1
    if leaf == "running_var":
        return 0.5, 1.5
    raise ValueError(f"no synthetic range for '{name}' {list(shape)}")


def classifier_range(in_features):
    a = 1.0 / math.sqrt(in_features)
    return -a, a


def synthetic_tensor(name, shape, lo, hi):
    count = int(np.prod(shape, dtype=np.int64))
    u = unit_uniform(name, count)
    return (lo + (hi - lo) * u).astype(np.float32).reshape(shape)


def synthetic_weights(tensors, classifier_in):
    """{our name: shape} -> {our name: f32 array}, each from synthetic_range."""
    out = {}
    for name, shape in tensors.items():
        lo, hi = classifier_range(classifier_in) if name.startswith("classifier.") else synthetic_range(name, shape)
        out[name] = synthetic_tensor(name, tuple(shape), lo, hi)
    return out


def sample_indices(name, count, samples=64):
    """Up to `samples` distinct element indices of a tensor, chosen by the generator (stored in
    the golden file, so the C++ side only reads them)."""
    if count <= samples:
        return np.arange(count, dtype=np.int64)
    u = unit_uniform("sample:" + name, 4 * samples)
    picked = []
    for i in (u * count).astype(np.int64):
        if int(i) not in picked:
            picked.append(int(i))
        if len(picked) == samples:
            break
    return np.array(sorted(picked), dtype=np.int64)
