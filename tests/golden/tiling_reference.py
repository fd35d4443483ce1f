#!/usr/bin/python3
"""Writes tests/golden/data/tiling_reference.h5: the "N tiles of S px" recipe in NumPy, the way
the PANDA notebooks (iafoss) write it, for the C++ tiler (data/tiler.h) to reproduce exactly.

    /usr/bin/python3 tests/golden/tiling_reference.py

The recipe: pad with 255, half before and the rest after; cut row-major with reshape/transpose;
append white tiles when there are fewer than N; keep the N smallest sums with a stable argsort.
The half-offset variant pads floor(S/2) more before and the least padding after that completes
the last tile (the definition in data/tiler.h).

Datasets: image [H, W, 3] uint8 (the input), and per case "<case>/": indices [N] (cell index in
the padded grid, row-major; >= rows*cols for white filler), sums [N], tiles [N, S, S, 3],
pad [4] (top, bottom, left, right), grid [2] (rows, cols), spec [3] (N, S, half_offset); tiles
are left out for the cases in WITHOUT_TILES.
"""
import pathlib

import h5py
import numpy as np

HERE = pathlib.Path(__file__).resolve().parent


def padding(length, size, half_offset):
    plain = (size - length % size) % size
    before = plain // 2
    if not half_offset:
        return before, plain - before
    before += size // 2
    return before, (size - (length + before) % size) % size


def tile(img, n, size, half_offset=False):
    h, w, c = img.shape
    top, bottom = padding(h, size, half_offset)
    left, right = padding(w, size, half_offset)
    img = np.pad(img, [[top, bottom], [left, right], [0, 0]], constant_values=255)
    rows, cols = img.shape[0] // size, img.shape[1] // size
    tiles = img.reshape(rows, size, cols, size, c).transpose(0, 2, 1, 3, 4).reshape(-1, size, size, c)
    if len(tiles) < n:
        tiles = np.pad(tiles, [[0, n - len(tiles)], [0, 0], [0, 0], [0, 0]], constant_values=255)
    sums = tiles.reshape(tiles.shape[0], -1).sum(-1, dtype=np.int64)
    assert sums.max() < 2**32
    idxs = np.argsort(sums, kind="stable")[:n]
    return dict(indices=idxs, sums=sums[idxs], tiles=tiles[idxs], pad=np.array([top, bottom, left, right]),
                grid=np.array([rows, cols]), spec=np.array([n, size, int(half_offset)]))


def make_image(rng, height, width):
    """White glass with a few pinkish blobs, lightly noisy; a flat block of whole cells (equal sums,
    the darkest: ties among the chosen tiles); a stripe of faint colour."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float64)
    img = np.full((height, width, 3), 255.0)
    tissue = np.zeros((height, width))
    for _ in range(5):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        r = rng.uniform(15, 45)
        weight = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
        colour = np.array([rng.uniform(150, 230), rng.uniform(60, 140), rng.uniform(130, 210)])
        img = img * (1 - weight[..., None]) + colour * weight[..., None]
        tissue = np.maximum(tissue, weight)
    # Noise on tissue only (glass stays 255, which also keeps the file small).
    img += rng.integers(-1, 2, size=img.shape) * (tissue > 0.3)[..., None]
    # A flat block covering whole cells of the plain S = 32 grid (rows 1-2, cols 1-3: pad top 10, left 9).
    img[22:86, 23:119] = (120, 60, 110)
    img[150:160, :] = np.minimum(img[150:160, :], 240)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


# Cases whose tiles are left out to keep the file small (the test checks those tiles against the
# image through their placements).
WITHOUT_TILES = ("n100_s32", "n12_s50")


def main():
    rng = np.random.default_rng(20260501)
    image = make_image(rng, 203, 301)  # odd paddings at S = 32: top 10 / bottom 11, left 9 / right 10
    cases = {
        "n16_s32": tile(image, 16, 32),
        "n100_s32": tile(image, 100, 32),  # 7 x 10 = 70 cells: 30 white filler tiles
        "n16_s32_half": tile(image, 16, 32, half_offset=True),
        "n9_s50_half": tile(image, 9, 50, half_offset=True),  # odd S / 2
        "n12_s50": tile(image, 12, 50),
    }
    path = HERE / "data" / "tiling_reference.h5"
    path.parent.mkdir(exist_ok=True)
    with h5py.File(path, "w") as f:
        f.attrs["format_version"] = np.int64(1)
        f.attrs["generator"] = "tests/golden/tiling_reference.py"
        f.create_dataset("image", data=image, compression="gzip", compression_opts=9)
        for name, case in cases.items():
            if name in WITHOUT_TILES:
                del case["tiles"]
            for key, value in case.items():
                kwargs = dict(compression="gzip", compression_opts=9) if value.ndim > 1 else {}
                f.create_dataset(f"{name}/{key}", data=value, **kwargs)
    print(f"wrote {path} ({path.stat().st_size} bytes)")
    for name, case in cases.items():
        print(name, "grid", case["grid"], "pad", case["pad"], "indices", case["indices"][:8], "sums", case["sums"][:4])


if __name__ == "__main__":
    main()
