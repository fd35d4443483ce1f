#!/usr/bin/python3
"""weights/convert_torch.py and `slidegrade forward` against torchvision (registered in ctest).

    /usr/bin/python3 tests/weights/test_convert_torch.py PATH/TO/slidegrade [unittest args]

A torchvision efficientnet_b0 (torch's own seeded init, randomised BN statistics and affine
parameters, 6 outputs) is saved, converted, run by `slidegrade forward`, and its logits compared
with torchvision's: max |ours - torch| <= 1e-4 * max |torch|. Bad inputs must exit 1 naming the
file and the tensor.

timm is not installed here: its state dicts (B0-B7 and the Lite models efficientnet_lite* /
tf_efficientnet_lite*) are built from its names with known shapes and random values; a Lite one is
checked through `slidegrade forward` against a functional PyTorch forward written here. Every arch
is inferred without --arch, and each converted arch is checked by `slidegrade inspect` against the
C++ network (the script's copy of the arch table must be nn/efficientnet.cpp's). .safetensors files
come from this file's own writer; .pth / .pth.tar checkpoints hold the weights under each key timm and
torchvision use.
"""
import json
import math
import os
import pathlib
import subprocess
import sys
import tempfile
import unittest

import h5py
import numpy as np
import torch
import torch.nn.functional as F
import torchvision

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONVERTER = ROOT / "weights" / "convert_torch.py"
SLIDEGRADE = None  # set from argv


def run(*args):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=300)


def convert(src, dst, arch="b0", *extra):
    return run(sys.executable, CONVERTER, src, dst, "--arch", arch, "--source", "torchvision", *extra)


