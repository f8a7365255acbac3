"""Raw medical images -> uint8 arrays in RadFM's channel-first, depth-last ``[C, H, W, D]`` layout.

Sources: JPEG/PNG (and the other Pillow formats: TIFF, BMP, GIF, WebP), DICOM (single-frame, multi-frame
and series folders), NIfTI, folders of JPEG/PNG slices, and ``.npy`` arrays (incl. RadFM's processed
``[S, 3, 512, 512, Z]`` files). Every size and limit comes from :class:`~pipelines.config.ImageConfig`.

Conventions:

* 2D images become ``[C, size_2d, size_2d, 1]``, volumes ``[C, size_3d, size_3d, D]``; C is 1 (grey) or 3.
  In-plane resizing squashes to a square (the aspect ratio is not kept), as RadFM did; the filter is
  Pillow's antialiased bicubic. :func:`stack_sample` brings the images of one sample to one
  ``[S, C, H, W, D]`` array, fitting every volume to one depth (:func:`common_depth`, :func:`fit_depth`).
* Intensity (:func:`to_uint8`): uint8 sources pass through unchanged. Other sources are windowed by the
  DICOM VOI LUT / window when the file has one, otherwise by ``ImageConfig.clip_percentiles``, computed
  over the whole image or volume (never per slice), and scaled to 0..255.
* Orientation: DICOM MONOCHROME1 is inverted (high = bright). NIfTI volumes are reoriented to RAS+ and
  their axial slices shown in radiological convention (row 0 anterior, column 0 patient right), which is
  also how an axial DICOM slice is stored. DICOM series keep their acquisition plane and are ordered along
  the slice normal (inferior -> superior for axial series, like the RAS+ z axis).
* Failures raise an :class:`ImageError` subclass whose message names the file; a bad image is never
  replaced by noise or zeros (RadFM substituted random noise).
* Output is deterministic: the same input gives byte-identical arrays.
"""

from __future__ import annotations

import os
import re
import struct
import warnings
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import nibabel as nib
import numpy as np
import pydicom
from nibabel.filebasedimages import ImageFileError
from nibabel.orientations import io_orientation
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_windowing
from pydicom.pixels import apply_voi as apply_voi_lut_sequence

from pipelines.config import ImageConfig
from shards_spec.layout import closest_depth

__all__ = [
    "ConstantImage",
    "DecompressionBomb",
    "EmptyFile",
    "EmptySeries",
    "ImageError",
    "MissingFile",
    "NonFiniteImage",
    "UndecodableImage",
    "UnsupportedFormat",
    "common_depth",
    "fit_depth",
    "load_2d",
    "load_npy_images",
    "load_volume",
    "read_dicom",
    "stack_sample",
    "to_uint8",
]

PathLike = str | os.PathLike[str]
Window = tuple[float, float]


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


class ImageError(Exception):
    """An input that cannot become a training array. ``reason`` is a short code for build statistics.

    ``ImageError(path, detail)`` -> ``str()`` is ``"<path>: <detail>"``; ``ImageError(message)`` takes a
    message that already names the file (``path`` is then None). ``args`` is always ``(path, detail)``,
    so the exception pickles (Ray ships it between processes).
    """

    reason: str = "image_error"

    def __init__(self, path: PathLike | None, detail: str | None = None) -> None:
        if detail is None:
            path, detail = None, str(path)
        self.path = None if path is None else os.fspath(path)
        self.detail = detail
        super().__init__(self.path, detail)

    def __str__(self) -> str:
        return self.detail if self.path is None else f"{self.path}: {self.detail}"


class MissingFile(ImageError):
    reason = "missing_file"


class EmptyFile(ImageError):
    reason = "empty_file"


class UndecodableImage(ImageError):
    reason = "undecodable"


class DecompressionBomb(ImageError):
    reason = "decompression_bomb"


class ConstantImage(ImageError):
    reason = "constant_image"


class NonFiniteImage(ImageError):
    reason = "nan_image"


class EmptySeries(ImageError):
    reason = "empty_series"


class UnsupportedFormat(ImageError):
    reason = "unsupported_format"


#: Exceptions the decoders (Pillow, pydicom and its plugins, nibabel, numpy) raise on bad input.
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    EOFError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    SyntaxError,
    RuntimeError,
    NotImplementedError,
    struct.error,
    zlib.error,
    ImageFileError,
    InvalidDicomError,
)

# --------------------------------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------------------------------

_FILTER = Image.Resampling.BICUBIC
#: Pillow first shrinks by an integer factor (box average) while at least this ratio remains.
_REDUCING_GAP = 2.0
#: A volume deeper than ``_PREREDUCE_FACTOR * max_depth`` slices is averaged over groups of consecutive
#: slices while it is read, so memory stays bounded; ``fit_depth`` later reduces it further anyway.
_PREREDUCE_FACTOR = 4
#: ``channels="auto"``: colour planes that differ by at most this many grey levels count as grey.
_GREY_TOLERANCE = 2
_CHANNELS = ("grey", "rgb", "auto")

