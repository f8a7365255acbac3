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
    """A volume being read: ``count`` planes ``[C, size, size]`` (uint8, or float32 still to be
    windowed), in order, and the window for :func:`to_uint8` (None: percentiles)."""

    count: int
    planes: Iterator[np.ndarray]
    window: Window | None = None


def stack_planes(slices: Slices, bound: int, source: PathLike) -> np.ndarray:
    """Stack planes along a new last axis -> ``[C, H, W, D]``. More than ``bound`` planes are averaged in
    groups of ``ceil(count / bound)`` consecutive planes while reading (uint8 stays uint8, rounded). A series
    mixing grey and colour slices (one annotated slice saved in colour) is stacked in colour, grey slices
    repeated to 3 channels; the channel rule then decides on the whole volume."""
    group = -(-slices.count // bound)
    depth = -(-slices.count // group)
    stack: np.ndarray | None = None
    for index, plane in enumerate(slices.planes):
        if stack is None:
            first = plane
            stack = np.zeros((depth, *plane.shape), np.float32 if group > 1 else plane.dtype)
        elif plane.shape[1:] == first.shape[1:] and plane.dtype == first.dtype and {plane.shape[0], first.shape[0]} == {1, 3}:
            if plane.shape[0] == 1:
                plane = np.repeat(plane, 3, axis=0)
            else:
                stack, first = np.repeat(stack, 3, axis=1), plane
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

