"""In-plane geometry and stacking, shared by every format: channel-first planes, square resizing, and a volume
read slice by slice (:class:`Slices`) stacked along a new last axis with bounded memory.

In-plane resizing squashes to a square (the aspect ratio is not kept), as RadFM did; the filter is Pillow's
antialiased bicubic.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import numpy as np
from PIL import Image

from pipelines.imaging.errors import EmptySeries, PathLike, UnsupportedFormat
from pipelines.imaging.intensity import Window

FILTER = Image.Resampling.BICUBIC


#: Pillow first shrinks by an integer factor (box average) while at least this ratio remains.
REDUCING_GAP = 2.0


#: A volume deeper than ``PREREDUCE_FACTOR * max_depth`` slices is averaged over groups of consecutive
#: slices while it is read, so memory stays bounded; ``fit_depth`` later reduces it further anyway.
PREREDUCE_FACTOR = 4


def channels_first(pixels: np.ndarray) -> np.ndarray:
    """``[H, W]`` -> ``[1, H, W]``; ``[H, W, 3]`` -> ``[3, H, W]``."""
    return pixels[None] if pixels.ndim == 2 else np.moveaxis(pixels, -1, 0)


def resize_planes(planes: np.ndarray, size: int) -> np.ndarray:
    """Resize ``[C, h, w]`` to ``[C, size, size]``: uint8 stays uint8, anything else becomes float32."""
    if planes.dtype != np.uint8:
        planes = planes.astype(np.float32)
    resized = [
        Image.fromarray(np.ascontiguousarray(plane)).resize(
            (size, size), FILTER, reducing_gap=REDUCING_GAP
        )
        for plane in planes
    ]
    return np.stack([np.asarray(image) for image in resized])


class Slices(NamedTuple):
    """A volume being read: ``count`` native planes ``[C, h, w]`` in order (uint8 display values, or raw values
    still to be windowed: ints or floats, mapped by ``scale`` when given), the window (None: percentiles of the
    native voxels) and the ``scale`` ``(slope, inter)`` of raw values (None: the planes hold the values).
    Planes are resized to the target size after windowing (:func:`pipelines.imaging.load.finish_volume`)."""

    count: int
    planes: Iterator[np.ndarray]
    window: Window | None = None
    scale: tuple[float, float] | None = None


def resize_plane(plane: np.ndarray, size: int) -> np.ndarray:
    """A uint8 ``[C, h, w]`` plane resized to ``[C, size, size]`` (itself when it already has that size)."""
    if plane.shape[1:] == (size, size):
        return plane
    return resize_planes(plane, size)


def stack_planes(count: int, planes: Iterator[np.ndarray], bound: int, source: PathLike) -> np.ndarray:
    """Stack uint8 ``[C, H, W]`` planes into ``[D, C, H, W]`` (slices contiguous). More than ``bound`` planes are
    averaged in groups of ``ceil(count / bound)`` consecutive planes while reading (rounded half to even), so at
    most one group is held in float. A series mixing grey and colour slices (one annotated slice saved in colour)
    is stacked in colour, grey slices repeated to 3 channels; the channel rule then decides on the whole volume."""
    group = -(-count // bound)
    depth = -(-count // group)
    stack: np.ndarray | None = None
    total: np.ndarray | None = None
    for index, plane in enumerate(planes):
        if stack is None:
            first = plane
            stack = np.zeros((depth, *plane.shape), np.uint8)
        elif plane.shape[1:] == first.shape[1:] and plane.dtype == first.dtype and {plane.shape[0], first.shape[0]} == {1, 3}:
            if plane.shape[0] == 1:
                plane = np.repeat(plane, 3, axis=0)
            else:
                stack, first = np.repeat(stack, 3, axis=1), plane
                total = None if total is None else np.repeat(total, 3, axis=0)
        elif plane.shape != first.shape or plane.dtype != first.dtype:
            raise UnsupportedFormat(
                source,
                f"slice {index} is {plane.dtype} {plane.shape}, slice 0 is {first.dtype} {first.shape}",
            )
        if group == 1:
            stack[index] = plane
            continue
        slot, member = divmod(index, group)
        if member == 0:
            total = plane.astype(np.float32)
        else:
            total += plane
        if member == group - 1 or index == count - 1:
            total /= np.float32(member + 1)
            stack[slot] = np.rint(total)
    if stack is None:
        raise EmptySeries(source, "no slices")
    return stack