_GREY_PIL_MODES = frozenset({"1", "L", "LA", "La"})
_HIGH_DEPTH_PIL_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})
_PIL_KINDS = frozenset({"jpeg", "png", "image"})
_IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".gif", ".webp"})
_DICOM_SUFFIXES = frozenset({".dcm", ".dicom"})
_PIXEL_DATA_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")
_COLOUR_PHOTOMETRICS = frozenset({"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "YBR_PARTIAL_420"})

#: (offset, magic bytes, kind) used by :func:`_sniff`.
_MAGIC: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "png"),
    (0, b"\x93NUMPY", "npy"),
    (128, b"DICM", "dicom"),
    (344, b"n+1\x00", "nifti"),
    (344, b"ni1\x00", "nifti"),
    (4, b"n+2\x00", "nifti"),
    (0, b"GIF8", "image"),
    (0, b"II*\x00", "image"),
    (0, b"MM\x00*", "image"),
    (8, b"WEBP", "image"),
    (0, b"BM", "image"),
)
_SNIFF_BYTES = 352

_DEFAULT_CONFIG = ImageConfig()


# --------------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------------


def _existing_file(path: PathLike) -> Path:
    """``path`` as a Path after checking it is a non-empty regular file."""
    path = Path(path)
    if not path.exists():
        raise MissingFile(path, "no such file")
    if not path.is_file():
        raise UnsupportedFormat(path, "not a regular file")
    if path.stat().st_size == 0:
        raise EmptyFile(path, "zero-byte file")
    return path


def _sniff(path: Path) -> str:
    """The kind of a file by its content (jpeg, png, image, dicom, nifti, npy), else by suffix, else
    ``"unknown"``. DICOM files without the 128-byte preamble are recognised by their ``.dcm`` suffix."""
    with path.open("rb") as handle:
        head = handle.read(_SNIFF_BYTES)
    for offset, magic, kind in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return kind
    name = path.name.lower()
    if head[:2] == b"\x1f\x8b" and name.endswith(".nii.gz"):
        return "nifti"
    if path.suffix.lower() in _DICOM_SUFFIXES and head:
        return "dicom"
    return "unknown"


def _natural_key(name: str) -> list[int | str]:
    """Sort key that orders ``2.jpg`` before ``10.jpg`` (digit runs compare as integers)."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _check_size(path: PathLike, height: int, width: int, depth: int, cfg: ImageConfig) -> None:
    """Decompression-bomb guard on header dimensions, before any pixel is decoded."""
    if height * width > cfg.max_pixels:
        raise DecompressionBomb(path, f"{width}x{height} pixels exceed max_pixels={cfg.max_pixels}")
    if height * width * depth > cfg.max_voxels:
        raise DecompressionBomb(
            path, f"{width}x{height}x{depth} voxels exceed max_voxels={cfg.max_voxels}"
        )


# --------------------------------------------------------------------------------------------------
# Arrays: resizing, intensity, channels
# --------------------------------------------------------------------------------------------------


def _channels_first(pixels: np.ndarray) -> np.ndarray:
    """``[H, W]`` -> ``[1, H, W]``; ``[H, W, 3]`` -> ``[3, H, W]``."""
    return pixels[None] if pixels.ndim == 2 else np.moveaxis(pixels, -1, 0)


def _resize_planes(planes: np.ndarray, size: int) -> np.ndarray:
    """Resize ``[C, h, w]`` to ``[C, size, size]``: uint8 stays uint8, anything else becomes float32."""
    if planes.dtype != np.uint8:
        planes = planes.astype(np.float32)
    resized = [
        Image.fromarray(np.ascontiguousarray(plane)).resize(
            (size, size), _FILTER, reducing_gap=_REDUCING_GAP
        )
        for plane in planes
    ]
    return np.stack([np.asarray(image) for image in resized])


def _percentile_window(values: np.ndarray, percentiles: tuple[float, float]) -> Window:
    """The ``percentiles`` of ``values``; their min and max when the percentiles coincide (an image that
    is mostly one value but not constant)."""
    low, high = np.percentile(values, percentiles)
    if high <= low:
        low, high = values.min(), values.max()
    return float(low), float(high)


def _rescale(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Clip float32 ``values`` to ``[low, high]`` and map that range linearly onto 0..255 (rounded)."""
    scale = 255.0 / (high - low) if high > low else 0.0
    out = np.clip(values, low, high)
    out -= low
    out *= scale
    np.rint(out, out=out)
    return out.astype(np.uint8)


