"""The .npy reader: RadFM's processed multi-series files, 2D colour arrays."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from imaging_helpers import small

from pipelines.imaging import (
    UnsupportedFormat,
    load_2d,
    load_npy_images,
    load_volume,
    to_uint8,
)


def test_radfm_npy_collapses_repeated_grey_channels(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    grey = rng.normal(0, 100, (2, 16, 16, 6)).astype(np.float32)
    radfm = np.repeat(grey[:, None], 3, axis=1)  # [S, 3, H, W, Z]
    np.save(tmp_path / "case.npy", radfm)
    cfg = small(size_3d=16)
    images = load_npy_images(tmp_path / "case.npy", cfg, "3d")
    assert [image.shape for image in images] == [(1, 16, 16, 6)] * 2
    assert np.array_equal(images[1], to_uint8(grey[1][None], cfg))  # each series windowed alone
    rgb = load_npy_images(tmp_path / "case.npy", cfg, "3d", channels="rgb")
    assert rgb[0].shape == (3, 16, 16, 6) and np.array_equal(rgb[0][0], rgb[0][1])

    with pytest.raises(UnsupportedFormat, match="depth 6"):
        load_npy_images(tmp_path / "case.npy", cfg, "2d")
    with pytest.raises(UnsupportedFormat, match="load_npy_images"):
        load_volume(tmp_path / "case.npy", cfg)
    np.save(tmp_path / "one.npy", grey[0])
    assert load_volume(tmp_path / "one.npy", cfg).shape == (1, 16, 16, 6)


def test_npy_2d_colour(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    np.save(tmp_path / "rgb.npy", rng.integers(0, 256, (40, 30, 3), dtype=np.uint8))
    assert load_2d(tmp_path / "rgb.npy", small(size_2d=32), "auto").shape == (3, 32, 32, 1)
    assert load_2d(tmp_path / "rgb.npy", small(size_2d=32)).shape == (1, 32, 32, 1)

