"""Reading a source's files — tables (CSV, optionally gzipped), JSON documents and lists, text files — as rows,
items and text or rejects, written once for every source.

Every data line of every table is accounted for: it becomes a :class:`Row` or a ``bad_row`` reject naming its line,
never something silently merged with its neighbours. Tables are read **one physical line per row** (the layout of
RadFM's split files and of the publishers' label tables): a line is parsed on its own, strictly, so a broken quote
costs that line alone (``bad_row``) instead of swallowing the following rows into one garbage value. A source whose
table really holds values that span lines passes ``multiline=True``; a multi-line row is then accepted only when it
parses strictly with the header's field count, and otherwise each of its lines is judged on its own. Blank lines are
not data. The standard library's ``csv`` parser is used because it reports physical line numbers; pyarrow and polars
would merge a broken quote's rows without saying where.

What cannot be read at all is one ``FileReject``: the file missing (``missing_file``), a directory, too large,
not gzip, not JSON, or without a required column (``bad_file``), with the file and the problem in the message.
Optional files (``optional_table``, ``optional_json``) that are present but broken are reported the same way and
skipped. Text is decoded by :func:`pipelines.hygiene.decode` (UTF-8; other bytes repaired and counted later, by the
build). Nothing here raises on file content.
"""

from __future__ import annotations

import csv
import gzip
import json
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines.hygiene import decode
from pipelines.paths import PathResolver, UnresolvedPath
from pipelines.records import FileReject, Reject

#: Largest table or JSON file read (after gzip decompression), and largest text file (a report).
MAX_TABLE_BYTES = 2 << 30
MAX_TEXT_BYTES = 16 << 20

csv.field_size_limit(MAX_TEXT_BYTES)


@dataclass(frozen=True)
class Row:
    line: int  # 1-based physical line of the file where the row starts (the header is a line too)
    values: dict[str, str]


@dataclass(frozen=True)
class Item:
    index: int  # 0-based position in the file's top-level list
    value: Any


@dataclass(frozen=True)
class BadLine:
    line: int
    problem: str  # "broken quoting: ...", "3 fields, header has 2: '...'"


class FileProblem(ValueError):
    """A file that cannot be read as a whole; the message names the file and says why."""


#: What reading a file can raise on its content or state (never a bug of ours).
_READ_ERRORS = (OSError, EOFError, zlib.error)


def read_bytes(path: Path, limit: int = MAX_TABLE_BYTES) -> bytes:
    """A file's bytes (``.gz``: decompressed), at most ``limit`` of them, or :class:`FileProblem`."""
    if path.is_dir():
        raise FileProblem(f"{path} is a directory, not a file")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                data = fh.read(limit + 1)
        else:
            if path.stat().st_size > limit:
                raise FileProblem(f"{path}: {path.stat().st_size} bytes, more than the {limit} this reader accepts")
            data = path.read_bytes()
    except _READ_ERRORS as exc:
        raise FileProblem(f"{path}: cannot read it: {exc}") from exc
    if len(data) > limit:
        raise FileProblem(f"{path}: decompresses to more than {limit} bytes")
    return data


def _lines(text: str) -> list[str]:
    """Physical lines without their endings (``\\n``, ``\\r\\n``, or old Mac ``\\r``)."""
    lines = text.split("\n") if "\n" in text or "\r" not in text else text.split("\r")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def _strict(text: str) -> list[str]:
    return next(csv.reader((text,), strict=True), [])


def _shown(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _judge(text: str, width: int, line: int) -> list[str] | BadLine:
    """One row's text parsed strictly with ``width`` fields, or what is wrong with it."""
    try:
        fields = _strict(text)
    except csv.Error as exc:
        return BadLine(line, f"broken quoting ({exc}): {_shown(text)}")
    if len(fields) != width:
        return BadLine(line, f"{len(fields)} fields, header has {width}: {_shown(text)}")
    return fields


def read_table(path: Path, required: tuple[str, ...], *, multiline: bool = False) -> tuple[list[Row], list[BadLine]]:
    """Every data row of the CSV at ``path`` (see the module docstring) and every line that is not one.

    Raises :class:`FileProblem` when the file cannot be read or lacks a required column."""
    lines = _lines(decode(read_bytes(path)))
    start = next((i for i, line in enumerate(lines) if line.strip()), None)
    if start is None:
        raise FileProblem(f"{path}: empty (no header line)")
    try:
        header = [h.strip() for h in _strict(lines[start])]
    except csv.Error as exc:
        raise FileProblem(f"{path}: unreadable header line: {exc}") from exc
    missing = [c for c in required if c not in header]
    if missing:
        raise FileProblem(f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(header)})")
    width = len(header)
    columns = [(i, name) for i, name in enumerate(header) if name not in header[:i]]  # the first of equal names
    rows: list[Row] = []
    bad: list[BadLine] = []

    def take(number: int, text: str) -> None:
        judged = _judge(text, width, number)
        if isinstance(judged, BadLine):
            bad.append(judged)
        else:
            rows.append(Row(number, {name: judged[i] for i, name in columns}))

    body = lines[start + 1 :]
    first = start + 2  # physical number of body[0]
    if not multiline:
        for offset, text in enumerate(body):
            if text.strip():
                take(first + offset, text)
        return rows, bad
    reader = csv.reader(line + "\n" for line in body)
    done = 0
    for _ in reader:
        span = body[done : reader.line_num]
        number, done = first + done, reader.line_num
        joined = "\n".join(span)
        if len(span) == 1 or not isinstance(_judge(joined, width, number), BadLine):
            if joined.strip():
                take(number, joined)
        else:  # a multi-line row that does not parse: each of its lines on its own
            for k, text in enumerate(span):
                if text.strip():
                    take(number + k, text)
    return rows, bad


