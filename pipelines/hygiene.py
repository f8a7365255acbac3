"""Text hygiene: how bytes become text, and what a record's text may contain. Applied once, by the build, to every
record of every source (``pipelines.build.read_dataset``), so no source writes it again.

**Decoding** (:func:`decode`, used by every file reader in :mod:`pipelines.sources.tables`): input files are read
as UTF-8 (a leading byte-order mark is dropped). A byte that is not part of a valid UTF-8 sequence is kept as a
lone surrogate (Python's ``surrogateescape``) while the source parses the file, and the record's text is then
repaired by :func:`clean_text`: each such byte is read as Windows-1252 (``0x93`` -> ``“``, ``0xE9`` -> ``é``; the
five bytes Windows-1252 leaves undefined as Latin-1) — the usual encoding of a report that is not UTF-8 — and
counted. So a file that is mostly UTF-8 keeps its UTF-8 text, and nothing becomes U+FFFD silently.

**Cleaning** (:func:`clean_text`), in this order: line endings ``\\r\\n`` and ``\\r`` become ``\\n``; undecodable bytes
are decoded as above (lone surrogates from elsewhere, e.g. a JSON ``\\udc80`` escape, become U+FFFD), counted as
``non_utf8``; Unicode NFC normalisation; C0 and C1 control characters and DEL other than newline and tab are removed,
counted as ``control_chars``. :func:`clean_record` applies this to every string of a record's fields, its modality
and its source id, and records the counts in the record (``TextFixes``, written to each sample's ``meta.json`` as
``text_fixes``). A record whose text held more than ``max(TextConfig.max_control_chars,
TextConfig.max_control_fraction x its characters)`` control characters is not text (a binary file, the wrong
encoding) and is rejected ``bad_text``.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from typing import Any

from pipelines.config import TextConfig
from pipelines.records import Record, Reject, TextFixes

#: Characters that are removed: C0 controls except tab and newline, DEL, C1 controls.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
#: Lone surrogates: ``surrogateescape`` bytes (U+DC80-U+DCFF) and any other unpaired surrogate.
_SURROGATE = re.compile("[\ud800-\udfff]")
#: Anything outside printable ASCII, tab and newline: text without these needs no cleaning.
_NEEDS_CLEANING = re.compile("[^\t\n\x20-\x7e]")


def decode(data: bytes) -> str:
    """File bytes -> text: UTF-8 without its byte-order mark; invalid bytes kept as lone surrogates for
    :func:`clean_text` to decode and count (see the module docstring)."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    return data.decode("utf-8", "surrogateescape")


def _fallback(match: re.Match[str]) -> str:
    code = ord(match.group())
    if 0xDC80 <= code <= 0xDCFF:
        byte = bytes([code - 0xDC00])
        try:
            return byte.decode("cp1252")
        except UnicodeDecodeError:
            return byte.decode("latin-1")
    return "\ufffd"


def clean_text(text: str) -> tuple[str, TextFixes]:
    """``text`` with line endings, undecodable bytes, normalisation and control characters fixed, and what was
    fixed (see the module docstring)."""
    if not _NEEDS_CLEANING.search(text):
        return text, TextFixes()
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text, non_utf8 = _SURROGATE.subn(_fallback, text)
    text = unicodedata.normalize("NFC", text)
    text, control = _CONTROL.subn("", text)
    return text, TextFixes(control_chars=control, non_utf8=non_utf8)


class _Cleaner:
    """Cleans every string inside a value (strings, tuples and lists of them, frozen dataclasses of them) and sums
    what it fixed."""

    def __init__(self) -> None:
        self.fixes = TextFixes()
        self.chars = 0

    def __call__(self, value: Any) -> Any:
        if isinstance(value, str):
            text, fixes = clean_text(value)
            self.fixes += fixes
            self.chars += len(value)
            return text
        if isinstance(value, tuple):
            return tuple(self(v) for v in value)
        if isinstance(value, list):
            return [self(v) for v in value]
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            changes = {f.name: self(getattr(value, f.name)) for f in dataclasses.fields(value)}
            return dataclasses.replace(value, **changes)
        return value


def clean_value(value: Any) -> Any:
    """Every string inside ``value`` cleaned (the dataset-wide vocabulary, whose counts belong to no record)."""
    return _Cleaner()(value)


def too_much_control(fixes: TextFixes, chars: int, cfg: TextConfig) -> bool:
    return fixes.control_chars > max(cfg.max_control_chars, cfg.max_control_fraction * chars)


def clean_record(record: Record, cfg: TextConfig) -> Record | Reject:
    """The record with its text cleaned and the counts recorded, or a ``bad_text`` reject."""
    cleaner = _Cleaner()
    fields = cleaner(record.fields)
    modality = cleaner(record.modality)
    source_id, _ = clean_text(record.source_id)
    if too_much_control(cleaner.fixes, cleaner.chars, cfg):
        file = record.images[0].path if record.images else ""
        return Reject(record.dataset, source_id, file, "bad_text",
                      f"{cleaner.fixes.control_chars} control characters in {cleaner.chars} characters of text "
                      "(binary data or a wrong encoding?)", "plan")
    if (fields, modality, source_id) == (record.fields, record.modality, record.source_id):
        return record
    return dataclasses.replace(record, fields=fields, modality=modality, source_id=source_id, text_fixes=cleaner.fixes)