def to_uint8(
    arr: np.ndarray,
    cfg: ImageConfig,
    window: Window | None = None,
    *,
    source: PathLike | None = None,
) -> np.ndarray:
    """Map an image or volume to uint8 0..255, keeping its shape.

    uint8 input passes through unchanged. Otherwise any NaN/Inf raises :class:`NonFiniteImage`; values
    are clipped to ``window`` (low, high) when given, else to ``cfg.clip_percentiles`` of the whole array,
    and scaled to 0..255. A result whose values are all equal raises :class:`ConstantImage`.
    ``source`` names the file in error messages.
    """
    if arr.dtype == np.uint8:
        out = arr
    else:
        values = np.asarray(arr, dtype=np.float32)
        finite = np.isfinite(values)
        if not finite.all():
            raise NonFiniteImage(source, f"{values.size - np.count_nonzero(finite)} NaN/Inf values")
        if window is None:
            low, high = _percentile_window(values, cfg.clip_percentiles)
        else:
            low, high = float(window[0]), float(window[1])
            if high < low:
                raise ValueError(f"window {window} has high < low")
        out = _rescale(values, low, high)
    if out.size == 0 or out.min() == out.max():
        raise ConstantImage(source, "all values are equal after windowing")
    return out


def _is_grey(image: np.ndarray) -> bool:
    """Whether the three planes of a ``[3, ...]`` uint8 image are equal within ``_GREY_TOLERANCE``."""
    red, green, blue = (plane.astype(np.int16) for plane in image)
    return max(np.abs(red - green).max(), np.abs(green - blue).max()) <= _GREY_TOLERANCE


def _luma(image: np.ndarray) -> np.ndarray:
    """``[3, ...]`` uint8 -> ``[1, ...]`` ITU-R 601 luma, with Pillow's integer weights (``convert("L")``),
    so equal planes give that plane exactly."""
    red, green, blue = (plane.astype(np.uint32) for plane in image)
    return ((19595 * red + 38470 * green + 7471 * blue + 32768) >> 16).astype(np.uint8)[None]


def _select_channels(image: np.ndarray, channels: str) -> np.ndarray:
    """Bring a ``[C, ...]`` uint8 image (C 1 or 3) to the requested channels: ``grey`` -> 1,
    ``rgb`` -> 3 (grey repeated), ``auto`` -> 3 only when the colour planes actually differ."""
    if image.shape[0] == 1:
        return np.repeat(image, 3, axis=0) if channels == "rgb" else image
    if channels == "rgb" or (channels == "auto" and not _is_grey(image)):
        return image
    return _luma(image)


def _drop_repeated_channels(arr: np.ndarray, axis: int) -> np.ndarray:
    """Keep one plane when the 3 planes along ``axis`` are identical (RadFM stored grey repeated 3x), so
    such arrays are windowed and resized exactly like the single grey plane."""
    planes = np.moveaxis(arr, axis, 0)
    if len(planes) == 3 and np.array_equal(planes[0], planes[1]) and np.array_equal(planes[1], planes[2]):
        return np.take(arr, [0], axis=axis)
    return arr


def _check_channels(channels: str) -> None:
    if channels not in _CHANNELS:
        raise ValueError(f"channels must be one of {_CHANNELS}, not {channels!r}")


def _stream_size(cfg: ImageConfig, stream: str) -> int:
    if stream == "2d":
        return cfg.size_2d
    if stream == "3d":
        return cfg.size_3d
    raise ValueError(f"stream must be '2d' or '3d', not {stream!r}")


# --------------------------------------------------------------------------------------------------
# Pillow formats (JPEG, PNG, TIFF, ...)
# --------------------------------------------------------------------------------------------------


