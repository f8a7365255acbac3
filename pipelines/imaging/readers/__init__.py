"""The format readers, in the order their signatures are checked (strong ones first, then weak ones).

Adding a format: a module here with its :class:`~pipelines.imaging.readers.base.Reader` subclass, one line in
``READERS``, and a test file in ``tests/imaging/`` (the contract test runs over every registered reader).
"""

from __future__ import annotations

from pipelines.imaging.readers.base import Reader, Signature
from pipelines.imaging.readers.dicom import DicomReader
from pipelines.imaging.readers.nifti import NiftiReader
from pipelines.imaging.readers.npy import NpyReader
from pipelines.imaging.readers.pil import PilReader

READERS: tuple[Reader, ...] = (PilReader(), NpyReader(), DicomReader(), NiftiReader())

#: format name -> its reader
BY_FORMAT: dict[str, Reader] = {fmt: reader for reader in READERS for fmt in reader.formats}


def reader_for(fmt: str) -> Reader | None:
    return BY_FORMAT.get(fmt)


def signatures() -> list[Signature]:
    """Every reader's signatures in checking order: strong ones in registry order, then weak ones."""
    every = [s for reader in READERS for s in reader.signatures]
    return [s for s in every if not s.weak] + [s for s in every if s.weak]


__all__ = ["BY_FORMAT", "READERS", "Reader", "Signature", "reader_for", "signatures"]