def randomised(model, seed):
    """torch's init (seeded) plus random BN statistics and affine parameters, so eval mode is no
    identity and every tensor's placement shows in the logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(0.5 + torch.rand(c, generator=g))
                m.bias.copy_(0.2 * torch.rand(c, generator=g) - 0.1)
                m.running_mean.copy_(0.2 * torch.rand(c, generator=g) - 0.1)
                m.running_var.copy_(0.5 + torch.rand(c, generator=g))
            elif isinstance(m, torch.nn.Conv2d) and m.bias is not None:  # SE
                m.bias.copy_(0.2 * torch.rand(m.bias.shape, generator=g) - 0.1)
    return model.eval()


class ConvertTorchvision(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="sg_convert_torch_")
        cls.dir = pathlib.Path(cls.tmp.name)
        torch.manual_seed(20240613)
        cls.model = randomised(torchvision.models.efficientnet_b0(num_classes=6), 7)
        cls.state = cls.model.state_dict()
        cls.pt = cls.dir / "b0.pt"
        torch.save(cls.state, cls.pt)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def expect_error(self, result, *needles):
        self.assertEqual(result.returncode, 1, f"exit {result.returncode}\nstdout {result.stdout}\nstderr {result.stderr}")
        for needle in needles:
            self.assertIn(str(needle), result.stderr)

    def test_forward_matches_torchvision(self):
        h5 = self.dir / "b0.h5"
        r = convert(self.pt, h5)
        self.assertEqual(r.returncode, 0, r.stderr)
        x = np.random.default_rng(5).uniform(-2, 2, size=(3, 160, 192, 3)).astype(np.float32)
        xin, yout = self.dir / "x.npy", self.dir / "y.npy"
        np.save(xin, x)
        # --batch 2 over 3 images: two chunks, the second partial.
        r = run(SLIDEGRADE, "forward", "--weights", h5, "--input", xin, "--output", yout, "--device", "cpu",
                "--batch", "2")
        self.assertEqual(r.returncode, 0, r.stderr)
        ours = np.load(yout)
        with torch.no_grad():
            ref = self.model(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()).numpy()
        self.assertEqual(ours.dtype, np.float32)
        self.assertEqual(ours.shape, (3, 6))
        self.assertTrue(np.isfinite(ref).all() and np.abs(ref).max() > 1e-2, f"torchvision logits {ref}")
        rel = np.abs(ours - ref).max() / np.abs(ref).max()
        print(f"convert_torch b0 (6 outputs) forward: max |ours - torch| / max |torch| = {rel:.3g}")
        self.assertLessEqual(rel, 1e-4)

    def test_file_is_our_format(self):
        h5 = self.dir / "format.h5"
        self.assertEqual(convert(self.pt, h5, "b0", "--outputs", "6").returncode, 0)
        with h5py.File(h5, "r") as f:
            self.assertEqual(f.attrs["format"], "slidegrade-weights")
            self.assertEqual(f.attrs["format_version"], 1)
            self.assertEqual(f.attrs["format_version"].dtype, np.int64)
            config = f.attrs["arch_config"]
            self.assertIn("arch=b0", config)
            self.assertIn("outputs=6", config)
            self.assertIn("bn_eps=1e-05", config)
            self.assertIn("padding=symmetric", config)
            model = f["model"]
            expected = sum(1 for k in self.state if not k.endswith("num_batches_tracked"))
            self.assertEqual(len(model), expected)
            self.assertEqual(model["conv_stem.weight"].shape, (32, 3, 3, 3))
            self.assertEqual(model["blocks.1.0.conv_dw.weight"].shape, (96, 3, 3, 1))
            self.assertEqual(model["blocks.1.0.se.conv_reduce.weight"].shape, (4, 1, 1, 96))
            self.assertEqual(model["classifier.weight"].shape, (6, 1280))
            for name, ds in model.items():
                self.assertEqual(ds.dtype, np.float32, name)
                self.assertEqual(ds.attrs["dtype"], "f32", name)
            np.testing.assert_array_equal(model["blocks.0.0.conv_dw.weight"][()],
                                          self.state["features.1.0.block.0.0.weight"].permute(0, 2, 3, 1).numpy())
        self.assertFalse([p for p in os.listdir(self.dir) if ".tmp-" in p], "temporary file left behind")

    def test_outputs_flag_must_match_the_file(self):
        self.expect_error(convert(self.pt, self.dir / "o.h5", "b0", "--outputs", "5"), self.pt, "classifier.1.weight")

    def test_b3_state_dict_with_arch_b0_is_refused(self):
        b3 = self.dir / "b3.pt"
        torch.save(torchvision.models.efficientnet_b3().state_dict(), b3)
        out = self.dir / "b3_as_b0.h5"
        self.expect_error(convert(b3, out, "b0"), b3, "features.0.0.weight")
        self.assertFalse(out.exists())

    def test_not_a_torch_file_is_refused(self):
        bad = self.dir / "notes.txt"
        bad.write_text("not a state dict\n")
        self.expect_error(convert(bad, self.dir / "bad.h5"), bad)
        self.expect_error(convert(self.dir / "absent.pt", self.dir / "absent.h5"), "absent.pt")

    def test_missing_tensor_is_refused(self):
        state = dict(self.state)
        del state["features.3.1.block.1.0.weight"]
        holed = self.dir / "holed.pt"
        torch.save({"state_dict": state}, holed)  # also exercises the {'state_dict': ...} wrapper
        self.expect_error(convert(holed, self.dir / "holed.h5"), holed, "features.3.1.block.1.0.weight")

    def test_unplaceable_tensor_is_refused(self):
        state = dict(self.state)
        state["features.9.0.weight"] = torch.zeros(3)
        extra = self.dir / "extra.pt"
        torch.save(state, extra)
        self.expect_error(convert(extra, self.dir / "extra.h5"), extra, "features.9.0.weight")

    def test_forward_bad_inputs(self):
        h5 = self.dir / "fwd.h5"
        self.assertEqual(convert(self.pt, h5).returncode, 0)
        y = self.dir / "y_bad.npy"
        cases = {
            "gray.npy": np.zeros((1, 64, 64, 1), np.float32),     # 1 channel
            "rank3.npy": np.zeros((64, 64, 3), np.float32),       # no batch axis
            "tiny.npy": np.zeros((1, 16, 16, 3), np.float32),     # below 32x32
        }
        for name, array in cases.items():
            path = self.dir / name
            np.save(path, array)
            r = run(SLIDEGRADE, "forward", "--weights", h5, "--input", path, "--output", y, "--device", "cpu")
            self.assertNotEqual(r.returncode, 0, name)
            self.assertIn(name, r.stderr)
        r = run(SLIDEGRADE, "forward", "--weights", self.dir / "nope.h5", "--input", self.dir / "gray.npy",
                "--output", y)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("nope.h5", r.stderr)
        self.assertFalse(y.exists())



class ConvertOtherSources(unittest.TestCase):
    """--source timm | timm-tf | lukemelas | lite on state dicts built from each port's names (the
    Lite0 ImageNet test, tests/weights/test_lite0_imagenet.cpp, runs the lite path on real weights)."""

    @classmethod
    def setUpClass(cls):
        sys.path.insert(0, str(ROOT / "weights"))
        import convert_torch
        cls.ct = convert_torch
        cls.tmp = tempfile.TemporaryDirectory(prefix="sg_convert_sources_")
        cls.dir = pathlib.Path(cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def state_for(self, source, arch, outputs=1000):
        rng = np.random.default_rng(3)
        return {name: torch.from_numpy(rng.standard_normal(self.ct.torch_shape(kind, shape)).astype(np.float32))
                for name, _, kind, shape in self.ct.source_mapping(source, arch, outputs)}

    def convert_source(self, source, arch, state):
        pt, h5 = self.dir / f"{source}_{arch}.pt", self.dir / f"{source}_{arch}.h5"
        torch.save(state, pt)
        result = run(sys.executable, CONVERTER, pt, h5, "--arch", arch, "--source", source)
        self.assertEqual(result.returncode, 0, result.stderr)
        return h5

    def test_each_source_records_its_numerics(self):
        # source, arch: padding, eps, activation, lite, mean[0]
        cases = {("timm", "b0"): ("symmetric", "1e-05", "swish", "0", "0.485000014"),
                 ("timm-tf", "b2"): ("tf_same", "0.001", "swish", "0", "0.485000014"),
                 ("lukemelas", "b0"): ("tf_same", "0.001", "swish", "0", "0.485000014"),
                 ("lite", "lite0"): ("tf_same", "0.001", "relu6", "1", "0.498039216")}
        for (source, arch), (padding, eps, activation, lite, mean) in cases.items():
            with self.subTest(source=source, arch=arch):
                state = self.state_for(source, arch)
                h5 = self.convert_source(source, arch, state)
                with h5py.File(h5, "r") as f:
                    config = dict(kv.split("=", 1) for kv in f.attrs["arch_config"].split())
                    self.assertEqual((config["padding"], config["bn_eps"], config["activation"], config["lite"]),
                                     (padding, eps, activation, lite))
                    self.assertEqual(config["mean"].split(",")[0], mean)
                    model = f["model"]
                    self.assertEqual(len(model), len(state))
                    for name, ours, kind, _ in self.ct.source_mapping(source, arch):
                        want = state[name].numpy()
                        want = want.transpose(0, 2, 3, 1) if kind == "conv" else want
                        np.testing.assert_array_equal(model[ours][()], want, err_msg=f"{name} -> {ours}")

    def test_lukemelas_names(self):
        by_source = {name: ours for name, ours, _, _ in self.ct.source_mapping("lukemelas", "b0")}
        self.assertEqual(by_source["_conv_stem.weight"], "conv_stem.weight")
        self.assertEqual(by_source["_bn0.running_var"], "bn1.running_var")
        self.assertEqual(by_source["_blocks.0._depthwise_conv.weight"], "blocks.0.0.conv_dw.weight")
        self.assertEqual(by_source["_blocks.0._se_reduce.bias"], "blocks.0.0.se.conv_reduce.bias")
        self.assertEqual(by_source["_blocks.0._project_conv.weight"], "blocks.0.0.conv_pw.weight")
        self.assertEqual(by_source["_blocks.0._bn2.weight"], "blocks.0.0.bn2.weight")
        self.assertEqual(by_source["_blocks.2._expand_conv.weight"], "blocks.1.1.conv_pw.weight")
        self.assertEqual(by_source["_blocks.2._bn0.bias"], "blocks.1.1.bn1.bias")
        self.assertEqual(by_source["_blocks.15._bn2.running_mean"], "blocks.6.0.bn3.running_mean")
        self.assertEqual(by_source["_conv_head.weight"], "conv_head.weight")
        self.assertEqual(by_source["_bn1.weight"], "bn2.weight")
        self.assertEqual(by_source["_fc.bias"], "classifier.bias")
        lite = {name for name, _, _, _ in self.ct.source_mapping("lite", "lite0")}
        self.assertFalse([n for n in lite if "_se_" in n], "Lite has no SE")
        self.assertEqual(len(lite), 247)  # the package's 296 tensors less 49 num_batches_tracked

    def test_wrong_source_or_arch_is_refused(self):
        pt = self.dir / "lukemelas_b0_for_lite.pt"
        torch.save(self.state_for("lukemelas", "b0"), pt)
        result = run(sys.executable, CONVERTER, pt, self.dir / "x.h5", "--arch", "b0", "--source", "timm")
        self.assertEqual(result.returncode, 1)
        self.assertIn("classifier.weight", result.stderr)
        result = run(sys.executable, CONVERTER, pt, self.dir / "x.h5", "--arch", "b0", "--source", "lite")
        self.assertEqual(result.returncode, 1)
        self.assertIn("lite0", result.stderr)  # b0 is not a Lite arch: the message lists them
        result = run(sys.executable, CONVERTER, pt, self.dir / "x.h5", "--arch", "lite0", "--source", "lite")
        self.assertEqual(result.returncode, 1)
        self.assertIn("_se_reduce", result.stderr)  # SE tensors cannot be placed in Lite


def write_safetensors(path, tensors, bf16=()):
    """A .safetensors file (8-byte little-endian header length, JSON header, raw little-endian data),
    written here as the safetensors package would; names in `bf16` are stored as BF16 (their float32
    values rounded toward zero to BF16, so that reading them back is exact)."""
    header, chunks, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name, value in tensors.items():
        a = np.ascontiguousarray(np.asarray(value, dtype=np.float32))
        if name in bf16:
            raw, dtype = (a.view(np.uint32) >> 16).astype("<u2").tobytes(), "BF16"
        else:
            raw, dtype = a.astype("<f4").tobytes(), "F32"
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)  # the package pads the header to 8 bytes
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little") + text + b"".join(chunks))


def randomised_state(ct, source, arch, outputs, seed):
    """Random tensors of `source`'s names and shapes, scaled like a trained network (He-normal
    convolutions, BN variances near 1) so a forward stays finite and every tensor shows in it."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, _, kind, shape in ct.source_mapping(source, arch, outputs):
        size = ct.torch_shape(kind, shape)
        if name.endswith("running_var"):
            value = 0.5 + torch.rand(size, generator=g)
        elif name.endswith("running_mean") or (len(size) == 1 and name.endswith("bias")):
            value = 0.2 * torch.rand(size, generator=g) - 0.1
        elif len(size) == 1:  # BN gamma
            value = 0.5 + torch.rand(size, generator=g)
        else:
            fan_in = int(np.prod(size[1:]))
            value = torch.randn(size, generator=g) * math.sqrt(2.0 / fan_in)
        state[name] = value
    return state


