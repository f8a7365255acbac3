"""JPEG, PNG and the other Pillow formats (TIFF, BMP, GIF, WebP): 2D images and folders of slices.

JPEGs are decoded by libjpeg at 1/2, 1/4 or 1/8 scale when that stays at least the target size (``draft``), in
luma only when grey is wanted. The EXIF orientation is applied (an ``Orientation=6`` photograph is turned upright).
16-bit, 32-bit and float images become float32 and are windowed later.
A slice folder is read in natural file-name order (``0.jpg, 1.jpg, ..., 10.jpg``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from pipelines.config import ImageConfig
from pipelines.imaging.errors import DecompressionBomb, PathLike, UnsupportedFormat, decoding
from pipelines.imaging.files import existing_file, natural_key
from pipelines.imaging.intensity import Window
from pipelines.imaging.planes import FILTER, REDUCING_GAP, Slices, channels_first
from pipelines.imaging.readers.base import Reader, Signature

_GREY_PIL_MODES = frozenset({"1", "L", "LA", "La"})


_HIGH_DEPTH_PIL_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N", "I", "F"})


IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".gif", ".webp"})


def _open_pil(path: Path, max_pixels: int) -> Image.Image:
    """Open (header only) and check the size against ``max_pixels`` before anything is decoded.

    ``cfg.max_pixels`` is the limit; Pillow's own warning threshold is silenced, but its hard limit
    (``2 * Image.MAX_IMAGE_PIXELS``) still raises and is reported as :class:`DecompressionBomb`.
    """
    try:
        with warnings.catch_warnings(), decoding(path, "not a readable image"):
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(path)
    except Image.DecompressionBombError as exc:
        raise DecompressionBomb(path, str(exc)) from exc
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


def read_pil(path: PathLike, size: int, cfg: ImageConfig, colour: bool) -> np.ndarray:
    """Decode a Pillow-readable file and resize it to ``[C, size, size]``.

    JPEGs are decoded by libjpeg at 1/2, 1/4 or 1/8 scale when that stays >= ``size`` (``draft``), in
    luma only when grey is wanted. Returns uint8 (C 1 or 3; 3 only for colour sources when ``colour``)
    or float32 ``[1, size, size]`` for 16-bit / 32-bit / float sources, which still need windowing.
    Multi-frame files (GIF, TIFF) give their first frame.
    """
    path = existing_file(path)
    with _open_pil(path, cfg.max_pixels) as image:
        if image.format == "JPEG":
            image.draft("RGB" if colour else "L", (size, size))
        with decoding(path, "cannot decode"):
            image.load()
            upright = upright_image(image)
            working = _pil_working_mode(upright, path, colour)
            resized = working.resize((size, size), FILTER, reducing_gap=REDUCING_GAP)
    return channels_first(np.asarray(resized))


#: EXIF Orientation (tag 0x0112) values that need a transpose (1 = stored upright).
_EXIF_ORIENTATION = 0x0112


def upright_image(image: Image.Image) -> Image.Image:
    """The image as it is meant to be viewed: EXIF ``Orientation`` 2-8 applied (a camera or phone photograph of a
    film, an ultrasound printout); the image itself when it has none."""
    if image.getexif().get(_EXIF_ORIENTATION, 1) in (1, None):
        return image
    return ImageOps.exif_transpose(image)


def image_series_slices(files: Sequence[Path], cfg: ImageConfig, colour: bool) -> Slices:
    """A folder of JPEG/PNG/... slices in natural file-name order (``0.jpg, 1.jpg, ..., 10.jpg``);
    slices of differing sizes are each resized to ``size_3d``."""
    ordered = sorted(files, key=lambda path: (natural_key(path.name), path.name))
    return Slices(len(ordered), (read_pil(path, cfg.size_3d, cfg, colour) for path in ordered))



class PilReader(Reader):
    formats = ("jpeg", "png", "image")
    signatures = (
        Signature("jpeg", 0, b"\xff\xd8\xff"),
        Signature("png", 0, b"\x89PNG\r\n\x1a\n"),
        Signature("image", 0, b"GIF8", weak=True),
        Signature("image", 0, b"II*\x00", weak=True),
        Signature("image", 0, b"MM\x00*", weak=True),
        Signature("image", 8, b"WEBP", weak=True),
        Signature("image", 0, b"BM", weak=True),
    )
    slice_suffixes = IMAGE_SUFFIXES
    series_name = "image"

    def image(self, path: Path, cfg: ImageConfig, colour: bool) -> tuple[np.ndarray, Window | None]:
        return read_pil(path, cfg.size_2d, cfg, colour), None

    def volume(self, path: Path, cfg: ImageConfig, colour: bool) -> Slices:
        return Slices(1, iter([read_pil(path, cfg.size_3d, cfg, colour)]))

    def series(self, folder: Path, files: Sequence[Path], cfg: ImageConfig, colour: bool) -> Slices:
        return image_series_slices(files, cfg, colour)
