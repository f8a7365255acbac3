"""NumPy ``.npy`` arrays (never unpickled): 2D images ``[H, W]`` / ``[H, W, 1|3|4]``, volumes ``[H, W, D]`` /
``[C, H, W, D]``, and RadFM's processed ``[S, 3, H, W, Z]`` files holding several series of one case
(:func:`pipelines.imaging.load.load_npy_images`). RadFM's grey planes repeated three times collapse to one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.config import ImageConfig
from pipelines.imaging.errors import DecompressionBomb, UnsupportedFormat, decoding
from pipelines.imaging.files import check_size
from pipelines.imaging.intensity import Window, drop_repeated_channels
from pipelines.imaging.planes import Slices, resize_planes
from pipelines.imaging.readers.base import Reader, Signature


def npy_volume(arr: np.ndarray, path: Path) -> np.ndarray:
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


def load_npy(path: Path, cfg: ImageConfig) -> np.ndarray:
    """Memory-map a ``.npy`` file (no pickles) after checking dtype and size from its header."""
    with decoding(path, "not a readable .npy file"):
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    if arr.dtype.kind not in "biuf":
        raise UnsupportedFormat(path, f"dtype {arr.dtype} is not numeric")
    if arr.size > cfg.max_voxels:
        raise DecompressionBomb(path, f"{arr.size} values exceed max_voxels={cfg.max_voxels}")
    return arr


def npy_2d(arr: np.ndarray, path: Path, cfg: ImageConfig) -> np.ndarray:
    """A 2D ``.npy`` image (``[H, W]`` or ``[H, W, 1|3|4]``, alpha dropped) as ``[C, H, W]``."""
    if arr.ndim == 2:
        planes = arr[None]
    elif arr.ndim == 3 and arr.shape[-1] in (1, 3, 4):
        planes = np.moveaxis(arr[..., :3], -1, 0)
    else:
        raise UnsupportedFormat(path, f"array {arr.shape} is not a 2D image (H x W or H x W x 3)")
    check_size(path, planes.shape[1], planes.shape[2], 1, cfg)
    return drop_repeated_channels(np.asarray(planes), axis=0)


def npy_series(arr: np.ndarray, path: Path) -> list[np.ndarray]:
    """RadFM ``[S, C, H, W, Z]`` -> S arrays ``[C, H, W, Z]``; 2-4 axes -> one (see :func:`npy_volume`)."""
    return list(arr) if arr.ndim == 5 else [npy_volume(arr, path)]


def array_slices(volume: np.ndarray, path: Path, cfg: ImageConfig) -> Slices:
    """Native slices of an in-memory / memory-mapped ``[C, H, W, D]`` array."""
    channels, height, width, depth = volume.shape
    if channels not in (1, 3):
        raise UnsupportedFormat(path, f"array {volume.shape}: channel axis must be 1 or 3")
    check_size(path, height, width, depth * channels, cfg)
    with decoding(path, "cannot read array data"):
        by_slice = np.ascontiguousarray(np.moveaxis(volume, -1, 0))  # [D, C, H, W], read once
    by_slice = drop_repeated_channels(by_slice, axis=1)
    return Slices(depth, iter(by_slice))



class NpyReader(Reader):
    formats = ("npy",)
    signatures = (Signature("npy", 0, b"\x93NUMPY"),)

    def image(self, path: Path, cfg: ImageConfig, colour: bool) -> tuple[np.ndarray, Window | None]:
        return resize_planes(npy_2d(load_npy(path, cfg), path, cfg), cfg.size_2d), None

    def volume(self, path: Path, cfg: ImageConfig, colour: bool) -> Slices:
        return array_slices(npy_volume(load_npy(path, cfg), path), path, cfg)
