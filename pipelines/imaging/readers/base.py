"""The reader contract: one class per file format, looked up by the format its content is sniffed as.

A reader declares

* ``formats``: the format names it reads (what :func:`pipelines.imaging.sniff.sniff` returns);
* ``signatures``: magic bytes at fixed offsets that identify those formats (content beats file names). A *weak*
  signature (short, or one that another format's header may contain, like a TIFF header in a DICOM preamble) is
  checked only after every strong one;
* ``claim(head, name)``: a format for a file no signature matched, judged by its name (``x.dcm`` without the
  DICOM preamble, a gzipped ``x.nii.gz``), or None;
* ``slice_suffixes``: file-name endings that count as slices of this format in a slice folder even when the
  content is not recognised (so a corrupt ``7.jpg`` is reported, not skipped);

and implements

* ``image(path, cfg, colour)``: a 2D image as ``[C, size_2d, size_2d]`` planes (uint8, or float32 still to be
  windowed) and the window to apply (None: percentiles);
* ``volume(path, cfg, colour)``: the file as :class:`~pipelines.imaging.planes.Slices` (native planes: resizing
  follows windowing, in uint8);
* ``series(folder, files, cfg, colour)``: a folder of one-slice files of this format as one volume (only readers
  that can form slice series, ``series_name`` set).

Readers decode (and resize 2D images); intensity, channels and depth are shared (``intensity``, ``depth``). A reader raises
only :class:`~pipelines.imaging.errors.ImageError` subclasses naming the file: its library calls on a file's bytes
sit inside ``errors.decoding(path, what)``, which reports what the library raises on bad bytes as
``UndecodableImage`` and lets a bug of ours through (the build reports it as ``internal_error``); sizes from headers
are checked (``files.check_size``) before pixels are decoded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from pipelines.config import ImageConfig
from pipelines.imaging.errors import UnsupportedFormat
from pipelines.imaging.intensity import Window
from pipelines.imaging.planes import Slices


@dataclass(frozen=True)
class Signature:
    format: str
    offset: int
    magic: bytes
    weak: bool = False

    def matches(self, head: bytes) -> bool:
        return head[self.offset : self.offset + len(self.magic)] == self.magic


class Reader:
    """Base class of the format readers (see the module docstring)."""

    formats: ClassVar[tuple[str, ...]]
    signatures: ClassVar[tuple[Signature, ...]]
    slice_suffixes: ClassVar[frozenset[str]] = frozenset()
    #: How a slice series of this format is named in messages ("DICOM", "image"); "" = no series support.
    series_name: ClassVar[str] = ""

    def claim(self, head: bytes, name: str) -> str | None:
        return None

    def image(self, path: Path, cfg: ImageConfig, colour: bool) -> tuple[np.ndarray, Window | None]:
        raise NotImplementedError

    def volume(self, path: Path, cfg: ImageConfig, colour: bool) -> Slices:
        raise NotImplementedError

    def series(self, folder: Path, files: Sequence[Path], cfg: ImageConfig, colour: bool) -> Slices:
        raise UnsupportedFormat(folder, f"{type(self).__name__} cannot read a folder of slices")
