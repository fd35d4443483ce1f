#!/usr/bin/python3
"""Goldens for data/stain_jitter: scikit-image's H&E colour deconvolution on a few colours.

Run with Debian's interpreter (it has scikit-image): /usr/bin/python3 make_stain_golden.py
Writes, next to this script:
  stain_rgb.npy        uint8 [1, N, 3]   the input colours (H&E-like, white, black, saturated, tissue-like, random)
  stain_hed.npy        float64 [1, N, 3] skimage.color.rgb2hed(rgb) (negative concentrations clamped to 0)
  stain_params.npy     float32 [4]       alpha_H, alpha_E, beta_H, beta_E
  stain_jittered.npy   float64 [1, N, 3] hed2rgb(hed with H, E -> alpha * c + beta), RGB in [0, 1]
"""
import os

import numpy as np
import skimage
from skimage.color import hed2rgb, rgb2hed

here = os.path.dirname(os.path.abspath(__file__))
fixed = [
    [230, 170, 210], [180, 100, 170], [120, 60, 150], [90, 40, 120], [200, 120, 160],  # H&E-like
    [250, 220, 235], [255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255], [128, 128, 128],
]
rng = np.random.default_rng(5)
tissue = np.stack([rng.integers(150, 241, 8), rng.integers(60, 191, 8), rng.integers(130, 231, 8)], axis=1)
colours = np.concatenate([np.array(fixed), tissue, rng.integers(0, 256, size=(4, 3))]).astype(np.uint8)[None]
params = np.array([1.1, 0.9, 0.01, -0.005], dtype=np.float32)

hed = rgb2hed(colours)
jittered_hed = hed.copy()
jittered_hed[..., 0] = params[0].astype(np.float64) * hed[..., 0] + params[2].astype(np.float64)
jittered_hed[..., 1] = params[1].astype(np.float64) * hed[..., 1] + params[3].astype(np.float64)
jittered = hed2rgb(jittered_hed)

np.save(os.path.join(here, "stain_rgb.npy"), colours)
np.save(os.path.join(here, "stain_hed.npy"), hed.astype(np.float64))
np.save(os.path.join(here, "stain_params.npy"), params)
np.save(os.path.join(here, "stain_jittered.npy"), jittered.astype(np.float64))
print("scikit-image", skimage.__version__, "colours", colours.shape[1])
