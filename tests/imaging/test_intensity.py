"""Intensity and channels: windowing to uint8, grey / rgb / auto."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from imaging_helpers import CFG, dicom_file, save_png

from pipelines.imaging import (
    ConstantImage,
    load_2d,
    to_uint8,
)


def test_to_uint8() -> None:
    image = np.arange(256, dtype=np.uint8).reshape(16, 16)
    assert to_uint8(image, CFG) is image
    ramp = np.linspace(-1000, 1000, 2001, dtype=np.float32)
    windowed = to_uint8(ramp, CFG, window=(0.0, 100.0))
    assert windowed[:1000].max() == 0 and windowed[1100:].min() == 255 and windowed[1050] == 128
    spike = np.zeros(10_000, np.float32)
    spike[:3] = 5.0  # percentiles coincide: falls back to min/max instead of calling it constant
    assert to_uint8(spike, CFG).max() == 255
    with pytest.raises(ConstantImage):
        to_uint8(np.full((4, 4), 7, np.uint8), CFG)
    with pytest.raises(ConstantImage):
        to_uint8(ramp, CFG, window=(2000.0, 3000.0))


def test_channels_grey_rgb_auto(tmp_path: Path, chest_u8: np.ndarray) -> None:
    grey_as_rgb = save_png(tmp_path / "grey_rgb.png", np.repeat(chest_u8[:600, :600, None], 3, axis=2))
    assert load_2d(grey_as_rgb, CFG, "auto").shape[0] == 1
    rgb = load_2d(grey_as_rgb, CFG, "rgb")
    assert rgb.shape[0] == 3 and np.array_equal(rgb[0], rgb[2])
    assert np.array_equal(load_2d(grey_as_rgb, CFG, "grey"), rgb[:1])

    colour = dicom_file("US1_UNCR.dcm")  # real colour Doppler ultrasound
    assert load_2d(colour, CFG, "auto").shape == (3, CFG.size_2d, CFG.size_2d, 1)
    assert load_2d(colour, CFG, "grey").shape == (1, CFG.size_2d, CFG.size_2d, 1)
    with pytest.raises(ValueError):
        load_2d(colour, CFG, "colour")

