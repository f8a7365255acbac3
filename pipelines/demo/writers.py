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


def write_jsonl(path: Path, rows: Sequence[object], lines: Sequence[str] = ()) -> int:
    """JSON Lines, one object per line (``lines``: raw lines appended as they are, e.g. a planted broken one);
    returns the number of lines."""
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + "".join(line + "\n" for line in lines)
    write_text(path, text)
    return len(rows) + len(lines)
