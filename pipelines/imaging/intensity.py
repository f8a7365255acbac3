"""Intensity and channels, shared by every format: windowing to uint8, grey/colour selection.

uint8 sources pass through unchanged. Other sources are windowed by the DICOM VOI LUT / window when the file has
one, otherwise by ``ImageConfig.clip_percentiles``, computed over the whole image or volume (never per slice),
and scaled to 0..255. A volume's percentiles are those of its native voxels (before in-plane resizing,
:func:`native_window`); it is windowed slice by slice (:func:`display_plane`) and then resized in uint8.
"""

from __future__ import annotations

from collections.abc import Sequence

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


#: Integer voxel values spanning at most this many levels are counted in a histogram for the percentiles.
HISTOGRAM_LEVELS = 1 << 20

#: ``value = raw * slope + inter``: how a reader's raw planes map to voxel values (NIfTI's scl_slope/scl_inter).
Scale = tuple[float, float]


def compact_plane(plane: np.ndarray, source: PathLike | None = None) -> np.ndarray:
    """A native plane to hold until the window is known: float planes whose values are all whole numbers in the
    int16 range become int16 (half the memory, and :func:`native_window` counts them in a histogram); NaN/Inf
    raise :class:`NonFiniteImage`."""
    if plane.dtype.kind != "f":
        return plane
    finite = np.isfinite(plane)
    if not finite.all():
        raise NonFiniteImage(source, f"{plane.size - np.count_nonzero(finite)} NaN/Inf values in a slice")
    if plane.size and -32768 <= plane.min() and plane.max() <= 32767:
        whole = plane.astype(np.int16)
        if np.array_equal(whole, plane):
            return whole
    return plane


def _histogram_percentiles(planes: Sequence[np.ndarray], percentiles: Sequence[float]) -> list[float] | None:
    """numpy's default (linear) percentiles of the integer values of ``planes``, from exact counts of each value
    (no sort, no copy of the volume); None when the planes are not integers of a small enough range."""
    if not all(p.dtype.kind in "iu" and p.dtype.itemsize <= 4 for p in planes):
        return None
    low = min(int(p.min()) for p in planes if p.size)
    high = max(int(p.max()) for p in planes if p.size)
    if high - low >= HISTOGRAM_LEVELS:
        return None
    counts = np.zeros(high - low + 1, np.int64)
    for plane in planes:
        shifted = plane.astype(np.int64).ravel()
        shifted -= low
        counts += np.bincount(shifted, minlength=counts.size)
    ends = np.cumsum(counts)  # values[ends[v-1]:ends[v]] == v + low in sorted order
    last = int(ends[-1]) - 1
    out = []
    for q in percentiles:
        position = (q / 100.0) * last
        below = int(np.floor(position))
        gamma = position - below
        a, b = (float(np.searchsorted(ends, k, side="right") + low) for k in (below, min(below + 1, last)))
        out.append(b - (b - a) * (1 - gamma) if gamma >= 0.5 else a + (b - a) * gamma)  # numpy's _lerp
    return out


def native_window(planes: Sequence[np.ndarray], percentiles: tuple[float, float], scale: Scale | None = None) -> Window:
    """``percentiles`` of the native voxel values of a volume given as its planes (raw values, mapped by ``scale``
    when given): equal (to float precision) to :func:`percentile_window` over all values at once. Integer planes
    are counted in a histogram, others go through ``np.percentile`` on their float32 values."""
    planes = [p for p in planes if p.size]
    if not planes:
        raise ConstantImage(None, "no voxels")
    slope, inter = scale if scale is not None else (1.0, 0.0)
    quantiles = list(percentiles) if slope >= 0 else [100.0 - q for q in percentiles]  # a negative slope flips order
    raw = _histogram_percentiles(planes, quantiles)
    if raw is not None:
        low, high = sorted(value * slope + inter for value in raw)
        if high > low:
            return float(low), float(high)
        extremes = [min(int(p.min()) for p in planes), max(int(p.max()) for p in planes)]
        low, high = sorted(value * slope + inter for value in extremes)
        return float(low), float(high)
    values = np.concatenate([p.astype(np.float32).ravel() for p in planes])
    if scale is not None:
        values *= np.float32(slope)
        values += np.float32(inter)
    return percentile_window(values, percentiles)


def display_plane(plane: np.ndarray, window: Window | None, scale: Scale | None) -> np.ndarray:
    """One native plane windowed to uint8 by :func:`rescale` (its values are ``raw * slope + inter`` when ``scale``
    is given); a uint8 plane without ``scale`` passes through. Same shape."""
    if plane.dtype == np.uint8 and scale is None:
        return plane
    values = plane.astype(np.float32)
    if plane.dtype.kind == "f" and not np.isfinite(values).all():
        raise NonFiniteImage(None, f"{values.size - np.count_nonzero(np.isfinite(values))} NaN/Inf values in a slice")
    if scale is not None and scale != (1.0, 0.0):
        values *= np.float32(scale[0])
        values += np.float32(scale[1])
    if window is None:
        raise ValueError("display_plane needs a window for non-uint8 planes")
    low, high = float(window[0]), float(window[1])
    if high < low:
        raise ValueError(f"window {window} has high < low")
    return rescale(values, low, high)


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

