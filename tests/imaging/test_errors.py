"""Typed errors: reasons, file names, pickling, hostile and corrupt inputs, decompression bombs."""

from __future__ import annotations

import io
import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
from imaging_helpers import CFG, dicom_file, save_png, small
from PIL import Image

from pipelines.imaging import (
    ConstantImage,
    DecompressionBomb,
    EmptyFile,
    ImageError,
    MissingFile,
    NonFiniteImage,
    UndecodableImage,
    UnsupportedFormat,
    load_2d,
    load_volume,
    read_dicom,
)


def test_errors_carry_reason_path_and_pickle(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.png"
    with pytest.raises(MissingFile) as caught:
        load_2d(missing, CFG)
    error = caught.value
    assert isinstance(error, ImageError) and error.reason == "missing_file" and str(missing) in str(error)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is MissingFile and str(copy) == str(error)
    message_only = pickle.loads(pickle.dumps(UnsupportedFormat(f"{missing}: series 3 requested")))
    assert message_only.path is None and str(message_only) == f"{missing}: series 3 requested"
    with pytest.raises(MissingFile):
        load_volume(tmp_path / "no_folder", CFG)


def test_corrupt_inputs_raise_typed_errors(tmp_path: Path, big_jpeg: Path) -> None:
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(big_jpeg.read_bytes()[:20_000])
    with pytest.raises(UndecodableImage, match="truncated.jpg"):
        load_2d(truncated, CFG)

    noise = tmp_path / "noise.jpg"
    noise.write_bytes(np.random.default_rng(6).bytes(5000))
    with pytest.raises(UndecodableImage, match="noise.jpg"):
        load_2d(noise, CFG)

    empty = tmp_path / "empty.png"
    empty.touch()
    with pytest.raises(EmptyFile, match="empty.png"):
        load_2d(empty, CFG)

    nan = np.ones((32, 32), np.float32)
    nan[3, 4] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    with pytest.raises(NonFiniteImage, match="nan.npy"):
        load_2d(tmp_path / "nan.npy", small(size_2d=16))

    with pytest.raises(ConstantImage, match="flat.png"):
        load_2d(save_png(tmp_path / "flat.png", np.full((50, 40), 90, np.uint8)), CFG)
    np.save(tmp_path / "flat.npy", np.full((4, 4, 4), 3.5))
    with pytest.raises(ConstantImage):
        load_volume(tmp_path / "flat.npy", small(size_3d=4))


def png_claiming(width: int, height: int) -> bytes:
    """A valid 1x1 PNG whose IHDR (CRC fixed) claims ``width x height``."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def test_decompression_bombs_are_refused_before_decoding(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_claiming(100_000, 100_000))
    with pytest.raises(DecompressionBomb, match="bomb.png"):
        load_2d(bomb, CFG)

    # The configured limit decides, also below Pillow's own threshold.
    with pytest.raises(DecompressionBomb, match="max_pixels"):
        load_2d(save_png(tmp_path / "ok.png", np.zeros((40, 50), np.uint8)), small(max_pixels=1000))

    ds = pydicom.dcmread(dicom_file("CT_small.dcm"))
    ds.Rows = ds.Columns = 60_000
    ds.save_as(tmp_path / "huge.dcm")
    with pytest.raises(DecompressionBomb, match="huge.dcm"):
        read_dicom(tmp_path / "huge.dcm")
    with pytest.raises(DecompressionBomb):
        load_volume(dicom_file("emri_small.dcm"), small(max_voxels=64 * 64 * 9))

