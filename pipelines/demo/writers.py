"""Deterministic file writers for fixtures: the same content always gives the same bytes (fixed JPEG quality,
gzip with ``mtime=0``, no timestamps, ``.npy`` without pickles)."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image


def write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[object]]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue().encode("utf-8")


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> int:
    """Write a CSV; returns the number of data rows."""
    write_bytes(path, csv_bytes(header, rows))
    return len(rows)


def write_csv_gz(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> int:
    write_bytes(path, gzip.compress(csv_bytes(header, rows), compresslevel=9, mtime=0))
    return len(rows)


def write_json(path: Path, obj: object) -> None:
    """JSON as publishers ship it: insertion order, two-space indent, UTF-8."""
    write_text(path, json.dumps(obj, ensure_ascii=False, indent=2) + "\n")


def jpeg_bytes(pixels: np.ndarray, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def png_bytes(pixels: np.ndarray) -> bytes:
    """An 8-bit grey (``uint8``) or 16-bit grey (``uint16``) PNG, without metadata chunks."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


#: DICOM SOP classes of the radiographs the fixtures write, by Modality
SOP_CLASSES = {
    "CR": "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image Storage
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image Storage - For Presentation
    "MG": "1.2.840.10008.5.1.4.1.1.1.2",  # Digital Mammography X-Ray Image Storage - For Presentation
}
#: transfer syntaxes by short name
SYNTAXES = {
    "explicit": "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "j2k": "1.2.840.10008.1.2.4.90",  # JPEG 2000 Image Compression (Lossless Only)
    "rle": "1.2.840.10008.1.2.5",  # RLE Lossless
    "jpeg": "1.2.840.10008.1.2.4.50",  # JPEG Baseline (Process 1): 8-bit, MONOCHROME2
}


def dicom_bytes(pixels: np.ndarray, *, modality: str, syntax: str, photometric: str = "MONOCHROME2",
                bits_stored: int = 12, window: tuple[float, float] | None = None, tags: dict | None = None) -> bytes:
    """A single-frame grey radiograph as a DICOM Part 10 file, deterministic (every UID comes from ``tags``).

    ``pixels`` is the displayed uint8 image (bright = dense). It is stored with ``bits_stored`` bits (8 for
    ``jpeg``), inverted for ``MONOCHROME1``; ``window`` = (center, width) in stored values adds a VOI window.
    ``syntax``: ``explicit`` (uncompressed), ``j2k`` (JPEG 2000 lossless), ``rle`` or ``jpeg`` (baseline, quality 90).
    ``tags``: keyword -> value, at least ``SOPInstanceUID``, ``StudyInstanceUID``, ``SeriesInstanceUID``."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import UID

    if syntax == "jpeg" and (bits_stored != 8 or photometric != "MONOCHROME2"):
        raise ValueError("JPEG baseline DICOMs here are 8-bit MONOCHROME2")
    tags = dict(tags or {})
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = UID(SOP_CLASSES[modality])
    ds.file_meta.MediaStorageSOPInstanceUID = UID(tags["SOPInstanceUID"])
    ds.file_meta.TransferSyntaxUID = UID(SYNTAXES["explicit"])
    ds.file_meta.ImplementationClassUID = UID("1.2.826.0.1.3680043.8.498.1")
    ds.SOPClassUID = SOP_CLASSES[modality]
    ds.Modality = modality
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    top = (1 << bits_stored) - 1
    stored = np.rint(pixels.astype(np.float64) * (top / 255.0)).astype(np.uint16 if bits_stored > 8 else np.uint8)
    if photometric == "MONOCHROME1":
        stored = (top - stored).astype(stored.dtype)
    ds.Rows, ds.Columns = (int(v) for v in stored.shape)
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16 if bits_stored > 8 else 8
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    if window is not None:
        ds.WindowCenter, ds.WindowWidth = f"{window[0]:.0f}", f"{window[1]:.0f}"
    if syntax == "jpeg":
        buf = io.BytesIO()
        Image.fromarray(stored, mode="L").save(buf, format="JPEG", quality=90)
        ds.file_meta.TransferSyntaxUID = UID(SYNTAXES["jpeg"])
        ds.PixelData = encapsulate([buf.getvalue()])
        ds["PixelData"].VR = "OB"
        ds.LossyImageCompression = "01"
    else:
        ds.PixelData = stored.tobytes()
        if syntax != "explicit":
            ds.compress(UID(SYNTAXES[syntax]), stored, generate_instance_uid=False)
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()
def write_jsonl(path: Path, rows: Sequence[object], lines: Sequence[str] = ()) -> int:
    """JSON Lines, one object per line (``lines``: raw lines appended as they are, e.g. a planted broken one);
    returns the number of lines."""
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + "".join(line + "\n" for line in lines)
    write_text(path, text)
    return len(rows) + len(lines)