def _open_pil(path: Path, max_pixels: int) -> Image.Image:
    """Open (header only) and check the size against ``max_pixels`` before anything is decoded.

    ``cfg.max_pixels`` is the limit; Pillow's own warning threshold is silenced, but its hard limit
    (``2 * Image.MAX_IMAGE_PIXELS``) still raises and is reported as :class:`DecompressionBomb`.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise DecompressionBomb(path, str(exc)) from exc
    except _DECODE_ERRORS as exc:
        raise UndecodableImage(path, f"not a readable image: {exc}") from exc
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise DecompressionBomb(path, f"{width}x{height} pixels exceed max_pixels={max_pixels}")
    return image


def _pil_working_mode(image: Image.Image, path: Path, colour: bool) -> Image.Image:
    """Convert to ``L`` or ``RGB`` (8-bit), or to ``F`` for 16/32-bit and float sources."""
    if image.mode in _HIGH_DEPTH_PIL_MODES:
        return Image.fromarray(np.asarray(image).astype(np.float32))
    target = "RGB" if colour and image.mode not in _GREY_PIL_MODES else "L"
    if image.mode == target:
        return image
    try:
        return image.convert(target)
    except ValueError as exc:
        raise UnsupportedFormat(path, f"cannot convert Pillow mode {image.mode}: {exc}") from exc


def _read_pil(path: PathLike, size: int, cfg: ImageConfig, colour: bool) -> np.ndarray:
    """Decode a Pillow-readable file and resize it to ``[C, size, size]``.

    JPEGs are decoded by libjpeg at 1/2, 1/4 or 1/8 scale when that stays >= ``size`` (``draft``), in
    luma only when grey is wanted. Returns uint8 (C 1 or 3; 3 only for colour sources when ``colour``)
    or float32 ``[1, size, size]`` for 16-bit / 32-bit / float sources, which still need windowing.
    Multi-frame files (GIF, TIFF) give their first frame.
    """
    path = _existing_file(path)
    with _open_pil(path, cfg.max_pixels) as image:
        if image.format == "JPEG":
            image.draft("RGB" if colour else "L", (size, size))
        try:
            image.load()
        except _DECODE_ERRORS as exc:
            raise UndecodableImage(path, f"cannot decode: {exc}") from exc
        working = _pil_working_mode(image, path, colour)
        resized = working.resize((size, size), _FILTER, reducing_gap=_REDUCING_GAP)
    return _channels_first(np.asarray(resized))


# --------------------------------------------------------------------------------------------------
# DICOM
# --------------------------------------------------------------------------------------------------


def _read_dataset(path: PathLike, *, header_only: bool = False) -> Dataset:
    path = _existing_file(path)
    try:
        return pydicom.dcmread(path, force=True, stop_before_pixels=header_only)
    except _DECODE_ERRORS as exc:
        raise UndecodableImage(path, f"not a readable DICOM file: {exc}") from exc


def _dicom_geometry(ds: Dataset, path: PathLike) -> tuple[int, int, int]:
    """(rows, columns, frames) from the header."""
    try:
        return int(ds.Rows), int(ds.Columns), int(ds.get("NumberOfFrames") or 1)
    except _DECODE_ERRORS as exc:
        raise UndecodableImage(path, f"no valid Rows/Columns/NumberOfFrames: {exc}") from exc


def _photometric(ds: Dataset) -> str:
    return str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()


def _voi_kind(ds: Dataset) -> str | None:
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


def _display_range(ds: Dataset, voi: str | None) -> Window | None:
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
    ``cfg.max_voxels`` before the pixel data is decoded.
    """
    path = _existing_file(path)
    ds = _read_dataset(path)
    if not any(tag in ds for tag in _PIXEL_DATA_TAGS):
        raise UndecodableImage(path, "DICOM file has no pixel data")
    rows, cols, frames = _dicom_geometry(ds, path)
    _check_size(path, rows, cols, frames, cfg)
    transfer_syntax = ds.file_meta.get("TransferSyntaxUID")
    try:
        pixels = ds.pixel_array
        photometric = _photometric(ds)
        voi = _voi_kind(ds) if apply_voi and photometric.startswith("MONOCHROME") else None
        display = _display_range(ds, voi)
        if photometric.startswith("MONOCHROME"):
            values = _grey_values(pixels, ds, voi, display)
        else:
            values = _colour_values(pixels, ds)
    except _DECODE_ERRORS as exc:
        syntax = transfer_syntax.name if transfer_syntax else "unknown transfer syntax"
        raise UndecodableImage(path, f"cannot decode pixel data ({syntax}): {exc}") from exc
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
    except _DECODE_ERRORS:
        return None


def _instance_numbers(headers: Sequence[Dataset]) -> list[int] | None:
    try:
        return [int(h.InstanceNumber) for h in headers]
    except _DECODE_ERRORS:
        return None


def _dicom_order(files: Sequence[Path], headers: Sequence[Dataset]) -> list[int]:
    """Indices of ``files`` in slice order: by position along the normal, else InstanceNumber, else
    file name (natural sort, also the tie-break)."""
    keys = _slice_positions(headers) or _instance_numbers(headers) or [0] * len(files)
    names = [_natural_key(path.name) for path in files]
    return sorted(range(len(files)), key=lambda i: (keys[i], names[i], files[i].name))


# --------------------------------------------------------------------------------------------------
# Volumes: slice sources and stacking
# --------------------------------------------------------------------------------------------------


class _Slices(NamedTuple):
    """A volume being read: ``count`` planes ``[C, size, size]`` (uint8, or float32 still to be
    windowed), in order, and the window for :func:`to_uint8` (None: percentiles)."""

    count: int
    planes: Iterator[np.ndarray]
    window: Window | None = None


