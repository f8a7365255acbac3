"""The Pillow reader (JPEG, PNG, ...): draft decoding, 8- and 16-bit images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from imaging_helpers import CFG, dicom_file, pil_resize, save_png, small
from PIL import Image, JpegImagePlugin

from pipelines.imaging import (
    load_2d,
    read_dicom,
    to_uint8,
)


def test_jpeg_draft_path_is_close_to_full_decode(big_jpeg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scales = []
    original_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):  # type: ignore[no-untyped-def]
        result = original_draft(self, mode, size)
        scales.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    image = load_2d(big_jpeg, CFG)
    assert image.shape == (1, CFG.size_2d, CFG.size_2d, 1) and image.dtype == np.uint8
    assert scales == [(625, 750)]  # libjpeg decoded at 1/4 scale, still >= 512 on both sides

    with Image.open(big_jpeg) as full:
        reference = pil_resize(np.asarray(full.convert("L")), CFG.size_2d)
    difference = np.abs(image[0, :, :, 0].astype(np.float32) - reference)
    assert difference.mean() < 1.0 and np.percentile(difference, 99) <= 4


def test_jpeg_output_is_deterministic(big_jpeg: Path) -> None:
    assert np.array_equal(load_2d(big_jpeg, CFG), load_2d(big_jpeg, CFG))


def test_png_8bit_is_resized_without_windowing(tmp_path: Path, chest_u8: np.ndarray) -> None:
    path = save_png(tmp_path / "chest.png", chest_u8)
    image = load_2d(path, small(size_2d=256))
    assert image.shape == (1, 256, 256, 1)
    difference = np.abs(image[0, :, :, 0].astype(int) - pil_resize(chest_u8, 256).astype(int))
    assert difference.mean() < 0.5 and difference.max() <= 3  # only Pillow's reducing_gap shortcut differs


def test_png_16bit_is_windowed_by_percentiles(tmp_path: Path) -> None:
    hu, _ = read_dicom(dicom_file("CT_small.dcm"))
    stored = (hu + 1024).astype(np.uint16)  # 16-bit PNG of real CT values
    path = save_png(tmp_path / "ct16.png", stored)
    assert Image.open(path).mode == "I;16"
    image = load_2d(path, small(size_2d=128))[0, :, :, 0]  # 128 = native: no resampling
    expected = to_uint8(stored.astype(np.float32), CFG)
    assert np.array_equal(image, expected)
    assert image.min() == 0 and image.max() == 255



#: EXIF Orientation -> how the stored pixels are turned from the upright picture (the value tells a viewer to undo it)
STORED = {1: lambda a: a, 3: lambda a: a[::-1, ::-1], 6: lambda a: np.rot90(a, 1), 8: lambda a: np.rot90(a, -1)}


@pytest.mark.parametrize("orientation", sorted(STORED))
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int) -> None:
    """A photographed film stored sideways with EXIF Orientation lands upright."""
    upright = np.zeros((64, 96), np.uint8)
    upright[:16, :48] = 255  # a bright block top left
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(np.ascontiguousarray(STORED[orientation](upright))).save(tmp_path / "x.jpg", quality=95, exif=exif)
    image = load_2d(tmp_path / "x.jpg", small(size_2d=32))[0, :, :, 0].astype(np.float32)
    assert np.abs(image - pil_resize(upright, 32).astype(np.float32)).mean() < 8, f"orientation {orientation} not applied"
