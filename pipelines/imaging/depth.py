"""Depth, shared by every format: RadFM's one depth per sample, depth resampling, stacking a sample's images."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pipelines.config import ImageConfig
from pipelines.imaging.errors import EmptySeries
from shards_spec.layout import closest_depth


def stream_size(cfg: ImageConfig, stream: str) -> int:
    if stream == "2d":
        return cfg.size_2d
    if stream == "3d":
        return cfg.size_3d
    raise ValueError(f"stream must be '2d' or '3d', not {stream!r}")


def common_depth(depths: Sequence[int], cfg: ImageConfig) -> int:
    """RadFM's shared depth for one sample: the value of ``range(min_depth, max_depth + 1,
    depth_multiple)`` closest to ``max(depths)``; ties go to the smaller value, so anything beyond
    ``max_depth`` gets the largest allowed depth."""
    if not depths:
        raise ValueError("common_depth needs at least one depth")
    return closest_depth(max(depths), range(cfg.min_depth, cfg.max_depth + 1, cfg.depth_multiple))


def depth_weights(source: int, target: int) -> np.ndarray:
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
    :func:`depth_weights`). Deterministic (fixed-order float32 sums, rounded half to even); returns the
    input itself when the depth already matches, else a depth-last view of slices-contiguous memory."""
    if volume.ndim != 4 or volume.dtype != np.uint8:
        raise ValueError(f"fit_depth needs a uint8 [C, H, W, D] volume, got {volume.dtype} {volume.shape}")
    if depth < 1:
        raise ValueError(f"depth must be >= 1, not {depth}")
    if volume.shape[-1] == depth:
        return volume
    by_slice = np.ascontiguousarray(np.moveaxis(volume, -1, 0))
    out = np.empty((depth, *volume.shape[:-1]), np.uint8)
    for j, row in enumerate(depth_weights(volume.shape[-1], depth)):
        total = np.zeros(volume.shape[:-1], np.float32)
        for k in np.flatnonzero(row):
            total += np.float32(row[k]) * by_slice[k]
        out[j] = np.clip(np.rint(total), 0, 255)
    return np.moveaxis(out, 0, -1)


def check_sample_image(image: np.ndarray, size: int, stream: str, index: int) -> None:
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
    A ``"3d"`` result is a view of ``[S, C, D, H, W]`` memory (each image's slices contiguous: the layout 3D
    samples are stored in, spec 1.4), a ``"2d"`` one is C-contiguous.
    """
    size = stream_size(cfg, stream)
    if not images:
        raise EmptySeries(None, "sample has no images")
    for index, image in enumerate(images):
        check_sample_image(image, size, stream, index)
    if stream == "3d":
        depth = common_depth([image.shape[-1] for image in images], cfg)
        images = [fit_depth(image, depth) for image in images]
    channels = max(image.shape[0] for image in images)
    if stream == "2d":
        return np.stack([np.broadcast_to(image, (channels, *image.shape[1:])) for image in images])
    first = images[0]
    out = np.empty((len(images), channels, first.shape[-1], first.shape[1], first.shape[2]), np.uint8)
    for slot, image in zip(out, images):
        slot[...] = np.moveaxis(image, -1, 1)  # [C, D, H, W]; broadcast over channels when grey
    return out.transpose(0, 1, 3, 4, 2)

