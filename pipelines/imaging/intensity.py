"""Intensity and channels, shared by every format: windowing to uint8, grey/colour selection.

uint8 sources pass through unchanged. Other sources are windowed by the DICOM VOI LUT / window when the file has
one, otherwise by ``ImageConfig.clip_percentiles``, computed over the whole image or volume (never per slice),
and scaled to 0..255.
"""

from __future__ import annotations

import numpy as np

from pipelines.config import ImageConfig
from pipelines.imaging.errors import ConstantImage, NonFiniteImage, PathLike

Window = tuple[float, float]

#: ``channels="auto"``: colour planes that differ by at most this many grey levels count as grey.
GREY_TOLERANCE = 2


CHANNELS = ("grey", "rgb", "auto")


def percentile_window(values: np.ndarray, percentiles: tuple[float, float]) -> Window:
    """The ``percentiles`` of ``values``; their min and max when the percentiles coincide (an image that
    is mostly one value but not constant)."""
    low, high = np.percentile(values, percentiles)
    if high <= low:
        low, high = values.min(), values.max()
    return float(low), float(high)


def rescale(values: np.ndarray, low: float, high: float) -> np.ndarray:
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
            low, high = percentile_window(values, cfg.clip_percentiles)
        else:
            low, high = float(window[0]), float(window[1])
            if high < low:
                raise ValueError(f"window {window} has high < low")
        out = rescale(values, low, high)
    if out.size == 0 or out.min() == out.max():
        raise ConstantImage(source, "all values are equal after windowing")
    return out


def is_grey(image: np.ndarray) -> bool:
    """Whether the three planes of a ``[3, ...]`` uint8 image are equal within ``GREY_TOLERANCE``."""
    red, green, blue = (plane.astype(np.int16) for plane in image)
    return max(np.abs(red - green).max(), np.abs(green - blue).max()) <= GREY_TOLERANCE


def luma(image: np.ndarray) -> np.ndarray:
    """``[3, ...]`` uint8 -> ``[1, ...]`` ITU-R 601 luma, with Pillow's integer weights (``convert("L")``),
    so equal planes give that plane exactly."""
    red, green, blue = (plane.astype(np.uint32) for plane in image)
    return ((19595 * red + 38470 * green + 7471 * blue + 32768) >> 16).astype(np.uint8)[None]


def select_channels(image: np.ndarray, channels: str) -> np.ndarray:
    """Bring a ``[C, ...]`` uint8 image (C 1 or 3) to the requested channels: ``grey`` -> 1,
    ``rgb`` -> 3 (grey repeated), ``auto`` -> 3 only when the colour planes actually differ."""
    if image.shape[0] == 1:
        return np.repeat(image, 3, axis=0) if channels == "rgb" else image
    if channels == "rgb" or (channels == "auto" and not is_grey(image)):
        return image
    return luma(image)


def drop_repeated_channels(arr: np.ndarray, axis: int) -> np.ndarray:
    """Keep one plane when the 3 planes along ``axis`` are identical (RadFM stored grey repeated 3x), so
    such arrays are windowed and resized exactly like the single grey plane."""
    planes = np.moveaxis(arr, axis, 0)
    if len(planes) == 3 and np.array_equal(planes[0], planes[1]) and np.array_equal(planes[1], planes[2]):
        return np.take(arr, [0], axis=axis)
    return arr


def check_channels(channels: str) -> None:
    if channels not in CHANNELS:
        raise ValueError(f"channels must be one of {CHANNELS}, not {channels!r}")

