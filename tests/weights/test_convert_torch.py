#!/usr/bin/python3
"""weights/convert_torch.py and `slidegrade forward` against torchvision (registered in ctest).

    /usr/bin/python3 tests/weights/test_convert_torch.py PATH/TO/slidegrade [unittest args]

A torchvision efficientnet_b0 (torch's own seeded init, randomised BN statistics and affine
parameters, 6 outputs) is saved, converted, run by `slidegrade forward`, and its logits compared
with torchvision's: max |ours - torch| <= 1e-4 * max |torch|. Bad inputs must exit 1 naming the
file and the tensor.
"""
import os
import pathlib
import subprocess
import sys
import tempfile
import unittest

import h5py
import numpy as np
import torch
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


if __name__ == "__main__":
    if len(sys.argv) < 2 or not os.access(sys.argv[1], os.X_OK):
        sys.exit("usage: test_convert_torch.py PATH/TO/slidegrade [unittest args]")
    SLIDEGRADE = pathlib.Path(sys.argv.pop(1)).resolve()
    torch.set_num_threads(1)
    unittest.main(verbosity=2)
