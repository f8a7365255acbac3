"""The DICOM reader: LUTs, windows, MONOCHROME1, compressed syntaxes, multi-frame files, series order."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from imaging_helpers import CFG, dicom_file, pil_resize, small
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from pipelines.imaging import (
    UndecodableImage,
    UnsupportedFormat,
    load_2d,
    load_volume,
    read_dicom,
)


def test_monochrome1_is_inverted_so_lungs_are_dark() -> None:
    path = dicom_file("RG1_UNCI.dcm")
    image = load_2d(path, CFG)[0, :, :, 0].astype(np.float32)
    rows = slice(150, 350)
    mediastinum = image[rows, 236:276].mean()
    lungs = (image[rows, 100:180].mean() + image[rows, 332:412].mean()) / 2
    assert mediastinum > lungs + 20

    raw = pil_resize(pydicom.dcmread(path).pixel_array.astype(np.float32), CFG.size_2d)
    assert np.corrcoef(raw.ravel(), image.ravel())[0, 1] < -0.9


def test_jpeg2000_dicom_decodes_like_the_uncompressed_file() -> None:
    compressed, info = read_dicom(dicom_file("RG1_J2KR.dcm"))
    plain, plain_info = read_dicom(dicom_file("RG1_UNCR.dcm"))
    assert info["transfer_syntax"] == "1.2.840.10008.1.2.4.90" != plain_info["transfer_syntax"]
    assert compressed.dtype == np.float32 and compressed.shape == (1955, 1841)
    assert np.array_equal(compressed, plain)  # lossless J2K


def test_ct_modality_lut_gives_hounsfield_units() -> None:
    path = dicom_file("CT_small.dcm")
    hu, info = read_dicom(path)
    ds = pydicom.dcmread(path)
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    assert info["modality"] == "CT" and info["voi"] is None and info["display_range"] is None
    assert np.array_equal(hu, expected.astype(np.float32))
    assert hu.min() < -800 and hu.max() > 500  # air and bone


def test_dicom_window_is_applied_and_scaled_to_its_output_range() -> None:
    path = dicom_file("MR_small.dcm")  # Window 600/1600, signed 16-bit
    image = load_2d(path, small(size_2d=64))[0, :, :, 0]
    _, info = read_dicom(path)
    assert info["voi"] == "window" and info["window"] == (600.0, 1600.0)
    raw = pydicom.dcmread(path).pixel_array.astype(np.float64)
    # DICOM LINEAR window: center - 0.5, width - 1
    expected = np.rint(np.clip((raw - 599.5) / 1599 + 0.5, 0, 1) * 255)
    assert np.abs(image.astype(np.float64) - expected).max() <= 1


def test_dicom_voi_lut_sequence_is_applied_after_the_modality_lut(tmp_path: Path) -> None:
    ds = pydicom.dcmread(dicom_file("CT_small.dcm"))
    lut = Dataset()
    lut.add_new(0x00283002, "US", [256, 0, 16])  # LUTDescriptor: 256 entries from HU 0, 16-bit
    lut.add_new(0x00283006, "US", [min(4 * hu, 1000) for hu in range(256)])  # LUTData, tops at 1000
    ds.VOILUTSequence = DicomSequence([lut])
    ds.save_as(tmp_path / "voi.dcm")
    _, info = read_dicom(tmp_path / "voi.dcm")
    assert info["voi"] == "lut" and info["display_range"] == (0.0, 1000.0)  # the LUT's real range
    image = load_2d(tmp_path / "voi.dcm", small(size_2d=128))[0, :, :, 0]
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    expected = np.rint(np.minimum(4 * np.clip(hu, 0, 255), 1000) / 1000 * 255)
    assert np.array_equal(image, expected.astype(np.uint8))


def test_multiframe_dicom_is_a_volume_not_a_2d_image() -> None:
    path = dicom_file("emri_small.dcm")  # 10 frames
    with pytest.raises(UnsupportedFormat, match="emri_small"):
        load_2d(path, CFG)
    assert load_volume(path, small(size_3d=64)).shape == (1, 64, 64, 10)


def write_ct_series(folder: Path, positions: list[float], names: list[str], numbers: list[int]) -> None:
    """CT_small copies at the given z positions; slice content rises with position."""
    source = pydicom.dcmread(dicom_file("CT_small.dcm"))
    pixels = source.pixel_array
    rank = np.argsort(np.argsort(positions))
    folder.mkdir()
    for z, name, number, k in zip(positions, names, numbers, rank):
        ds = source.copy()
        ds.ImagePositionPatient = [0.0, 0.0, z]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.InstanceNumber = number
        ds.PixelData = (pixels + 300 * int(k)).astype(pixels.dtype).tobytes()
        ds.save_as(folder / name)


def slice_means(volume: np.ndarray) -> np.ndarray:
    return volume[0].mean(axis=(0, 1))


def test_dicom_series_is_ordered_by_position_then_instance_number(tmp_path: Path) -> None:
    cfg = small(size_3d=128)
    positions = [30.0, -10.0, 50.0, 10.0]  # shuffled against names and instance numbers
    numbers = [1, 4, 2, 3]
    write_ct_series(tmp_path / "series", positions, ["IM3", "IM1", "IM10", "IM2"], numbers)
    (tmp_path / "series" / "notes.txt").write_text("not a slice")
    volume = load_volume(tmp_path / "series", cfg)
    assert volume.shape == (1, 128, 128, 4)
    assert np.all(np.diff(slice_means(volume)) > 0)

    for path in (tmp_path / "series").glob("IM*"):  # no positions: fall back to InstanceNumber
        ds = pydicom.dcmread(path)
        del ds.ImagePositionPatient
        ds.save_as(path)
    by_number = slice_means(load_volume(tmp_path / "series", cfg))
    rank = np.argsort(np.argsort(positions))
    assert np.array_equal(np.argsort(by_number), rank[np.argsort(numbers)].argsort())


def test_corrupt_dicom_slice_is_named(tmp_path: Path) -> None:
    write_ct_series(tmp_path / "series", [0.0, 5.0], ["a.dcm", "b.dcm"], [1, 2])
    data = (tmp_path / "series" / "b.dcm").read_bytes()
    (tmp_path / "series" / "b.dcm").write_bytes(data[:-4000])
    with pytest.raises(UndecodableImage, match="b.dcm"):
        load_volume(tmp_path / "series", small(size_3d=128))


def test_dicom_without_pixel_data_is_undecodable(tmp_path: Path) -> None:
    ds = pydicom.dcmread(dicom_file("CT_small.dcm"))
    del ds.PixelData
    ds.save_as(tmp_path / "no_pixels.dcm")
    with pytest.raises(UndecodableImage, match="no pixel data"):
        load_2d(tmp_path / "no_pixels.dcm", CFG)
    shutil.copy(dicom_file("CT_small.dcm"), tmp_path / "renamed.jpg")  # content decides, not the name
    assert load_2d(tmp_path / "renamed.jpg", CFG).shape == (1, CFG.size_2d, CFG.size_2d, 1)



def test_pixel_data_larger_than_the_header_says_is_undecodable(tmp_path: Path) -> None:
    """pydicom returns extra 'frames' when Rows x Columns is smaller than the pixel data: a wrong image, refused."""
    ds = pydicom.dcmread(dicom_file("CT_small.dcm"))
    ds.Rows, ds.Columns = 32, 32
    ds.save_as(tmp_path / "short.dcm")
    with pytest.raises(UndecodableImage, match=r"decodes to \[16, 32, 32\], the header says 32 rows x 32 columns x 1"):
        read_dicom(tmp_path / "short.dcm")
    with pytest.raises(UndecodableImage):
        load_2d(tmp_path / "short.dcm", CFG)


def test_a_bug_in_our_dicom_code_is_not_reported_as_undecodable(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipelines.imaging.readers import dicom

    monkeypatch.setattr(dicom, "_photometric", lambda ds: None)  # read_dicom then calls None.startswith: our bug
    with pytest.raises(AttributeError, match="startswith"):
        read_dicom(dicom_file("CT_small.dcm"))
