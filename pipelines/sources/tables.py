"""Reading a source's tables (CSV, optionally gzipped) and JSON lists: rows or rejects, written once for every source.

:func:`table_rows` and :func:`json_items` yield every data row / list entry of a file, or a
:class:`~pipelines.records.Reject` for what cannot be read: the file missing (``missing_file``), unreadable or
without a required column (``bad_file``), a malformed row (``bad_row``). The source then checks each row's values
and turns it into a record or a reject of its own. :func:`read_table` is the underlying pyarrow reader.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from pipelines.records import Reject
from shards_spec.jsonio import read_json


@dataclass(frozen=True)
class Row:
    line: int  # 1-based number of the data row in its file (the header is not counted)
    values: dict[str, str]


@dataclass(frozen=True)
class Item:
    index: int  # 0-based position in the file's top-level list
    value: Any


class MissingColumns(ValueError):
    pass


#: What reading a file can raise on bad content (not on a bug of ours): I/O and gzip errors, bad bytes, bad CSV.
_FILE_ERRORS = (OSError, EOFError, UnicodeDecodeError, pa.ArrowInvalid)


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


def table_rows(dataset: str, path: Path, required: tuple[str, ...], what: str) -> Iterator[Row | Reject]:
    """Every row of the table at ``path``, or rejects: the file missing (``what`` names it in the message, e.g.
    "RadFM split file"), unreadable or lacking a required column (one ``bad_file``), and one ``bad_row`` per
    malformed row. Rejects name the file by its name (``source_id`` and ``file``)."""
    name = path.name
    if not path.exists():
        yield _reject(dataset, name, "missing_file", f"{what} {path} not found")
        return
    try:
        rows, bad = read_table(path, required)
    except MissingColumns as exc:
        yield _reject(dataset, name, "bad_file", str(exc))
        return
    except _FILE_ERRORS as exc:
        yield _reject(dataset, name, "bad_file", f"{path}: cannot read the table: {exc}")
        return
    for msg in bad:
        yield _reject(dataset, name, "bad_row", f"{name}: {msg}")
    yield from rows


def json_items(dataset: str, path: Path, what: str) -> Iterator[Item | Reject]:
    """Every entry of the JSON list at ``path``, or rejects: the file missing, unreadable, not JSON, or not a
    list (one ``missing_file`` / ``bad_file``)."""
    name = path.name
    if not path.exists():
        yield _reject(dataset, name, "missing_file", f"{what} {path} not found")
        return
    try:
        data = read_json(path)
    except (*_FILE_ERRORS, json.JSONDecodeError) as exc:
        yield _reject(dataset, name, "bad_file", f"{path}: cannot read the JSON: {exc}")
        return
    if not isinstance(data, list):
        yield _reject(dataset, name, "bad_file", f"{path}: expected a JSON list, got {type(data).__name__}")
        return
    for i, value in enumerate(data):
        yield Item(i, value)


def optional_json(dataset: str, path: Path) -> tuple[Any, Reject | None]:
    """The JSON document at ``path`` of an optional file: ``(None, None)`` when it is absent, ``(None, reject)``
    when it is present but unreadable (it is then skipped and reported as ``bad_file``)."""
    if not path.exists():
        return None, None
    try:
        return read_json(path), None
    except (*_FILE_ERRORS, json.JSONDecodeError) as exc:
        return None, _reject(dataset, path.name, "bad_file", f"{path}: cannot read the JSON (optional file, skipped): {exc}")


def _reject(dataset: str, name: str, reason: str, message: str) -> Reject:
    return Reject(dataset, name, name, reason, message, "plan")


def jsonl_items(dataset: str, path: Path, what: str) -> Iterator[Item | Reject]:
    """Every line of the JSON Lines file at ``path`` (``Item.index``: its 1-based line number), or rejects: the
    file missing or unreadable (one ``missing_file`` / ``bad_file``), a line that is not JSON (``bad_row``, source
    id ``<name>:line<N>``). Blank lines are not data."""
    name = path.name
    if not path.exists():
        yield _reject(dataset, name, "missing_file", f"{what} {path} not found")
        return
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except (*_FILE_ERRORS, UnicodeDecodeError) as exc:
        yield _reject(dataset, name, "bad_file", f"{path}: cannot read the file: {exc}")
        return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield Item(number, json.loads(line))
        except (ValueError, RecursionError) as exc:
            shown = line if len(line) <= 80 else line[:77] + "..."
            yield Reject(dataset, f"{name}:line{number}", name, "bad_row", f"{name} line {number}: not JSON ({exc}): {shown!r}",
                         "plan")


def json_document(dataset: str, path: Path, source_id: str, what: str) -> Any:
    """The JSON document at ``path`` (one per item: a paper, a case), or a reject naming ``source_id``: missing
    (``missing_file``) or unreadable / not JSON (``bad_file``)."""
    if not path.is_file():
        return Reject(dataset, source_id, path.name, "missing_file", f"{what} {path} not found", "plan")
    try:
        return read_json(path)
    except (*_FILE_ERRORS, ValueError, RecursionError) as exc:
        return Reject(dataset, source_id, path.name, "bad_file", f"{what} {path}: not valid JSON: {exc}", "plan")


def parquet_rows(dataset: str, path: Path, required: tuple[str, ...], what: str) -> Iterator[Row | Reject]:
    """Every row of the Parquet file at ``path`` as a :class:`Row` of strings (``line``: 1-based row number; nulls
    are ""), or one reject: the file missing, unreadable or without a required column."""
    import pyarrow.parquet as pq

    name = path.name
    if not path.exists():
        yield _reject(dataset, name, "missing_file", f"{what} {path} not found")
        return
    try:
        table = pq.read_table(path)
    except (*_FILE_ERRORS, pa.ArrowException) as exc:
        yield _reject(dataset, name, "bad_file", f"{path}: cannot read the Parquet file: {exc}")
        return
    missing = [c for c in required if c not in table.column_names]
    if missing:
        yield _reject(dataset, name, "bad_file", f"{path}: missing column(s) {', '.join(missing)} (has: "
                      f"{', '.join(table.column_names)})")
        return
    for i, values in enumerate(table.to_pylist()):
        yield Row(i + 1, {k: "" if v is None else str(v) for k, v in values.items()})
