"""DICOM: single-frame and multi-frame files, and folders of single-frame slices (a series).

Grey images go through the modality LUT (e.g. Hounsfield units), then the VOI LUT / window when the file has one,
and MONOCHROME1 is inverted (high = bright). Compressed transfer syntaxes decode through pylibjpeg. A series keeps
its acquisition plane and is ordered along the slice normal (inferior -> superior for axial series, like the RAS+
z axis), else by InstanceNumber, else by file name. Files without the 128-byte preamble are recognised by their
``.dcm`` / ``.dicom`` suffix.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_windowing
from pydicom.pixels import apply_voi as apply_voi_lut_sequence

from pipelines.config import ImageConfig
from pipelines.imaging.errors import (
    DECODE_ERRORS,
    DecompressionBomb,
    EmptySeries,
    PathLike,
    UndecodableImage,
    UnsupportedFormat,
    decoding,
)
from pipelines.imaging.files import check_size, existing_file, natural_key
from pipelines.imaging.intensity import Window
from pipelines.imaging.planes import Slices, channels_first, resize_planes
from pipelines.imaging.readers.base import Reader, Signature

_DICOM_SUFFIXES = frozenset({".dcm", ".dicom"})


_PIXEL_DATA_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


_COLOUR_PHOTOMETRICS = frozenset({"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420"})


_DEFAULT_CONFIG = ImageConfig()


def read_dataset(path: PathLike, *, header_only: bool = False) -> Dataset:
    path = existing_file(path)
    with decoding(path, "not a readable DICOM file"):
        return pydicom.dcmread(path, force=True, stop_before_pixels=header_only)


def _header_int(ds: Dataset, keyword: str, default: int | None, path: PathLike) -> int:
    """A positive integer header value (a hostile header may hold text, a list, zero or nothing)."""
    with decoding(path, f"invalid {keyword}"):
        value = ds.get(keyword)
    if value is None or value == "":
        if default is None:
            raise UndecodableImage(path, f"no {keyword} in the header")
        return default
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise UndecodableImage(path, f"invalid {keyword} {value!r}: {exc}") from exc
    if number < 1:
        raise UndecodableImage(path, f"invalid {keyword} {number}")
    return number


def dicom_geometry(ds: Dataset, path: PathLike) -> tuple[int, int, int]:
    """(rows, columns, frames) from the header."""
    return (_header_int(ds, "Rows", None, path), _header_int(ds, "Columns", None, path),
            _header_int(ds, "NumberOfFrames", 1, path))


def check_pixel_shape(pixels: np.ndarray, ds: Dataset, path: PathLike, rows: int, cols: int, frames: int) -> None:
    """The decoded array must be exactly Rows x Columns x frames x samples-per-pixel: pydicom returns extra "frames"
    when the pixel data holds more bytes than the header says, which would otherwise turn into a wrong image."""
    samples = _header_int(ds, "SamplesPerPixel", 1, path)
    expected = (frames,) if frames > 1 else ()
    expected += (rows, cols) + ((samples,) if samples > 1 else ())
    if tuple(pixels.shape) != expected:
        raise UndecodableImage(path, f"pixel data decodes to {list(pixels.shape)}, the header says "
                               f"{rows} rows x {cols} columns x {frames} frames x {samples} samples per pixel")


def _photometric(ds: Dataset) -> str:
    return str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()


def voi_kind(ds: Dataset) -> str | None:
    """Which VOI transform the file defines: ``"lut"`` (VOI LUT Sequence, preferred as pydicom does),
    ``"window"`` (Window Center/Width) or None."""
    sequence = ds.get("VOILUTSequence")
    if sequence and "LUTDescriptor" in sequence[0] and "LUTData" in sequence[0]:
        return "lut"
    if ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None:
        return "window"
    return None


def _first_window(ds: Dataset) -> Window:
    """The first (center, width) pair of a file's window."""
    center, width = ds.WindowCenter, ds.WindowWidth
    first = [value[0] if isinstance(value, Sequence) else value for value in (center, width)]
    return float(first[0]), float(first[1])