def lite_forward(ct, state, arch, x, tf_same):
    """timm's EfficientNet-Lite in eval mode, written out: ReLU6, no SE, BN eps 1e-3 (tf_) / 1e-5,
    TF-SAME padding (tf_) / symmetric k // 2; x [N, 3, H, W]."""
    eps = 1e-3 if tf_same else 1e-5

    def conv(h, name, stride=1, depthwise=False):
        w = state[name]
        k = w.shape[-1]
        groups = h.shape[1] if depthwise else 1
        if not tf_same:
            return F.conv2d(h, w, stride=stride, padding=k // 2, groups=groups)
        pads = [max((math.ceil(i / stride) - 1) * stride + k - i, 0) for i in h.shape[-2:]]
        h = F.pad(h, [pads[1] // 2, pads[1] - pads[1] // 2, pads[0] // 2, pads[0] - pads[0] // 2])
        return F.conv2d(h, w, stride=stride, groups=groups)

    def bn(h, name, act=True):
        h = F.batch_norm(h, state[f"{name}.running_mean"], state[f"{name}.running_var"], state[f"{name}.weight"],
                         state[f"{name}.bias"], False, 0.0, eps)
        return F.relu6(h) if act else h

    _, stages, _ = ct.layout(arch)
    h = bn(conv(x, "conv_stem.weight", 2), "bn1")
    for s, (_, repeats, cin, cout, expand, stride) in enumerate(stages):
        for j in range(repeats):
            p, st, c_in, skip = f"blocks.{s}.{j}", stride if j == 0 else 1, cin if j == 0 else cout, h
            if expand != 1:
                h = bn(conv(h, f"{p}.conv_pw.weight"), f"{p}.bn1")
                h = bn(conv(h, f"{p}.conv_dw.weight", st, True), f"{p}.bn2")
                h = bn(conv(h, f"{p}.conv_pwl.weight"), f"{p}.bn3", act=False)
            else:
                h = bn(conv(h, f"{p}.conv_dw.weight", st, True), f"{p}.bn1")
                h = bn(conv(h, f"{p}.conv_pw.weight"), f"{p}.bn2", act=False)
            if st == 1 and c_in == cout:
                h = h + skip
    h = bn(conv(h, "conv_head.weight"), "bn2")
    return F.linear(h.mean((2, 3)), state["classifier.weight"], state["classifier.bias"])


class ConvertTimm(unittest.TestCase):
    """timm's names (B0-B7 and Lite0-4), arch inference, .safetensors and training checkpoints."""

    @classmethod
    def setUpClass(cls):
        sys.path.insert(0, str(ROOT / "weights"))
        import convert_torch
        cls.ct = convert_torch
        cls.tmp = tempfile.TemporaryDirectory(prefix="sg_convert_timm_")
        cls.dir = pathlib.Path(cls.tmp.name)

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def convert(self, src, dst, *extra):
        result = run(sys.executable, CONVERTER, src, dst, *extra)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result

    def zeros_state(self, source, arch, outputs=5):
        return {name: np.zeros(self.ct.torch_shape(kind, shape), np.float32)
                for name, _, kind, shape in self.ct.source_mapping(source, arch, outputs)}

    def test_every_arch_of_every_source_is_inferred_from_the_shapes(self):
        for source, conventions in self.ct.SOURCES.items():
            for arch in conventions["archs"]:
                with self.subTest(source=source, arch=arch):
                    self.assertEqual(self.ct.infer_arch(self.zeros_state(source, arch), "f", source, 5), arch)

    def test_every_timm_arch_converted_without_arch_fits_the_cpp_network(self):
        # `slidegrade inspect` compares every tensor's shape with the network nn/efficientnet.cpp
        # builds from the file's arch_config: the script's table and the C++ one agree.
        names = []
        for arch in self.ct.SOURCES["timm"]["archs"]:
            with self.subTest(arch=arch):
                state = self.zeros_state("timm", arch)
                inferred = self.ct.infer_arch(state, "f", "timm", 5)
                h5 = self.dir / f"inspect_{arch}.h5"
                self.ct.write_weights(h5, self.ct.convert(state, inferred, "f", 5, "timm"),
                                      self.ct.arch_config_text(inferred, 5, "timm"))
                r = run(SLIDEGRADE, "inspect", h5)
                h5.unlink()
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                self.assertIn(f"arch: efficientnet-{arch}", r.stdout)
                self.assertIn("unplaced tensors: 0", r.stdout)
                names.append(arch)
        self.assertEqual(len(names), 13)

    def test_b2_is_not_taken_for_b1_and_a_near_miss_names_the_closest(self):
        for arch in ("b1", "b2"):
            pt = self.dir / f"timm_{arch}.pt"
            torch.save(randomised_state(self.ct, "timm", arch, 4, 11), pt)
            r = self.convert(pt, self.dir / f"timm_{arch}.h5", "--source", "timm")
            self.assertIn(f"efficientnet-{arch} (inferred from the shapes)", r.stdout)
        state = self.zeros_state("timm", "b2")
        state["blocks.2.0.conv_pwl.weight"] = np.zeros((40, 144, 1, 1), np.float32)  # B1's width
        with self.assertRaises(self.ct.ConvertError) as e:
            self.ct.infer_arch(state, "near.pt", "timm", 5)
        message = str(e.exception)
        self.assertIn("near.pt: the tensors match no timm EfficientNet", message)
        self.assertIn("closest: efficientnet-b2", message)
        self.assertIn("first mismatch: tensor 'blocks.2.0.conv_pwl.weight' has shape [40, 144, 1, 1], "
                      "efficientnet-b2 expects [48, 144, 1, 1]", message)

    def test_torchvision_without_arch_and_a_source_hint(self):
        pt = self.dir / "tv_b3.pt"
        torch.save(torchvision.models.efficientnet_b3(num_classes=3).state_dict(), pt)
        r = self.convert(pt, self.dir / "tv_b3.h5")
        self.assertIn("efficientnet-b3 (inferred from the shapes)", r.stdout)
        timm = self.dir / "timm_lite3_for_tv.pt"
        torch.save(self.zeros_state("timm", "lite3"), timm)
        r = run(sys.executable, CONVERTER, timm, self.dir / "no.h5")  # --source torchvision by default
        self.assertEqual(r.returncode, 1)
        self.assertIn("give --source timm (efficientnet-lite3) or --source timm-tf (efficientnet-lite3)", r.stderr)
        self.assertFalse((self.dir / "no.h5").exists())

    def test_timm_lite_models_convert_and_match_a_pytorch_forward(self):
        x = np.random.default_rng(9).uniform(-2, 2, size=(2, 72, 88, 3)).astype(np.float32)
        xin = self.dir / "lite_x.npy"
        np.save(xin, x)
        # timm efficientnet_lite0 (symmetric padding, eps 1e-5), tf_efficientnet_lite1 (TF-SAME, eps 1e-3).
        for source, arch, tf_same, mean in (("timm", "lite0", False, "0.485000014"),
                                            ("timm-tf", "lite1", True, "0.5")):
            with self.subTest(source=source, arch=arch):
                state = randomised_state(self.ct, source, arch, 5, 21)
                pt, h5, yout = self.dir / f"{arch}.pt", self.dir / f"{arch}.h5", self.dir / f"{arch}_y.npy"
                torch.save(state, pt)
                r = self.convert(pt, h5, "--source", source)
                self.assertIn(f"efficientnet-{arch} (inferred from the shapes)", r.stdout)
                with h5py.File(h5, "r") as f:
                    config = dict(kv.split("=", 1) for kv in f.attrs["arch_config"].split())
                self.assertEqual((config["lite"], config["activation"], config["mean"].split(",")[0]),
                                 ("1", "relu6", mean))
                self.assertEqual(config["padding"], "tf_same" if tf_same else "symmetric")
                r = run(SLIDEGRADE, "forward", "--weights", h5, "--input", xin, "--output", yout, "--device", "cpu")
                self.assertEqual(r.returncode, 0, r.stderr)
                with torch.no_grad():
                    ref = lite_forward(self.ct, state, arch, torch.from_numpy(x).permute(0, 3, 1, 2), tf_same).numpy()
                ours = np.load(yout)
                self.assertTrue(np.isfinite(ref).all() and np.abs(ref).max() > 1e-2, f"reference logits {ref}")
                rel = np.abs(ours - ref).max() / np.abs(ref).max()
                print(f"convert_torch {source} {arch} forward: max |ours - torch| / max |torch| = {rel:.3g}")
                self.assertLessEqual(rel, 1e-4)

    def test_every_lite_name_is_accepted_by_timm_and_timm_tf(self):
        for source in ("timm", "timm-tf"):
            for n in range(5):
                for name in (f"lite{n}", f"efficientnet_lite{n}", f"tf_efficientnet_lite{n}"):
                    self.assertEqual(self.ct.normalise_arch(name, source), f"lite{n}")
        pt = self.dir / "lite4.pt"
        torch.save(self.zeros_state("timm-tf", "lite4"), pt)
        self.convert(pt, self.dir / "lite4.h5", "--source", "timm-tf", "--arch", "tf_efficientnet_lite4")

    def expect_weights(self, h5, state):
        with h5py.File(h5, "r") as f:
            for name in ("conv_stem.weight", "blocks.1.0.bn2.running_var", "classifier.bias"):
                want = np.asarray(state[name], dtype=np.float32)
                want = want.transpose(0, 2, 3, 1) if want.ndim == 4 else want
                np.testing.assert_array_equal(f["model"][name][()], want, err_msg=name)

    def test_safetensors_files(self):
        state = randomised_state(self.ct, "timm", "lite0", 5, 31)
        arrays = {k: v.numpy() for k, v in state.items()}
        st = self.dir / "model.safetensors"
        write_safetensors(st, arrays)
        r = self.convert(st, self.dir / "st.h5", "--source", "timm")
        self.assertIn("efficientnet-lite0 (inferred from the shapes)", r.stdout)
        self.assertIn("weights from safetensors", r.stdout)
        self.expect_weights(self.dir / "st.h5", arrays)
        # The script's own reader (used without the package): BF16 widened exactly, F32 as stored,
        # and a file recognised by its content whatever its name.
        bf16 = {k: (v.view(np.uint32) & 0xFFFF0000).view(np.float32) for k, v in arrays.items()}
        odd = self.dir / "weights.bin"
        write_safetensors(odd, bf16, bf16=("conv_stem.weight", "classifier.weight"))
        self.assertTrue(self.ct.is_safetensors(odd))
        read = self.ct.read_safetensors(odd)
        self.assertEqual(set(read), set(arrays))
        for name in ("conv_stem.weight", "classifier.weight", "bn1.bias"):
            self.assertEqual(read[name].dtype, np.float32)
            np.testing.assert_array_equal(read[name], bf16[name], err_msg=name)
        cut = self.dir / "cut.safetensors"
        cut.write_bytes(st.read_bytes()[:100000])
        with self.assertRaises(self.ct.ConvertError) as e:
            self.ct.read_safetensors(cut)
        self.assertIn("cut.safetensors: tensor", str(e.exception))
        self.assertIn("truncated", str(e.exception))
        pt = self.dir / "not_safetensors.pt"
        torch.save({"conv_stem.weight": torch.zeros(2)}, pt)
        self.assertFalse(self.ct.is_safetensors(pt))

    def test_training_checkpoints_under_each_key(self):
        raw = randomised_state(self.ct, "timm", "b0", 3, 41)
        ema = randomised_state(self.ct, "timm", "b0", 3, 42)
        cases = {  # file name, checkpoint, extra arguments: the weights expected, the key reported
            "raw.pth.tar": ({"epoch": 9, "arch": "efficientnet_b0", "state_dict": raw}, (), raw, "'state_dict'"),
            "both.pth.tar": ({"epoch": 9, "state_dict": raw, "state_dict_ema": ema}, (), ema, "'state_dict_ema'"),
            "both_raw.pth.tar": ({"state_dict": raw, "state_dict_ema": ema}, ("--checkpoint-key", "state_dict"), raw,
                                 "'state_dict'"),
            "ema_only.pth": ({"state_dict_ema": ema, "optimizer": {"lr": 0.1}}, (), ema, "'state_dict_ema'"),
            "model.pth": ({"model": raw, "epoch": 3}, (), raw, "'model'"),
            "dataparallel.pth.tar": ({"state_dict": {f"module.{k}": v for k, v in raw.items()}}, (), raw,
                                     "'state_dict'"),
        }
        for file_name, (checkpoint, extra, want, key) in cases.items():
            with self.subTest(file=file_name):
                path, h5 = self.dir / file_name, self.dir / f"{file_name}.h5"
                torch.save(checkpoint, path)
                r = self.convert(path, h5, "--source", "timm", *extra)
                self.assertIn(f"efficientnet-b0 (inferred from the shapes), 311 tensors, 3 outputs, weights from {key}",
                              r.stdout)
                self.expect_weights(h5, want)
                with h5py.File(h5, "r") as f:
                    self.assertEqual(f.attrs["checkpoint_key"], key.strip("'"))
        missing = self.dir / "raw.pth.tar"
        r = run(sys.executable, CONVERTER, missing, self.dir / "x.h5", "--source", "timm",
                "--checkpoint-key", "state_dict_ema")
        self.assertEqual(r.returncode, 1)
        self.assertIn("raw.pth.tar: --checkpoint-key state_dict_ema: the file holds no state dict under "
                      "'state_dict_ema' (its keys: 'epoch', 'arch', 'state_dict')", r.stderr)


if __name__ == "__main__":
    if len(sys.argv) < 2 or not os.access(sys.argv[1], os.X_OK):
        sys.exit("usage: test_convert_torch.py PATH/TO/slidegrade [unittest args]")
    SLIDEGRADE = pathlib.Path(sys.argv.pop(1)).resolve()
    torch.set_num_threads(1)
    unittest.main(verbosity=2)