def _stack_planes(slices: _Slices, bound: int, source: PathLike) -> np.ndarray:
    """Stack planes along a new last axis -> ``[C, H, W, D]``. More than ``bound`` planes are averaged in
    groups of ``ceil(count / bound)`` consecutive planes while reading (uint8 stays uint8, rounded)."""
    group = -(-slices.count // bound)
    depth = -(-slices.count // group)
    stack: np.ndarray | None = None
    for index, plane in enumerate(slices.planes):
        if stack is None:
            first = plane
            stack = np.zeros((depth, *plane.shape), np.float32 if group > 1 else plane.dtype)
        elif plane.shape != first.shape or plane.dtype != first.dtype:
            raise UnsupportedFormat(
                source,
                f"slice {index} is {plane.dtype} {plane.shape}, slice 0 is {first.dtype} {first.shape}",
            )
        stack[index // group] += plane
    if stack is None:
        raise EmptySeries(source, "no slices")
    if group > 1:
        members = np.diff(np.minimum(np.arange(depth + 1) * group, slices.count))
        stack /= members.reshape(-1, 1, 1, 1).astype(np.float32)
        if first.dtype == np.uint8:
            stack = np.rint(stack).astype(np.uint8)
    return np.ascontiguousarray(np.moveaxis(stack, 0, -1))


def _array_slices(volume: np.ndarray, size: int, path: Path, cfg: ImageConfig) -> _Slices:
    """Slices of an in-memory / memory-mapped ``[C, H, W, D]`` array, resized in-plane."""
    channels, height, width, depth = volume.shape
    if channels not in (1, 3):
        raise UnsupportedFormat(path, f"array {volume.shape}: channel axis must be 1 or 3")
    _check_size(path, height, width, depth * channels, cfg)
    try:
        by_slice = np.ascontiguousarray(np.moveaxis(volume, -1, 0))  # [D, C, H, W], read once
    except _DECODE_ERRORS as exc:
        raise UndecodableImage(path, f"cannot read array data: {exc}") from exc
    by_slice = _drop_repeated_channels(by_slice, axis=1)
    return _Slices(depth, (_resize_planes(plane, size) for plane in by_slice))


def _radiological_slice(data: Any, ornt: np.ndarray, k: int) -> np.ndarray:
    """Axial slice ``k`` of the RAS+-reoriented volume (as ``nibabel.as_closest_canonical`` would give,
    read without loading the volume) in display convention: canonical ``arr[::-1, ::-1, k].T``."""
    z_axis = int(np.flatnonzero(ornt[:, 0] == 2)[0])
    index: list[int | slice] = [slice(None)] * 3
    index[z_axis] = k if ornt[z_axis, 1] > 0 else data.shape[z_axis] - 1 - k
    plane = np.asarray(data[tuple(index)])
    first, second = (axis for axis in range(3) if axis != z_axis)
    if ornt[first, 0] == 1:  # stored (y, x): make it (x, y)
        plane, first, second = plane.T, second, first
    plane = plane[:: int(ornt[first, 1]), :: int(ornt[second, 1])]  # canonical (x, y) slice
    return plane[::-1, ::-1].T


def _nifti_slices(path: Path, cfg: ImageConfig) -> _Slices:
    """Axial slices of a NIfTI file, RAS+ canonical, inferior -> superior. 4D+ files give their first
    volume. Uncompressed files are memory-mapped and read slice by slice; ``.nii.gz`` is decompressed
    once (gzip cannot seek). Stored uint8 without scaling stays uint8; the rest becomes float32 with
    ``scl_slope``/``scl_inter`` applied."""
    try:
        image = nib.load(path)
        affine = image.affine
        shape = tuple(int(n) for n in image.shape)
        dtype = image.get_data_dtype()
    except _DECODE_ERRORS as exc:
        raise UndecodableImage(path, f"not a readable NIfTI file: {exc}") from exc
    if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)) or dtype.fields is not None:
        raise UnsupportedFormat(path, f"unsupported NIfTI ({type(image).__name__}, dtype {dtype})")
    spatial = (shape + (1, 1))[:3]
    ornt = io_orientation(affine)
    if np.isnan(ornt).any():
        raise UndecodableImage(path, "affine has no usable orientation")
    z_axis = int(np.flatnonzero(ornt[:, 0] == 2)[0])
    height, width = (spatial[axis] for axis in range(3) if axis != z_axis)
    volumes = int(np.prod(shape[3:], dtype=np.int64))  # all are read from .nii.gz, the first is used
    _check_size(path, height, width, spatial[z_axis] * volumes, cfg)
    try:
        proxy = image.dataobj
        data = proxy.get_unscaled() if nib.is_proxy(proxy) else np.asarray(proxy)
        slope, inter = (float(proxy.slope), float(proxy.inter)) if nib.is_proxy(proxy) else (1.0, 0.0)
    except _DECODE_ERRORS as exc:
        raise UndecodableImage(path, f"cannot read NIfTI data: {exc}") from exc
    data = data.reshape(spatial) if data.ndim < 3 else data[(Ellipsis,) + (0,) * (data.ndim - 3)]
    keep_uint8 = data.dtype == np.uint8 and (slope, inter) == (1.0, 0.0)

    def planes() -> Iterator[np.ndarray]:
        for k in range(spatial[z_axis]):
            try:
                plane = _radiological_slice(data, ornt, k)
            except _DECODE_ERRORS as exc:
                raise UndecodableImage(path, f"cannot read slice {k}: {exc}") from exc
            if not keep_uint8:
                plane = plane.astype(np.float32) * np.float32(slope) + np.float32(inter)
            yield _resize_planes(plane[None], cfg.size_3d)

    return _Slices(spatial[z_axis], planes())


def _dicom_file_slices(path: Path, cfg: ImageConfig) -> _Slices:
    """The frames of one DICOM file (a multi-frame file, or one slice) in stored order."""
    pixels, info = read_dicom(path, cfg)
    frames = pixels if info["frames"] > 1 else pixels[None]
    planes = (_resize_planes(_channels_first(frame), cfg.size_3d) for frame in frames)
    return _Slices(len(frames), planes, info["display_range"])


def _dicom_series_slices(folder: Path, files: Sequence[Path], cfg: ImageConfig) -> _Slices:
    """A folder of single-frame DICOM slices, ordered by :func:`_dicom_order`. Files without image rows
    (DICOMDIR, reports) are ignored. The VOI transform is used only when every slice has one."""
    all_headers = [_read_dataset(path, header_only=True) for path in files]
    slices = [(path, ds) for path, ds in zip(files, all_headers) if "Rows" in ds]
    if not slices:
        raise EmptySeries(folder, "no DICOM image slices")
    if len(slices) == 1:
        return _dicom_file_slices(slices[0][0], cfg)
    total = 0
    for path, ds in slices:
        rows, cols, frames = _dicom_geometry(ds, path)
        if frames > 1:
            raise UnsupportedFormat(path, "multi-frame file inside a slice series")
        _check_size(path, rows, cols, 1, cfg)
        total += rows * cols
    if total > cfg.max_voxels:
        raise DecompressionBomb(folder, f"{total} voxels exceed max_voxels={cfg.max_voxels}")
    order = _dicom_order([path for path, _ in slices], [ds for _, ds in slices])
    ordered = [slices[i] for i in order]
    use_voi = all(_voi_kind(ds) for _, ds in slices)
    first_path, first = ordered[0]
    try:
        window = _display_range(first, _voi_kind(first) if use_voi else None)
    except _DECODE_ERRORS as exc:
        raise UndecodableImage(first_path, f"invalid VOI LUT / window: {exc}") from exc

    def planes() -> Iterator[np.ndarray]:
        for path, _ in ordered:
            pixels, _ = read_dicom(path, cfg, apply_voi=use_voi)
            yield _resize_planes(_channels_first(pixels), cfg.size_3d)

    return _Slices(len(ordered), planes(), window)


def _image_series_slices(files: Sequence[Path], cfg: ImageConfig, colour: bool) -> _Slices:
    """A folder of JPEG/PNG/... slices in natural file-name order (``0.jpg, 1.jpg, ..., 10.jpg``);
    slices of differing sizes are each resized to ``size_3d``."""
    ordered = sorted(files, key=lambda path: (_natural_key(path.name), path.name))
    return _Slices(len(ordered), (_read_pil(path, cfg.size_3d, cfg, colour) for path in ordered))


def _folder_slices(folder: Path, cfg: ImageConfig, colour: bool) -> _Slices:
    """A slice folder: DICOM series or image slices. Hidden files, sub-folders and files that are
    neither images nor DICOM (by content or suffix) are ignored."""
    files = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file())
    kinds = {path: _sniff(path) for path in files}
    dicoms = [path for path in files if kinds[path] == "dicom"]
    images = [
        path
        for path in files
        if kinds[path] in _PIL_KINDS
        or (kinds[path] == "unknown" and path.suffix.lower() in _IMAGE_SUFFIXES)
    ]
    if dicoms and images:
        raise UnsupportedFormat(folder, "folder mixes DICOM and image slices")
    if dicoms:
        return _dicom_series_slices(folder, dicoms, cfg)
    if images:
        return _image_series_slices(images, cfg, colour)
    raise EmptySeries(folder, f"no image or DICOM slices among {len(files)} visible files")


