"""What every source has in common: the build context, the interface, table reading."""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.csv as pacsv

from pipelines.config import ImageConfig
from pipelines.paths import PathResolver
from pipelines.records import ImageRef, Record, Reject, SampleSpec


@dataclass
class BuildContext:
    raw: Path  # the dataset's raw root
    mode: str
    radfm_dir: Path  # where RadFM's split files are
    resolver: PathResolver
    seed: int = 0
    image: ImageConfig = field(default_factory=ImageConfig)
    options: dict[str, Any] = field(default_factory=dict)


class Source:
    """Base class of a source module's ``SOURCE`` object."""

    name: ClassVar[str]
    modes: ClassVar[tuple[str, ...]]
    default_mode: ClassVar[str]
    #: Label names the dataset always has (finding classes …), added to the keyword lexicon.
    keyword_terms: ClassVar[tuple[str, ...]] = ()

    def records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        raise NotImplementedError

    def samples(self, record: Record, ctx: BuildContext) -> list[SampleSpec]:
        raise NotImplementedError

    def label_terms(self, ctx: BuildContext) -> tuple[str, ...]:
        """The dataset's own label names for the keyword lexicon: ``keyword_terms`` plus
        names found while reading (called after ``records``)."""
        return tuple(self.keyword_terms)

    def reject(self, source_id: str, file: str, reason: str, message: str, task: str = "") -> Reject:
        return Reject(self.name, source_id, file, reason, message, "plan", task)


@dataclass(frozen=True)
class Row:
    line: int  # 1-based number of the data row in its file (the header is not counted)
    values: dict[str, str]


class MissingColumns(ValueError):
    pass


def read_table(path: Path, required: tuple[str, ...]) -> tuple[list[Row], list[str]]:
    """Read a CSV (optionally .gz) as strings with pyarrow.

    Returns the rows and a message for each malformed row (a field count that
    differs from the header's), which are skipped and reported instead of being padded
    or failing the whole file. Raises :class:`MissingColumns` naming the file and the
    missing columns.
    """
    raw = path.read_bytes()
    if path.suffix == ".gz":
        raw = gzip.decompress(raw)
    header = next(csv.reader(io.StringIO(raw.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace"))), [])
    missing = [c for c in required if c not in header]
    if missing:
        raise MissingColumns(f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(header)})")
    bad: list[str] = []

    def invalid(row) -> str:
        shown = row.text if len(row.text) <= 80 else row.text[:77] + "..."
        bad.append(f"malformed row ({row.actual_columns} fields, header has {row.expected_columns}): {shown!r}")
        return "skip"

    table = pacsv.read_csv(
        io.BytesIO(raw),
        read_options=pacsv.ReadOptions(use_threads=False),
        parse_options=pacsv.ParseOptions(invalid_row_handler=invalid, newlines_in_values=True),
        convert_options=pacsv.ConvertOptions(column_types={c: pa.string() for c in header}, strings_can_be_null=False),
    )
    rows = [Row(i + 1, {k: (v or "") for k, v in values.items()}) for i, values in enumerate(table.to_pylist())]
    return rows, bad


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def npy_shape(path: Path) -> tuple[int, ...]:
    """Shape of a ``.npy`` file from its header, without reading the data."""
    import numpy as np

    with open(path, "rb") as fh:
        major, _ = np.lib.format.read_magic(fh)
        reader = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, _, _ = reader(fh)
    return tuple(shape)


def image_refs_for(raw: Path, rel: str) -> list[ImageRef]:
    """Expand one resolved path into image references.

    * ``.npy`` -> one ref per series along axis 0 when the array is ``[S, C, H, W, D]``;
    * ``.nii``/``.nii.gz``/DICOM/image file -> one volume;
    * a folder of slice files -> one volume; a folder of series folders -> one volume each
      (sorted by the number after ``_`` in ``CT_0``, ``MRI_1`` …, then by name).
    """
    path = raw / rel
    if rel.endswith(".npy"):
        shape = npy_shape(path)
        if len(shape) == 5:
            return [ImageRef(rel, "npy", s) for s in range(shape[0])]
        return [ImageRef(rel, "npy", 0)]
    if path.is_dir():
        subdirs = sorted((p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")), key=_series_order)
        if subdirs:
            return [ImageRef(f"{rel}/{d.name}", "volume") for d in subdirs]
    return [ImageRef(rel, "volume")]


def _series_order(p: Path) -> tuple[int, str]:
    tail = p.name.rsplit("_", 1)[-1]
    return (int(tail) if tail.isdigit() else 1 << 30, p.name)
