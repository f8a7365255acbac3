"""Planted faults: every fixture breaks a few of its own files on purpose, and says which, so tests can check that
each becomes a reject with the right reason.

A fault is ``{"dataset", "file" (relative to <out>/<dataset>), "kind"}`` plus extra keys (``row``: the 0-based data
row of a ``bad_row``; ``mode``: the build mode that reads the file, when it is not the source's default mode). ``PLANT_KINDS`` lists the kinds and, in ``REJECT_REASON``, the reject reason each must cause.
"""

from __future__ import annotations

#: fault kind -> the reject reason the build must give it
REJECT_REASON = {
    "corrupt_jpeg": "undecodable",
    "corrupt_file": "undecodable",  # any other image file (DICOM, PNG) cut short
    "empty_file": "empty_file",
    "missing_file": "missing_file",
    "bad_row": "bad_row",
    "nan_volume": "nan_image",
    "bad_file": "bad_file",  # a whole file that cannot be read (a truncated paper JSON)
    "not_english": "not_english",  # a row in another language, skipped (SLAKE's Chinese questions)
    "stray_file": "",  # a file in a store that does not follow its layout: no reject, the store's check counts it
}
PLANT_KINDS = tuple(REJECT_REASON)


def fault(dataset: str, file: str, kind: str, **extra: object) -> dict:
    """One planted fault: ``file`` is relative to the dataset root (``<out>/<dataset>``)."""
    if kind not in REJECT_REASON:
        raise ValueError(f"unknown fault kind {kind!r} (known: {', '.join(PLANT_KINDS)})")
    return {"dataset": dataset, "file": file, "kind": kind, **extra}


def truncated(data: bytes) -> bytes:
    """A file cut to its first third: a valid header, then a truncated body (a ``corrupt_jpeg``)."""
    return data[: len(data) // 3]
