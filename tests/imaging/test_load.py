"""Tests for pipelines.imaging on real images (pydicom-data DICOMs, the MNI152 template from nilearn's
data files) and on small files written to tmp_path."""

from __future__ import annotations

import dataclasses
import importlib.util
import io
import pickle
import shutil
import struct
import zlib
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image, JpegImagePlugin
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence

from pipelines.config import ImageConfig
from pipelines.imaging import (
    ConstantImage,
    DecompressionBomb,
    EmptyFile,
    EmptySeries,
    ImageError,
    MissingFile,
    NonFiniteImage,
    UndecodableImage,
    UnsupportedFormat,
    common_depth,
    fit_depth,
    load_2d,
    load_npy_images,
    load_volume,
    read_dicom,
    stack_sample,
    to_uint8,
)

CFG = ImageConfig()


def small(**sizes: int) -> ImageConfig:
    return dataclasses.replace(CFG, **sizes)


def dicom_file(name: str) -> Path:
    path = get_testdata_file(name)
    assert path is not None, f"pydicom-data lacks {name}"
    return Path(path)


def save_png(path: Path, array: np.ndarray) -> Path:
    Image.fromarray(array).save(path)
    return path


def pil_resize(array: np.ndarray, size: int) -> np.ndarray:
    return np.asarray(Image.fromarray(array).resize((size, size), Image.Resampling.BICUBIC))


@pytest.fixture(scope="module")
def chest_u8() -> np.ndarray:
    """RG1_UNCI (a real chest CR) as displayed uint8 [H, W]."""
    pixels, info = read_dicom(dicom_file("RG1_UNCI.dcm"))
    return to_uint8(pixels, CFG, info["display_range"])


@pytest.fixture(scope="module")
def big_jpeg(tmp_path_factory: pytest.TempPathFactory, chest_u8: np.ndarray) -> Path:
    """A 2500 x 3000 chest X-ray JPEG, the size of the benchmark images."""
    path = tmp_path_factory.mktemp("jpeg") / "chest.jpg"
    Image.fromarray(chest_u8).resize((2500, 3000), Image.Resampling.BICUBIC).save(path, quality=90)
    return path


# --------------------------------------------------------------------------------------------------
# 2D: JPEG, PNG, channels
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# DICOM
# --------------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------------
# NIfTI
# --------------------------------------------------------------------------------------------------


def test_nifti_is_reoriented_to_ras_and_shown_radiologically(tmp_path: Path) -> None:
    cfg = small(size_3d=8)
    rng = np.random.default_rng(0)
    ras = rng.integers(0, 100, (8, 8, 5)).astype(np.int16)
    ras[7, 7, 0] = 1000  # patient right, anterior, inferior
    nx, ny, nz = ras.shape
    lps_affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    lps_affine[:2, 3] = [nx - 1, ny - 1]
    zyx_affine = np.array([[0, 0, 1, 0], [0, 1, 0, 0], [-1, 0, 0, nz - 1], [0, 0, 0, 1]], float)
    variants = {
        "ras": nib.Nifti1Image(ras, np.eye(4)),
        "lps": nib.Nifti1Image(ras[::-1, ::-1, :].copy(), lps_affine),
        "zyx": nib.Nifti1Image(ras.transpose(2, 1, 0)[::-1].copy(), zyx_affine),
    }
    volumes = {}
    for name, image in variants.items():
        nib.save(image, tmp_path / f"{name}.nii.gz")
        volumes[name] = load_volume(tmp_path / f"{name}.nii.gz", cfg)
    assert np.array_equal(volumes["ras"], volumes["lps"])
    assert np.array_equal(volumes["ras"], volumes["zyx"])

    canonical = nib.as_closest_canonical(variants["zyx"]).get_fdata()
    display = np.stack([canonical[::-1, ::-1, k].T for k in range(nz)], axis=-1)
    assert np.array_equal(volumes["zyx"], to_uint8(display[None].astype(np.float32), cfg))
    assert volumes["ras"][0, 0, 0, 0] == 255  # row 0 anterior, column 0 patient right, slice 0 inferior

    nib.save(nib.Nifti1Image(ras, np.eye(4)), tmp_path / "plain.nii")  # uncompressed: memory-mapped
    assert np.array_equal(load_volume(tmp_path / "plain.nii", cfg), volumes["ras"])


