"""The loaders: a sample's images loaded as their references say (``load_as``), content before file names."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from imaging_helpers import CFG, dicom_file, save_png, small

from pipelines.imaging import UnsupportedFormat, load_2d, load_images, load_npy_images, load_volume, stack_sample
from pipelines.records import ImageRef


def test_load_images_follows_load_as_and_reads_an_npy_once(tmp_path: Path, chest_u8: np.ndarray, monkeypatch) -> None:
    cfg = small(size_2d=32, size_3d=32)
    save_png(tmp_path / "a.png", chest_u8[:200, :200])
    (tmp_path / "series").mkdir()
    for k in range(3):
        save_png(tmp_path / "series" / f"{k}.png", chest_u8[100 * k : 100 * k + 150, :150])
    rng = np.random.default_rng(0)
    np.save(tmp_path / "case.npy", rng.integers(0, 255, (2, 1, 16, 16, 4), dtype=np.uint8))
    refs = [ImageRef("a.png", "image2d"), ImageRef("series", "volume"), ImageRef("case.npy", "npy", 1),
            ImageRef("case.npy", "npy", 0)]
    import pipelines.imaging.load as load

    calls = []
    real = load.load_npy_images
    monkeypatch.setattr(load, "load_npy_images", lambda *a, **k: calls.append(a) or real(*a, **k))
    images = load_images(tmp_path, refs, cfg, "3d")
    assert len(calls) == 1  # both series from one read
    assert images[0].shape == (1, 32, 32, 1) and np.array_equal(images[0], load_2d(tmp_path / "a.png", cfg))
    assert np.array_equal(images[1], load_volume(tmp_path / "series", cfg))
    series = load_npy_images(tmp_path / "case.npy", cfg, "3d")
    assert np.array_equal(images[2], series[1]) and np.array_equal(images[3], series[0])
    assert stack_sample(images, cfg, "3d").shape == (4, 1, 32, 32, 4)
    with pytest.raises(UnsupportedFormat, match="series 5 requested, file holds 2"):
        load_images(tmp_path, [ImageRef("case.npy", "npy", 5)], cfg, "3d")


def test_content_decides_not_the_file_name(tmp_path: Path) -> None:
    shutil.copy(dicom_file("CT_small.dcm"), tmp_path / "renamed.jpg")
    assert load_2d(tmp_path / "renamed.jpg", CFG).shape == (1, CFG.size_2d, CFG.size_2d, 1)