def _npy_volume(arr: np.ndarray, path: Path) -> np.ndarray:
    """A ``.npy`` array as one ``[C, H, W, D]`` volume from ``[H, W]``, ``[H, W, D]`` or ``[C, H, W, D]``."""
    if arr.ndim == 2:
        return arr[None, :, :, None]
    if arr.ndim == 3:
        return arr[None]
    if arr.ndim == 4:
        return arr
    raise UnsupportedFormat(
        path, f"array {arr.shape}: a volume has 2-4 axes (several series: use load_npy_images)"
    )


def _load_npy(path: Path, cfg: ImageConfig) -> np.ndarray:
    """Memory-map a ``.npy`` file (no pickles) after checking dtype and size from its header."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except _DECODE_ERRORS as exc:
        raise UndecodableImage(path, f"not a readable .npy file: {exc}") from exc
    if arr.dtype.kind not in "biuf":
        raise UnsupportedFormat(path, f"dtype {arr.dtype} is not numeric")
    if arr.size > cfg.max_voxels:
        raise DecompressionBomb(path, f"{arr.size} values exceed max_voxels={cfg.max_voxels}")
    return arr


def _volume_slices(path: Path, cfg: ImageConfig, colour: bool) -> _Slices:
    if path.is_dir():
        return _folder_slices(path, cfg, colour)
    kind = _sniff(_existing_file(path))
    if kind == "nifti":
        return _nifti_slices(path, cfg)
    if kind == "npy":
        return _array_slices(_npy_volume(_load_npy(path, cfg), path), cfg.size_3d, path, cfg)
    if kind == "dicom":
        return _dicom_file_slices(path, cfg)
    if kind in _PIL_KINDS:
        return _Slices(1, iter([_read_pil(path, cfg.size_3d, cfg, colour)]))
    raise UndecodableImage(path, "content is not a recognised image format")


def _finish_volume(slices: _Slices, cfg: ImageConfig, channels: str, source: PathLike) -> np.ndarray:
    volume = _stack_planes(slices, _PREREDUCE_FACTOR * cfg.max_depth, source)
    return _select_channels(to_uint8(volume, cfg, slices.window, source=source), channels)


# --------------------------------------------------------------------------------------------------
# Public loaders
# --------------------------------------------------------------------------------------------------


def _npy_2d(arr: np.ndarray, path: Path, cfg: ImageConfig) -> np.ndarray:
    """A 2D ``.npy`` image (``[H, W]`` or ``[H, W, 1|3|4]``, alpha dropped) as ``[C, H, W]``."""
    if arr.ndim == 2:
        planes = arr[None]
    elif arr.ndim == 3 and arr.shape[-1] in (1, 3, 4):
        planes = np.moveaxis(arr[..., :3], -1, 0)
    else:
        raise UnsupportedFormat(path, f"array {arr.shape} is not a 2D image (H x W or H x W x 3)")
    _check_size(path, planes.shape[1], planes.shape[2], 1, cfg)
    return _drop_repeated_channels(np.asarray(planes), axis=0)


def _planes_2d(path: Path, cfg: ImageConfig, colour: bool) -> tuple[np.ndarray, Window | None]:
    """``[C, size_2d, size_2d]`` planes (uint8 or float32) and the window to apply."""
    kind = _sniff(path)
    if kind in _PIL_KINDS:
        return _read_pil(path, cfg.size_2d, cfg, colour), None
    if kind == "dicom":
        pixels, info = read_dicom(path, cfg)
        if info["frames"] > 1:
            raise UnsupportedFormat(path, f"multi-frame DICOM ({info['frames']} frames): use load_volume")
        return _resize_planes(_channels_first(pixels), cfg.size_2d), info["display_range"]
    if kind == "npy":
        return _resize_planes(_npy_2d(_load_npy(path, cfg), path, cfg), cfg.size_2d), None
    if kind == "nifti":
        raise UnsupportedFormat(path, "NIfTI is a volume format: use load_volume")
    raise UndecodableImage(path, "content is not a recognised image format")


def load_2d(path: PathLike, cfg: ImageConfig, channels: str = "grey") -> np.ndarray:
    """Load a 2D image as uint8 ``[C, size_2d, size_2d, 1]``.

    Sources (recognised by content, not by extension): JPEG/PNG and other Pillow formats, single-frame
    DICOM, ``.npy`` ``[H, W]`` / ``[H, W, 3]``. ``channels``: ``"grey"`` (C=1), ``"rgb"`` (C=3, grey
    repeated) or ``"auto"`` (3 only when the source is colour with planes that actually differ).
    The image is squashed to a square.
    """
    _check_channels(channels)
    path = _existing_file(path)
    planes, window = _planes_2d(path, cfg, colour=channels != "grey")
    image = to_uint8(planes, cfg, window, source=path)
    return _select_channels(image, channels)[..., None]


def load_volume(path: PathLike, cfg: ImageConfig, channels: str = "grey") -> np.ndarray:
    """Load a volume as uint8 ``[C, size_3d, size_3d, D]``, resized in-plane only.

    ``path`` is a NIfTI file, a ``.npy`` file (``[H, W]``, ``[H, W, D]`` or ``[C, H, W, D]``), a DICOM
    series folder, a folder of JPEG/PNG slices, a (multi-frame) DICOM file or a single 2D image (D = 1).
    D is the number of slices, except that more than ``4 * cfg.max_depth`` slices are averaged in groups
    of consecutive slices while reading (bounded memory), so D <= ``4 * cfg.max_depth``. Intensities are
    windowed over the whole volume. See :func:`load_2d` for ``channels``.
    """
    _check_channels(channels)
    path = Path(path)
    if not path.exists():
        raise MissingFile(path, "no such file or folder")
    slices = _volume_slices(path, cfg, colour=channels != "grey")
    return _finish_volume(slices, cfg, channels, path)


def _npy_series(arr: np.ndarray, path: Path) -> list[np.ndarray]:
    """RadFM ``[S, C, H, W, Z]`` -> S arrays ``[C, H, W, Z]``; 2-4 axes -> one (see :func:`_npy_volume`)."""
    return list(arr) if arr.ndim == 5 else [_npy_volume(arr, path)]


def load_npy_images(
    path: PathLike, cfg: ImageConfig, stream: str, channels: str = "grey"
) -> list[np.ndarray]:
    """Load a RadFM-processed ``.npy`` (``[S, 3, 512, 512, Z]``: several series of one case) as S uint8
    arrays ``[C, size, size, Z]``, size from the stream (``"2d"``: ``size_2d``, and Z must be 1; ``"3d"``:
    ``size_3d``). Also accepts ``[C, H, W, D]``, ``[H, W, D]`` and ``[H, W]`` (one image). Each series is
    windowed on its own. RadFM's grey-repeated-three-times planes collapse to C=1 for ``channels="grey"``
    (and for ``"auto"``).
    """
    _check_channels(channels)
    size = _stream_size(cfg, stream)
    path = _existing_file(path)
    if _sniff(path) != "npy":
        raise UnsupportedFormat(path, "not a .npy file")
    images = []
    for index, series in enumerate(_npy_series(_load_npy(path, cfg), path)):
        if stream == "2d" and series.shape[-1] != 1:
            raise UnsupportedFormat(path, f"series {index} has depth {series.shape[-1]}, 2d needs 1")
        slices = _array_slices(series, size, path, cfg)
        images.append(_finish_volume(slices, cfg, channels, path))
    return images


# --------------------------------------------------------------------------------------------------
# Depth and samples
# --------------------------------------------------------------------------------------------------


def common_depth(depths: Sequence[int], cfg: ImageConfig) -> int:
    """RadFM's shared depth for one sample: the value of ``range(min_depth, max_depth + 1,
    depth_multiple)`` closest to ``max(depths)``; ties go to the smaller value, so anything beyond
    ``max_depth`` gets the largest allowed depth."""
    if not depths:
        raise ValueError("common_depth needs at least one depth")
    return closest_depth(max(depths), range(cfg.min_depth, cfg.max_depth + 1, cfg.depth_multiple))


def _depth_weights(source: int, target: int) -> np.ndarray:
    """``[target, source]`` interpolation weights (rows sum to 1). Shrinking: area averaging (each output
    slice averages the source interval it covers). Growing: linear interpolation between slice centres,
    clamped at the ends, so a single slice is replicated."""
    weights = np.zeros((target, source), np.float64)
    if target < source:
        step = source / target
        for j in range(target):
            low, high = j * step, (j + 1) * step
            for k in range(int(np.floor(low)), min(int(np.ceil(high)), source)):
                weights[j, k] = (min(high, k + 1) - max(low, k)) / step
    else:
        centres = np.clip((np.arange(target) + 0.5) * source / target - 0.5, 0, source - 1)
        below = np.floor(centres).astype(int)
        above = np.minimum(below + 1, source - 1)
        fraction = centres - below
        np.add.at(weights, (np.arange(target), below), 1 - fraction)
        np.add.at(weights, (np.arange(target), above), fraction)
    return weights


def fit_depth(volume: np.ndarray, depth: int) -> np.ndarray:
    """Resample the depth axis of a uint8 ``[C, H, W, D]`` volume to ``depth`` (see
    :func:`_depth_weights`). Deterministic (fixed-order float32 sums, rounded half to even); returns the
    input itself when the depth already matches."""
    if volume.ndim != 4 or volume.dtype != np.uint8:
        raise ValueError(f"fit_depth needs a uint8 [C, H, W, D] volume, got {volume.dtype} {volume.shape}")
    if depth < 1:
        raise ValueError(f"depth must be >= 1, not {depth}")
    if volume.shape[-1] == depth:
        return volume
    by_slice = np.ascontiguousarray(np.moveaxis(volume, -1, 0))
    out = np.empty((depth, *volume.shape[:-1]), np.uint8)
    for j, row in enumerate(_depth_weights(volume.shape[-1], depth)):
        total = np.zeros(volume.shape[:-1], np.float32)
        for k in np.flatnonzero(row):
            total += np.float32(row[k]) * by_slice[k]
        out[j] = np.clip(np.rint(total), 0, 255)
    return np.ascontiguousarray(np.moveaxis(out, 0, -1))


def _check_sample_image(image: np.ndarray, size: int, stream: str, index: int) -> None:
    channels, height, width, depth = image.shape if image.ndim == 4 else (0, 0, 0, 0)
    if image.dtype != np.uint8 or channels not in (1, 3) or (height, width) != (size, size):
        raise ValueError(
            f"image {index}: expected uint8 [1|3, {size}, {size}, D], got {image.dtype} {image.shape}"
        )
    if stream == "2d" and depth != 1:
        raise ValueError(f"image {index}: 2d images have depth 1, got {depth}")


def stack_sample(images: Sequence[np.ndarray], cfg: ImageConfig, stream: str) -> np.ndarray:
    """Stack the images of one sample into uint8 ``[S, C, H, W, D]``.

    ``"2d"``: images are ``[C, size_2d, size_2d, 1]``. ``"3d"``: images are ``[C, size_3d, size_3d, D_i]``
    and each is fitted to ``common_depth`` of the sample (a 2D image loaded at ``size_3d`` is replicated).
    When C differs, grey images are repeated to 3 channels. No images -> :class:`EmptySeries`.
    """
    size = _stream_size(cfg, stream)
    if not images:
        raise EmptySeries(None, "sample has no images")
    for index, image in enumerate(images):
        _check_sample_image(image, size, stream, index)
    if stream == "3d":
        depth = common_depth([image.shape[-1] for image in images], cfg)
        images = [fit_depth(image, depth) for image in images]
    channels = max(image.shape[0] for image in images)
    return np.stack([np.broadcast_to(image, (channels, *image.shape[1:])) for image in images])