def test_nifti_4d_uses_the_first_volume(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    first = rng.random((8, 8, 3)).astype(np.float32)
    series = np.stack([first, first[::-1]], axis=-1)
    nib.save(nib.Nifti1Image(series, np.eye(4)), tmp_path / "4d.nii.gz")
    nib.save(nib.Nifti1Image(first, np.eye(4)), tmp_path / "3d.nii.gz")
    cfg = small(size_3d=8)
    assert np.array_equal(load_volume(tmp_path / "4d.nii.gz", cfg), load_volume(tmp_path / "3d.nii.gz", cfg))


def test_mni_template_loads_at_full_size() -> None:
    (package,) = importlib.util.find_spec("nilearn").submodule_search_locations
    path = Path(package) / "datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
    volume = load_volume(path, CFG)
    assert volume.shape == (1, CFG.size_3d, CFG.size_3d, 189) and volume.dtype == np.uint8
    middle = volume[0, :, :, 90]
    assert middle[200:312, 200:312].mean() > 4 * middle[:40, :40].mean()  # brain vs background corner


# --------------------------------------------------------------------------------------------------
# Slice folders and .npy
# --------------------------------------------------------------------------------------------------


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


def test_very_deep_volume_is_averaged_in_slice_groups_while_reading(tmp_path: Path) -> None:
    depth = np.arange(40, dtype=np.uint8) * 5
    np.save(tmp_path / "deep.npy", np.broadcast_to(depth, (8, 8, 40)))
    cfg = small(size_3d=8, max_depth=4)  # bound 4 * max_depth = 16 slices -> groups of 3
    volume = load_volume(tmp_path / "deep.npy", cfg)
    assert volume.shape == (1, 8, 8, 14)
    assert volume[0, 0, 0].tolist() == [5 * (3 * j + 1) for j in range(13)] + [195]


def test_npy_2d_colour(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    np.save(tmp_path / "rgb.npy", rng.integers(0, 256, (40, 30, 3), dtype=np.uint8))
    assert load_2d(tmp_path / "rgb.npy", small(size_2d=32), "auto").shape == (3, 32, 32, 1)
    assert load_2d(tmp_path / "rgb.npy", small(size_2d=32)).shape == (1, 32, 32, 1)


# --------------------------------------------------------------------------------------------------
# Depth and samples
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("depths", "expected"),
    [
        ([1], 4), ([4], 4), ([6], 4), ([7], 8),  # below min_depth, exact, tie -> smaller, nearest
        ([10, 30], 28), ([31], 32), ([62], 60), ([63], 64),  # max of the sample decides
        ([65], 64), ([500], 64),  # beyond max_depth
    ],
)
def test_common_depth(depths: list[int], expected: int) -> None:
    assert common_depth(depths, CFG) == expected


def column(values: list[int]) -> np.ndarray:
    return np.array(values, np.uint8).reshape(1, 1, 1, -1)


def test_fit_depth_shrinks_by_area_grows_linearly_and_replicates() -> None:
    assert fit_depth(column([0, 10, 20, 30, 40, 50, 60, 70]), 4).ravel().tolist() == [5, 25, 45, 65]
    assert fit_depth(column([0, 30, 60]), 2).ravel().tolist() == [10, 50]  # 1.5 slices per output
    assert fit_depth(column([0, 100]), 4).ravel().tolist() == [0, 25, 75, 100]
    assert fit_depth(column([7]), 4).ravel().tolist() == [7, 7, 7, 7]
    volume = np.random.default_rng(4).integers(0, 256, (3, 5, 5, 24), dtype=np.uint8)
    fitted = fit_depth(volume, 8)
    assert fitted.shape == (3, 5, 5, 8) and fitted.dtype == np.uint8
    assert abs(float(fitted.mean()) - float(volume.mean())) < 0.5
    assert fit_depth(volume, 24) is volume


def test_stack_sample_2d_and_3d() -> None:
    cfg = small(size_2d=8, size_3d=8)
    rng = np.random.default_rng(5)
    grey = rng.integers(0, 256, (1, 8, 8, 1), dtype=np.uint8)
    colour = rng.integers(0, 256, (3, 8, 8, 1), dtype=np.uint8)
    sample = stack_sample([grey, colour], cfg, "2d")
    assert sample.shape == (2, 3, 8, 8, 1) and np.array_equal(sample[0, 2], grey[0])

    volumes = [rng.integers(0, 256, (1, 8, 8, depth), dtype=np.uint8) for depth in (10, 30)]
    stacked = stack_sample([*volumes, grey], cfg, "3d")
    assert stacked.shape == (3, 1, 8, 8, 28) and stacked.dtype == np.uint8
    assert np.all(stacked[2] == grey[..., :1])  # the 2D image is replicated through depth

    with pytest.raises(EmptySeries):
        stack_sample([], cfg, "3d")
    with pytest.raises(ValueError):
        stack_sample([volumes[0]], cfg, "2d")


# --------------------------------------------------------------------------------------------------
# Intensity and typed errors
# --------------------------------------------------------------------------------------------------


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


def test_empty_folders_raise_empty_series(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmptySeries, match="empty"):
        load_volume(tmp_path / "empty", CFG)
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "report.txt").write_text("no images here")
    with pytest.raises(EmptySeries):
        load_volume(tmp_path / "texts", CFG)


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


def test_dicom_without_pixel_data_is_undecodable(tmp_path: Path) -> None:
    ds = pydicom.dcmread(dicom_file("CT_small.dcm"))
    del ds.PixelData
    ds.save_as(tmp_path / "no_pixels.dcm")
    with pytest.raises(UndecodableImage, match="no pixel data"):
        load_2d(tmp_path / "no_pixels.dcm", CFG)
    shutil.copy(dicom_file("CT_small.dcm"), tmp_path / "renamed.jpg")  # content decides, not the name
    assert load_2d(tmp_path / "renamed.jpg", CFG).shape == (1, CFG.size_2d, CFG.size_2d, 1)