def display_range(ds: Dataset, voi: str | None) -> Window | None:
    """The value range that maps to 0..255: the output range of the VOI transform, the full range of a
    colour image, or None (no VOI: percentiles decide). Computed from the header alone."""
    photometric = _photometric(ds)
    if photometric == "PALETTE COLOR":
        return (0.0, 255.0)
    if photometric in _COLOUR_PHOTOMETRICS:
        return (0.0, float(2 ** int(ds.BitsStored) - 1))
    if voi == "lut":
        entries, first, _ = ds.VOILUTSequence[0].LUTDescriptor
        table = apply_voi_lut_sequence(np.arange(first, first + (entries or 2**16)), ds)
        return float(table.min()), float(table.max())
    if voi == "window":
        low, high = apply_windowing(np.array([-np.inf, np.inf]), ds)
        return float(min(low, high)), float(max(low, high))
    return None


def _grey_values(pixels: np.ndarray, ds: Dataset, voi: str | None, display: Window | None) -> np.ndarray:
    """Stored values -> modality LUT (e.g. HU) -> VOI LUT / window -> MONOCHROME1 inverted."""
    values = apply_modality_lut(pixels, ds)
    if voi == "lut":
        if not np.issubdtype(values.dtype, np.integer):
            values = np.rint(values).astype(np.int64)
        values = apply_voi_lut_sequence(values, ds)
    elif voi == "window":
        values = apply_windowing(values, ds)
    values = values.astype(np.float32)
    if _photometric(ds) == "MONOCHROME1":
        # Mirror inside the display range when there is one, else negate (percentiles follow).
        values = np.float32(display[0] + display[1]) - values if display else -values
    return values


def _colour_values(pixels: np.ndarray, ds: Dataset) -> np.ndarray:
    """Colour pixel data as float32 RGB (pydicom already converts YBR to RGB); palettes are applied and
    brought to 0..255."""
    if _photometric(ds) != "PALETTE COLOR":
        return pixels.astype(np.float32)
    rgb = apply_color_lut(pixels, ds)
    return rgb.astype(np.float32) * np.float32(255.0 / np.iinfo(rgb.dtype).max)


