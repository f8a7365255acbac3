"""Reading shards back sample by sample (bounded, extraction-free): used by the validator,
``pipelines.inspect`` and tests (the trainer reads by index: ``train.read``). ``file_kind`` tells the tools what a
file they were given is, so that a README or a NIfTI gets one line instead of a parser's traceback."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shards_spec.codec import decode_sample
from shards_spec.tario import Member, iter_members, split_member_name


@dataclass
class RawSample:
    key: str
    members: dict[str, Member]  # field -> member (with data)

    def decode(self) -> dict[str, Any]:
        """Field -> decoded member; the image under ``vision.npy.zst`` whichever member held it."""
        return decode_sample({field: m.data or b"" for field, m in self.members.items()})


#: (offset, magic bytes, what the file is) for files people pass by mistake; checked in order.
_SIGNATURES = (
    (0, b"\x1f\x8b", "gzip-compressed data (a .nii.gz volume or a .tar.gz? shards are plain .tar)"),
    (0, b"\x28\xb5\x2f\xfd", "a zstd frame (shards are plain .tar)"),
    (0, b"PK\x03\x04", "a zip archive"),
    (0, b"\x89PNG", "a PNG image"),
    (0, b"\xff\xd8\xff", "a JPEG image"),
    (0, b"\x93NUMPY", "a .npy array"),
    (128, b"DICM", "a DICOM file"),
    (344, b"n+1\x00", "a NIfTI-1 volume"),
    (344, b"ni1\x00", "a NIfTI-1 header"),
    (4, b"n+2\x00", "a NIfTI-2 volume"),
)


def file_kind(path: str | Path) -> str:
    """``"tar"`` (a POSIX tar header), ``"json"`` (UTF-8 text starting with ``{`` or ``[``), or what the file is
    instead, in words (``"gzip-compressed data (...)"``, ``"text, not JSON"``, ``"an empty file"`` …)."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    if not head:
        return "an empty file"
    if len(head) == 512 and head[257:262] == b"ustar":
        return "tar"
    for offset, magic, what in _SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            return what
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if len(head) < 512 or exc.start < len(head) - 3:  # not just a character cut at the 512-byte boundary
            return "binary data"
        text = head[:exc.start].decode("utf-8")
    stripped = text.lstrip("\ufeff \t\r\n")
    return "json" if stripped[:1] in ("{", "[") else "text, not JSON"


def read_as_tar(path: str | Path, kind: str) -> bool:
    """Whether the tools read ``path`` (of :func:`file_kind` ``kind``) as a shard: a POSIX tar, or a non-empty file
    named ``*.tar`` (other tar dialects; ``tarfile`` then decides, and a file that is none is one problem line)."""
    return kind == "tar" or (Path(path).name.endswith(".tar") and kind != "an empty file")


class GroupingError(ValueError):
    """Members of one key are not adjacent, or a member name has no field."""


def iter_raw_samples(path: str | Path, *, read_data: bool = True, **limits) -> Iterator[RawSample]:
    """Group consecutive members by key. Raises :class:`GroupingError` when a key comes
    back after another key (webdataset would silently split such a sample)."""
    seen: set[str] = set()
    current: RawSample | None = None
    for member in iter_members(path, read_data=read_data, **limits):
        key, field = split_member_name(member.name)
        if not field:
            raise GroupingError(f"member {member.name!r} has no field extension")
        if current is not None and key == current.key:
            if field in current.members:
                raise GroupingError(f"duplicate member {member.name!r}")
            current.members[field] = member
            continue
        if current is not None:
            yield current
        if key in seen:
            raise GroupingError(f"key {key!r} appears again after other keys (members not contiguous)")
        seen.add(key)
        current = RawSample(key, {field: member})
    if current is not None:
        yield current


def run_cli(main) -> None:
    """Exit with ``main()``'s status; a reader piped into ``head`` (stdout closed early) stops quietly instead of
    ending in a ``BrokenPipeError`` traceback."""
    import os
    import sys

    try:
        status = main()
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the interpreter's final flush must not fail
        status = 1
    raise SystemExit(status)


def iter_indexed_samples(tar: str, **limits) -> Iterator[RawSample]:
    """The samples of a shard on object storage, read through its index sidecar: one ranged read per sample, never
    the whole object. Member sizes are bounded as in :func:`shards_spec.tario.iter_members`; a span that does not
    hold its members raises ``ValueError``."""
    from shards_spec import storage
    from shards_spec.jsonio import loads
    from shards_spec.layout import index_path
    from shards_spec.tario import MAX_MEMBER_BYTES, UnsafeTar

    max_member = limits.get("max_member_bytes", MAX_MEMBER_BYTES)
    index = loads(storage.read_bytes(index_path(tar)))  # ValueError for any text that does not parse
    entries = index.get("samples") if isinstance(index, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f"{index_path(tar)}: not an index sidecar (no 'samples' list)")
    for i, entry in enumerate(entries):
        try:  # a mistyped entry stops this shard in one line, like a truncated tar
            members = {str(field): (o, n) for field, (o, n) in entry["members"].items()}
            if not isinstance(entry["key"], str) or not all(type(v) is int for pair in members.values() for v in pair):
                raise TypeError("mistyped key or member offsets")
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValueError(f"{index_path(tar)}: samples[{i}] is not a valid index entry ({exc})") from None
        if any(n > max_member or n < 0 or o < 0 for o, n in members.values()):
            raise UnsafeTar(f"{entry['key']}: member sizes out of bounds in the index")
        lo = min(o for o, _ in members.values())
        hi = max(o + n for o, n in members.values())
        span = storage.read_range(tar, lo, hi - lo)
        if len(span) < hi - lo:
            raise ValueError(f"{entry['key']}: the shard ends at byte {lo + len(span)}, its members at {hi}")
        yield RawSample(entry["key"], {field: Member(f"{entry['key']}.{field}", o - 512, o, n, span[o - lo:o - lo + n])
                                       for field, (o, n) in members.items()})