def table_rows(dataset: str, path: Path, required: tuple[str, ...], what: str, *,
               multiline: bool = False) -> Iterator[Row | Reject]:
    """Every row of the table at ``path`` in line order, or rejects: the file missing (``what`` names it in the
    message, e.g. "RadFM split file") or unreadable or lacking a required column (one ``FileReject``), and one
    ``bad_row`` per line that is not a row (``source_id`` ``<name>:line<N>``)."""
    name = path.name
    if not path.exists():
        yield file_reject(dataset, name, "missing_file", f"{what} {path} not found")
        return
    try:
        rows, bad = read_table(path, required, multiline=multiline)
    except FileProblem as exc:
        yield file_reject(dataset, name, "bad_file", f"{what}: {exc}")
        return
    rejects = [line_reject(dataset, name, b) for b in bad]
    merged: list[tuple[int, Row | Reject]] = [(r.line, r) for r in rows] + [(b.line, j) for b, j in zip(bad, rejects)]
    for _, item in sorted(merged, key=lambda pair: pair[0]):
        yield item


def optional_table(dataset: str, path: Path, required: tuple[str, ...]) -> tuple[list[Row], list[Reject]]:
    """The rows of an optional table: none when it is absent; when it is present but unreadable or lacks a column,
    none and a ``bad_file`` reject saying it was skipped; bad lines are ``bad_row`` rejects as in a required one."""
    if not path.exists():
        return [], []
    rows: list[Row] = []
    rejects: list[Reject] = []
    for item in table_rows(dataset, path, required, "optional file"):
        if isinstance(item, FileReject):
            rejects.append(FileReject(**{**item.to_dict(), "message": f"{item.message} (skipped)"}))
        elif isinstance(item, Reject):
            rejects.append(item)
        else:
            rows.append(item)
    return rows, rejects


def read_json_document(path: Path) -> Any:
    """The JSON document at ``path`` or :class:`FileProblem` (unreadable, not JSON, nested beyond Python's stack)."""
    text = decode(read_bytes(path))
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise FileProblem(f"{path}: not valid JSON: {exc}") from exc


def json_items(dataset: str, path: Path, what: str) -> Iterator[Item | Reject]:
    """Every entry of the JSON list at ``path``, or one ``FileReject``: the file missing, unreadable, not JSON,
    or not a list (an object of entries is not silently read as nothing)."""
    name = path.name
    if not path.exists():
        yield file_reject(dataset, name, "missing_file", f"{what} {path} not found")
        return
    try:
        data = read_json_document(path)
    except FileProblem as exc:
        yield file_reject(dataset, name, "bad_file", f"{what}: {exc}")
        return
    if not isinstance(data, list):
        yield file_reject(dataset, name, "bad_file", f"{what} {path}: expected a JSON list of entries, got {_kind(data)}")
        return
    for i, value in enumerate(data):
        yield Item(i, value)


def optional_json(dataset: str, path: Path, expected: type | tuple[type, ...] = object) -> tuple[Any, Reject | None]:
    """The JSON document of an optional file: ``(None, None)`` when it is absent, ``(None, reject)`` when it is
    present but unreadable or not of the ``expected`` type (it is then skipped and reported as ``bad_file``)."""
    if not path.exists():
        return None, None
    try:
        data = read_json_document(path)
    except FileProblem as exc:
        return None, file_reject(dataset, path.name, "bad_file", f"optional file: {exc} (skipped)")
    if not isinstance(data, expected):
        names = " or ".join(_kind(t()) for t in (expected if isinstance(expected, tuple) else (expected,)))
        return None, file_reject(dataset, path.name, "bad_file",
                                 f"optional file {path}: expected a JSON {names}, got {_kind(data)} (skipped)")
    return data, None


def text_file(dataset: str, resolver: PathResolver, rel: str, source_id: str, what: str) -> str | Reject:
    """The text of the file ``rel`` under the raw root (a report), or a reject naming it: outside the raw root
    (``outside_root``), absent (``missing_file``), a directory, unreadable or too large (``bad_file``)."""
    try:
        rel = resolver.confine(rel)
        data = read_bytes(resolver.raw_root / rel, MAX_TEXT_BYTES)
    except UnresolvedPath as exc:
        return Reject(dataset, source_id, rel, exc.reason, f"{what}: {exc}", "plan")
    except FileProblem as exc:
        reason = "missing_file" if not (resolver.raw_root / rel).exists() else "bad_file"
        return Reject(dataset, source_id, rel, reason, f"{what}: {exc}", "plan")
    return decode(data)


def _kind(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", type(None): "null"}.get(type(value), type(value).__name__)


def file_reject(dataset: str, name: str, reason: str, message: str) -> FileReject:
    """A whole file that cannot be used (``source_id`` and ``file`` are its name)."""
    return FileReject(dataset, name, name, reason, message, "plan")


def line_reject(dataset: str, name: str, bad: BadLine) -> Reject:
    return Reject(dataset, f"{name}:line{bad.line}", name, "bad_row", f"{name} line {bad.line}: {bad.problem}", "plan")