def read_dicom(
    path: PathLike, cfg: ImageConfig = _DEFAULT_CONFIG, *, apply_voi: bool = True
) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a DICOM file's pixel data for display.

    Returns float32 ``[H, W]`` / ``[F, H, W]`` (grey) or ``[H, W, 3]`` / ``[F, H, W, 3]`` (colour) and an
    info dict: ``modality``, ``photometric``, ``voi`` ("lut", "window" or None), ``window`` (first
    (center, width) of the file, or None), ``display_range`` (the (low, high) to map to 0..255, or None
    when percentiles should decide), ``rows``, ``cols``, ``frames``, ``transfer_syntax``.

    Grey: modality LUT (rescale slope/intercept or LUT sequence), then the first VOI LUT / window when
    present and ``apply_voi``, then MONOCHROME1 inverted so that high = bright. Compressed transfer syntaxes
    decode through pylibjpeg. Rows x Columns (x frames) are checked against ``cfg.max_pixels`` /
    ``cfg.max_voxels`` before the pixel data is decoded, and the decoded array against Rows x Columns x frames x
    samples-per-pixel after.
    """
    path = existing_file(path)
    ds = read_dataset(path)
    if not any(tag in ds for tag in _PIXEL_DATA_TAGS):
        raise UndecodableImage(path, "DICOM file has no pixel data")
    rows, cols, frames = dicom_geometry(ds, path)
    check_size(path, rows, cols, frames, cfg)
    transfer_syntax = ds.file_meta.get("TransferSyntaxUID")
    syntax = getattr(transfer_syntax, "name", None) or "unknown transfer syntax"
    with decoding(path, f"cannot decode pixel data ({syntax})"):
        pixels = ds.pixel_array
    check_pixel_shape(pixels, ds, path, rows, cols, frames)
    with decoding(path, "invalid modality LUT, VOI LUT or palette"):
        photometric = _photometric(ds)
        voi = voi_kind(ds) if apply_voi and photometric.startswith("MONOCHROME") else None
        display = display_range(ds, voi)
        if photometric.startswith("MONOCHROME"):
            values = _grey_values(pixels, ds, voi, display)
        else:
            values = _colour_values(pixels, ds)
    info = {
        "modality": str(ds.get("Modality", "")),
        "photometric": photometric,
        "voi": voi,
        "window": _first_window(ds) if voi == "window" else None,
        "display_range": display,
        "rows": rows,
        "cols": cols,
        "frames": frames,
        "transfer_syntax": str(transfer_syntax) if transfer_syntax else None,
    }
    return values, info


def _slice_positions(headers: Sequence[Dataset]) -> list[float] | None:
    """Each slice's ImagePositionPatient projected on the first slice's normal, or None if any slice
    lacks position/orientation."""
    try:
        orientation = np.array(headers[0].ImageOrientationPatient, dtype=np.float64)
        normal = np.cross(orientation[:3], orientation[3:])
        positions = [np.array(h.ImagePositionPatient, dtype=np.float64) for h in headers]
        return [float(normal @ position) for position in positions]
    except DECODE_ERRORS:
        return None


def _instance_numbers(headers: Sequence[Dataset]) -> list[int] | None:
    try:
        return [int(h.InstanceNumber) for h in headers]
    except DECODE_ERRORS:
        return None


def dicom_order(files: Sequence[Path], headers: Sequence[Dataset]) -> list[int]:
    """Indices of ``files`` in slice order: by position along the normal, else InstanceNumber, else
    file name (natural sort, also the tie-break)."""
    keys = _slice_positions(headers) or _instance_numbers(headers) or [0] * len(files)
    names = [natural_key(path.name) for path in files]
    return sorted(range(len(files)), key=lambda i: (keys[i], names[i], files[i].name))


def dicom_file_slices(path: Path, cfg: ImageConfig) -> Slices:
    """The frames of one DICOM file (a multi-frame file, or one slice) in stored order."""
    pixels, info = read_dicom(path, cfg)
    frames = pixels if info["frames"] > 1 else pixels[None]
    planes = (channels_first(frame) for frame in frames)
    return Slices(len(frames), planes, info["display_range"])


def dicom_series_slices(folder: Path, files: Sequence[Path], cfg: ImageConfig) -> Slices:
    """A folder of single-frame DICOM slices, ordered by :func:`dicom_order`. Files without image rows
    (DICOMDIR, reports) are ignored. The VOI transform is used only when every slice has one."""
    all_headers = [read_dataset(path, header_only=True) for path in files]
    slices = [(path, ds) for path, ds in zip(files, all_headers) if "Rows" in ds]
    if not slices:
        raise EmptySeries(folder, "no DICOM image slices")
    if len(slices) == 1:
        return dicom_file_slices(slices[0][0], cfg)
    total = 0
    for path, ds in slices:
        rows, cols, frames = dicom_geometry(ds, path)
        if frames > 1:
            raise UnsupportedFormat(path, "multi-frame file inside a slice series")
        check_size(path, rows, cols, 1, cfg)
        total += rows * cols
    if total > cfg.max_voxels:
        raise DecompressionBomb(folder, f"{total} voxels exceed max_voxels={cfg.max_voxels}")
    order = dicom_order([path for path, _ in slices], [ds for _, ds in slices])
    ordered = [slices[i] for i in order]
    use_voi = all(voi_kind(ds) for _, ds in slices)
    first_path, first = ordered[0]
    with decoding(first_path, "invalid VOI LUT / window"):
        window = display_range(first, voi_kind(first) if use_voi else None)

    def planes() -> Iterator[np.ndarray]:
        for path, _ in ordered:
            pixels, _ = read_dicom(path, cfg, apply_voi=use_voi)
            yield channels_first(pixels)

    return Slices(len(ordered), planes(), window)



class DicomReader(Reader):
    formats = ("dicom",)
    signatures = (Signature("dicom", 128, b"DICM"),)
    series_name = "DICOM"

    def claim(self, head: bytes, name: str) -> str | None:
        return "dicom" if head and Path(name).suffix.lower() in _DICOM_SUFFIXES else None

    def image(self, path: Path, cfg: ImageConfig, colour: bool) -> tuple[np.ndarray, Window | None]:
        pixels, info = read_dicom(path, cfg)
        if info["frames"] > 1:
            raise UnsupportedFormat(path, f"multi-frame DICOM ({info['frames']} frames): use load_volume")
        return resize_planes(channels_first(pixels), cfg.size_2d), info["display_range"]

    def volume(self, path: Path, cfg: ImageConfig, colour: bool) -> Slices:
        return dicom_file_slices(path, cfg)

    def series(self, folder: Path, files: Sequence[Path], cfg: ImageConfig, colour: bool) -> Slices:
        return dicom_series_slices(folder, files, cfg)
