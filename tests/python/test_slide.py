"""Slide, tile() and synth() on the session's synthetic slides."""
import numpy as np
import pytest

import slidegrade


def first_slide(dataset):
    data, info = dataset
    return data / "train_images" / (info["train"][0]["image_id"] + ".tiff")


def test_synth_lists_what_it_wrote(dataset):
    data, info = dataset
    assert len(info["train"]) == 12 and len(info["test"]) == 4
    assert {s["isup_grade"] for s in info["train"]} == set(range(6))
    for s in info["train"]:
        assert (data / "train_images" / (s["image_id"] + ".tiff")).is_file()
        assert (data / "train_label_masks" / (s["image_id"] + "_mask.tiff")).is_file()
    assert (data / "train.csv").is_file() and (data / "test_truth.csv").is_file()


def test_synth_bad_arguments(tmp_path):
    with pytest.raises(slidegrade.ArgumentError, match="must not be negative"):
        slidegrade.synth(tmp_path, slides=-1)
    with pytest.raises(slidegrade.Error, match="256"):
        slidegrade.synth(tmp_path, slides=1, width=100)


def test_slide_properties(dataset):
    with slidegrade.Slide(first_slide(dataset)) as slide:
        assert slide.dimensions == (1024, 512)
        assert slide.level_count >= 2
        assert slide.level_dimensions[0] == (1024, 512)
        assert slide.level_dimensions[1] == (256, 128)
        assert slide.level_downsamples[:2] == pytest.approx((1.0, 4.0))
        assert isinstance(slide.properties, dict) and slide.properties["openslide.vendor"] == slide.vendor
        mpp = slide.mpp
        assert mpp is None or (mpp[0] > 0 and mpp[1] > 0)
        assert "1024x512" in repr(slide)


def test_read_region(dataset):
    with slidegrade.Slide(first_slide(dataset)) as slide:
        region = slide.read_region((0, 0), 0, (100, 50))
        assert region.shape == (50, 100, 3) and region.dtype == np.uint8
        whole = slide.read_level(1)
        assert whole.shape == (128, 256, 3)
        # level-0 location (400, 200) is level-1 pixel (100, 50)
        np.testing.assert_array_equal(slide.read_region((400, 200), 1, (20, 10)), whole[50:60, 100:120])
        outside = slide.read_region((5000, 5000), 0, (8, 8))
        assert (outside == 255).all()


def test_closed_slide_raises(dataset):
    slide = slidegrade.Slide(first_slide(dataset))
    slide.close()
    assert slide.closed and "closed" in repr(slide)
    with pytest.raises(slidegrade.Error, match="closed"):
        slide.read_region((0, 0), 0, (4, 4))


def test_bad_slides(tmp_path):
    with pytest.raises(slidegrade.Error, match="no such file"):
        slidegrade.Slide(tmp_path / "missing.tiff")
    junk = tmp_path / "junk.tiff"
    junk.write_bytes(b"not a slide at all" * 100)
    with pytest.raises(slidegrade.Error, match="junk.tiff"):
        slidegrade.Slide(junk)
    with pytest.raises(slidegrade.Error, match="junk.tiff"):
        slidegrade.tile(junk, level=1, tiles=4, size=32)


def test_tile_mosaic_and_placements(dataset):
    path = first_slide(dataset)
    mosaic, placements = slidegrade.tile(path, level=1, tiles=4, size=32)
    assert mosaic.shape == (64, 64, 3) and mosaic.dtype == np.uint8
    assert len(placements) == 4
    sums = [p["pixel_sum"] for p in placements]
    assert sums == sorted(sums)  # most tissue (darkest) first
    with slidegrade.Slide(path) as slide:
        level = slide.read_level(1)
    first = placements[0]
    assert not first["white_filler"]
    np.testing.assert_array_equal(mosaic[:32, :32], level[first["y"]:first["y"] + 32, first["x"]:first["x"] + 32])
    wide, _ = slidegrade.tile(path, level=1, tiles=4, size=32, rows=1, cols=4)
    assert wide.shape == (32, 128, 3)
    with pytest.raises(slidegrade.ArgumentError, match="tiles 0"):
        slidegrade.tile(path, tiles=0)


def test_png_round_trip(dataset, tmp_path):
    mosaic, _ = slidegrade.tile(first_slide(dataset), level=1, tiles=4, size=32)
    slidegrade.write_png(tmp_path / "mosaic.png", mosaic)
    np.testing.assert_array_equal(slidegrade.read_png(tmp_path / "mosaic.png"), mosaic)
    grey = mosaic[:, :, 0].copy()
    slidegrade.write_png(tmp_path / "grey.png", grey)
    np.testing.assert_array_equal(slidegrade.read_png(tmp_path / "grey.png")[:, :, 0], grey)
    with pytest.raises(slidegrade.ArgumentError, match="height, width"):
        slidegrade.write_png(tmp_path / "bad.png", np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(slidegrade.Error, match="missing.png"):
        slidegrade.read_png(tmp_path / "missing.png")
