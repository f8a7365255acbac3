"""A folder of slices as one volume: every visible file is classified by its reader, and the one reader that can
form a series from them reads it (a DICOM series, or JPEG/PNG slices)."""

from __future__ import annotations

from pathlib import Path

from pipelines.config import ImageConfig
from pipelines.imaging.errors import EmptySeries, UnsupportedFormat
from pipelines.imaging.planes import Slices
from pipelines.imaging.readers import READERS, Reader, reader_for
from pipelines.imaging.sniff import UNKNOWN, sniff


def _series_reader(path: Path) -> Reader | None:
    """The series-capable reader a file belongs to: by content, or (unrecognised content) by a slice suffix."""
    fmt = sniff(path)
    reader = reader_for(fmt)
    if reader is not None:
        return reader if reader.series_name else None
    if fmt == UNKNOWN:
        suffix = path.suffix.lower()
        return next((r for r in READERS if r.series_name and suffix in r.slice_suffixes), None)
    return None


def folder_slices(folder: Path, cfg: ImageConfig, colour: bool) -> Slices:
    """A slice folder. Hidden files, sub-folders and files of no series-capable format (by content or suffix)
    are ignored; a folder holding slices of two formats is refused."""
    files = sorted(p for p in folder.iterdir() if not p.name.startswith(".") and p.is_file())
    groups: dict[str, list[Path]] = {}
    readers: dict[str, Reader] = {}
    for path in files:
        reader = _series_reader(path)
        if reader is not None:
            groups.setdefault(reader.series_name, []).append(path)
            readers[reader.series_name] = reader
    if len(groups) > 1:
        raise UnsupportedFormat(folder, f"folder mixes {' and '.join(groups)} slices")
    if groups:
        (name, members), = groups.items()
        return readers[name].series(folder, members, cfg, colour)
    names = " or ".join(r.series_name for r in READERS if r.series_name)
    raise EmptySeries(folder, f"no {names} slices among {len(files)} visible files")
