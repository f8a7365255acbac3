"""What a file is, by its content: the registered readers' signatures, then their name-based claims."""

from __future__ import annotations

from pathlib import Path

from pipelines.imaging.readers import READERS, signatures

#: Bytes read from the start of a file: enough for every signature (NIfTI-1's magic ends at byte 348).
SNIFF_BYTES = 352
UNKNOWN = "unknown"


def sniff(path: Path) -> str:
    """The format of a file (``jpeg``, ``png``, ``image``, ``dicom``, ``nifti``, ``npy`` …, see
    :data:`pipelines.imaging.readers.BY_FORMAT`) by its content, else by its name, else ``"unknown"``."""
    with path.open("rb") as handle:
        head = handle.read(SNIFF_BYTES)
    for signature in signatures():
        if signature.matches(head):
            return signature.format
    for reader in READERS:
        claimed = reader.claim(head, path.name)
        if claimed:
            return claimed
    return UNKNOWN
