"""Slice folders: natural order, other files ignored, per-slice resizing, empty folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from imaging_helpers import CFG, save_png, small
from PIL import Image

from pipelines.imaging import (
    EmptySeries,
    UndecodableImage,
    load_volume,
)


def test_slice_folder_uses_natural_sort_and_ignores_other_files(tmp_path: Path) -> None:
    folder = tmp_path / "CT_0"
    folder.mkdir()
    for name, value in (("1.png", 10), ("10.png", 100), ("2.png", 20)):
        save_png(folder / name, np.full((8, 8), value, np.uint8))
    (folder / ".DS_Store").write_bytes(b"\x00\x01junk")
    (folder / "caption.txt").write_text("not a slice")
    (folder / "sub").mkdir()
    volume = load_volume(folder, small(size_3d=8))
    assert volume.shape == (1, 8, 8, 3)
    assert volume[0, 4, 4].tolist() == [10, 20, 100]


def test_slice_folder_resizes_each_slice_and_names_a_corrupt_one(
    tmp_path: Path, chest_u8: np.ndarray
) -> None:
    folder = tmp_path / "series"
    folder.mkdir()
    save_png(folder / "0.png", chest_u8[:300, :200])
    Image.fromarray(chest_u8[:500, :400]).save(folder / "1.jpg")
    assert load_volume(folder, small(size_3d=64)).shape == (1, 64, 64, 2)
    (folder / "2.jpg").write_bytes((folder / "1.jpg").read_bytes()[:2000])
    with pytest.raises(UndecodableImage, match="2.jpg"):
        load_volume(folder, small(size_3d=64))


def test_empty_folders_raise_empty_series(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptySeries, match="empty"):
        load_volume(tmp_path / "empty", CFG)
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "report.txt").write_text("no images here")
    with pytest.raises(EmptySeries):
        load_volume(tmp_path / "texts", CFG)



def test_a_series_mixing_grey_and_colour_slices_is_stacked_in_colour(tmp_path: Path) -> None:
    """One annotated slice saved in colour among grey ones: a colour volume with auto, a grey one with grey."""
    folder = tmp_path / "series"
    folder.mkdir()
    base = (np.add.outer(np.arange(48), np.arange(48)) * 2).astype(np.uint8)
    for k in range(4):
        if k == 2:
            Image.fromarray(np.stack([base, base, 255 - base], axis=-1)).save(folder / f"{k}.png")
        else:
            Image.fromarray(base + k).save(folder / f"{k}.png")
    cfg = small(size_3d=32)
    assert load_volume(folder, cfg, channels="auto").shape == (3, 32, 32, 4)
    assert load_volume(folder, cfg, channels="grey").shape == (1, 32, 32, 4)
    grey_first = load_volume(folder, cfg, channels="auto")
    assert np.array_equal(grey_first[0, :, :, 0], grey_first[2, :, :, 0])  # the grey slices repeated
