"""The loaders: a file (or slice folder) -> a uint8 array in RadFM's channel-first, depth-last layout.

Each looks the file's reader up by its sniffed format, lets it decode and resize, then applies the shared
intensity and channel rules; :func:`load_images` loads every image of a sample as its reference says.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from pipelines.config import ImageConfig
from pipelines.imaging.depth import stream_size
from pipelines.imaging.errors import ConstantImage, ImageError, MissingFile, PathLike, UndecodableImage, UnsupportedFormat
from pipelines.imaging.files import existing_file
from pipelines.imaging.folder import folder_slices
from pipelines.imaging.intensity import (
    Window,
    check_channels,
    compact_plane,
    display_plane,
    native_window,
    select_channels,
    to_uint8,
)
from pipelines.imaging.planes import PREREDUCE_FACTOR, Slices, resize_plane, stack_planes
from pipelines.imaging.readers import Reader, reader_for
from pipelines.imaging.readers.npy import array_slices, load_npy, npy_series
from pipelines.imaging.sniff import sniff
from pipelines.paths import store_root
from pipelines.records import ImageRef


def _reader(path: Path) -> Reader:
    reader = reader_for(sniff(path))
    if reader is None:
        raise UndecodableImage(path, "content is not a recognised image format")
    return reader


def finish_volume(slices: Slices, cfg: ImageConfig, channels: str, source: PathLike, size: int | None = None) -> np.ndarray:
    """Native planes -> uint8 ``[C, size, size, D]`` (``size`` default ``cfg.size_3d``), as a depth-last view of
    slices-contiguous ``[D, C, size, size]`` memory (``np.moveaxis``: no copy).

    Without a window from the file, the window is ``cfg.clip_percentiles`` of the native voxels (every plane is
    held, compacted to int16 where its values allow, until the window is known: :func:`native_window`); then each
    plane is windowed to uint8 (:func:`display_plane`), resized in uint8 and stacked (:func:`stack_planes`)."""
    size = cfg.size_3d if size is None else size
    planes, window = slices.planes, slices.window
    try:
        if window is None:
            held = [compact_plane(plane) for plane in planes]
            if any(plane.dtype != np.uint8 for plane in held) or slices.scale is not None:
                window = native_window(held, cfg.clip_percentiles, slices.scale)
            planes = iter(held)
        shown = (resize_plane(display_plane(plane, window, slices.scale), size) for plane in planes)
        stack = stack_planes(slices.count, shown, PREREDUCE_FACTOR * cfg.max_depth, source)
    except ImageError as exc:
        if exc.path is None:
            exc = type(exc)(source, exc.detail)
        raise exc from None
    if stack.min() == stack.max():
        raise ConstantImage(source, "all values are equal after windowing")
    return select_channels(np.moveaxis(stack, 0, -1), channels)


def planes_2d(path: Path, cfg: ImageConfig, colour: bool) -> tuple[np.ndarray, Window | None]:
    """``[C, size_2d, size_2d]`` planes (uint8 or float32) and the window to apply."""
    return _reader(path).image(path, cfg, colour)


def load_2d(path: PathLike, cfg: ImageConfig, channels: str = "grey") -> np.ndarray:
    """Load a 2D image as uint8 ``[C, size_2d, size_2d, 1]``.

    Sources (recognised by content, not by extension): JPEG/PNG and other Pillow formats, single-frame
    DICOM, ``.npy`` ``[H, W]`` / ``[H, W, 3]``. ``channels``: ``"grey"`` (C=1), ``"rgb"`` (C=3, grey
    repeated) or ``"auto"`` (3 only when the source is colour with planes that actually differ).
    The image is squashed to a square.
    """
    check_channels(channels)
    path = existing_file(path)
    planes, window = planes_2d(path, cfg, colour=channels != "grey")
    image = to_uint8(planes, cfg, window, source=path)
    return select_channels(image, channels)[..., None]


def volume_slices(path: Path, cfg: ImageConfig, colour: bool) -> Slices:
    if path.is_dir():
        return folder_slices(path, cfg, colour)
    path = existing_file(path)
    return _reader(path).volume(path, cfg, colour)


def load_volume(path: PathLike, cfg: ImageConfig, channels: str = "grey") -> np.ndarray:
    """Load a volume as uint8 ``[C, size_3d, size_3d, D]``, resized in-plane only.

    ``path`` is a NIfTI file, a ``.npy`` file (``[H, W]``, ``[H, W, D]`` or ``[C, H, W, D]``), a DICOM
    series folder, a folder of JPEG/PNG slices, a (multi-frame) DICOM file or a single 2D image (D = 1).
    D is the number of slices, except that more than ``4 * cfg.max_depth`` slices are averaged in groups
    of consecutive slices while reading (bounded memory), so D <= ``4 * cfg.max_depth``. Intensities are
    windowed over the whole volume. See :func:`load_2d` for ``channels``.
    """
    check_channels(channels)
    path = Path(path)
    if not path.exists():
        raise MissingFile(path, "no such file or folder")
    slices = volume_slices(path, cfg, colour=channels != "grey")
    return finish_volume(slices, cfg, channels, path)


def load_npy_images(
    path: PathLike, cfg: ImageConfig, stream: str, channels: str = "grey"
) -> list[np.ndarray]:
    """Load a RadFM-processed ``.npy`` (``[S, 3, 512, 512, Z]``: several series of one case) as S uint8
    arrays ``[C, size, size, Z]``, size from the stream (``"2d"``: ``size_2d``, and Z must be 1; ``"3d"``:
    ``size_3d``). Also accepts ``[C, H, W, D]``, ``[H, W, D]`` and ``[H, W]`` (one image). Each series is
    windowed on its own. RadFM's grey-repeated-three-times planes collapse to C=1 for ``channels="grey"``
    (and for ``"auto"``).
    """
    check_channels(channels)
    size = stream_size(cfg, stream)
    path = existing_file(path)
    if sniff(path) != "npy":
        raise UnsupportedFormat(path, "not a .npy file")
    images = []
    for index, series in enumerate(npy_series(load_npy(path, cfg), path)):
        if stream == "2d" and series.shape[-1] != 1:
            raise UnsupportedFormat(path, f"series {index} has depth {series.shape[-1]}, 2d needs 1")
        slices = array_slices(series, path, cfg)
        images.append(finish_volume(slices, cfg, channels, path, size))
    return images


def load_images(raw: Path, refs: Sequence[ImageRef], cfg: ImageConfig, stream: str, channels: str = "grey",
                stores: Mapping[str, Path] | None = None) -> list[np.ndarray]:
    """The images of one sample, each loaded as its reference says (``load_as``): ``image2d`` -> :func:`load_2d`,
    ``volume`` -> :func:`load_volume`, ``npy`` -> series ``ref.series`` of :func:`load_npy_images` (a file is
    read once however many of its series the sample uses). Paths are relative to ``raw``, or to
    ``stores[ref.store]`` for a reference into a figure store."""
    arrays = []
    npy_cache: dict[str, list[np.ndarray]] = {}
    for ref in refs:
        path = store_root(raw, ref.store, stores) / ref.path
        if ref.load_as == "image2d":
            arrays.append(load_2d(path, cfg, channels=channels))
        elif ref.load_as == "volume":
            arrays.append(load_volume(path, cfg, channels=channels))
        elif ref.load_as == "npy":
            if ref.path not in npy_cache:
                npy_cache[ref.path] = load_npy_images(path, cfg, stream, channels=channels)
            series = npy_cache[ref.path]
            if ref.series >= len(series):
                raise UnsupportedFormat(f"{path}: series {ref.series} requested, file holds {len(series)}")
            arrays.append(series[ref.series])
        else:
            raise ValueError(f"{ref.path}: unknown load_as {ref.load_as!r}")
    return arrays

