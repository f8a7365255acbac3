"""The failures of turning a file into a training array: one exception family, each with a reason code.

A bad image is never replaced by noise or zeros (RadFM substituted random noise); the shard worker turns these
errors into rejects with their ``reason``. :data:`DECODE_ERRORS` lists what the decoding libraries raise on bad
bytes; readers wrap their library calls in :func:`decoding`, which reports those as ``UndecodableImage`` naming the
file, but lets a programming error raised by our own code through (it becomes an ``internal_error``, never a data
reject; see :mod:`pipelines.failures`).
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

from nibabel.filebasedimages import ImageFileError
from nibabel.spatialimages import HeaderDataError
from pydicom.errors import InvalidDicomError

from pipelines.failures import is_our_bug

PathLike = str | os.PathLike[str]


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
DECODE_ERRORS: tuple[type[BaseException], ...] = (
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
    HeaderDataError,  # nibabel: an unusable header value (e.g. an infinite scl_inter)
    InvalidDicomError,
)


@contextmanager
def decoding(path: PathLike | None, what: str) -> Iterator[None]:
    """Around a decoding library's calls on a file's bytes: what the library raises on bad input becomes
    :class:`UndecodableImage` (``"<path>: <what>: <error>"``); :class:`ImageError` passes unchanged; a programming
    error raised by our own code (:func:`pipelines.failures.is_our_bug`) propagates as itself."""
    try:
        yield
    except ImageError:
        raise
    except DECODE_ERRORS as exc:
        if is_our_bug(exc):
            raise
        raise UndecodableImage(path, f"{what}: {exc}") from exc
