"""Deterministic tar writing and bounded, extraction-free tar reading.

Writing: members get a fixed mtime, uid/gid 0, empty owner names and mode 0444, and are
written in the order given (the writer sorts a sample's fields), so the same samples give
byte-identical shards. Reading never touches the file system beyond the tar itself,
never follows links, skips nothing silently, and bounds every size it reads.
"""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

#: Largest member the reader will load into memory.
MAX_MEMBER_BYTES = 1 << 31
#: Largest number of members the reader will walk through in one tar.
MAX_MEMBERS = 10_000_000
_FORMAT = tarfile.USTAR_FORMAT


@dataclass(frozen=True)
class MemberRecord:
    name: str
    header_offset: int
    data_offset: int
    size: int


class TarSink:
    """Writes members to a file object as a ustar archive, deterministically, recording
    where each member's header and data start.

    Headers come from :class:`tarfile.TarInfo` (so the bytes are standard ustar); the
    archive ends like :mod:`tarfile`'s: two zero blocks, padded to a 10240-byte record.
    """

    def __init__(self, fileobj: BinaryIO, mtime: int):
        self._fh = fileobj
        self._mtime = mtime
        self.offset = 0

    def add(self, name: str, data: bytes) -> MemberRecord:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = self._mtime
        info.mode = 0o444
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.type = tarfile.REGTYPE
        header = info.tobuf(_FORMAT, "utf-8", "surrogateescape")
        record = MemberRecord(name, self.offset, self.offset + len(header), len(data))
        pad = -len(data) % tarfile.BLOCKSIZE
        self._fh.write(header)
        self._fh.write(data)
        if pad:
            self._fh.write(b"\0" * pad)
        self.offset += len(header) + len(data) + pad
        return record

    def close(self) -> None:
        end = self.offset + 2 * tarfile.BLOCKSIZE
        end += -end % tarfile.RECORDSIZE
        self._fh.write(b"\0" * (end - self.offset))
        self.offset = end


class UnsafeTar(ValueError):
    """The tar holds something a shard never contains (links, devices, huge members …)."""


@dataclass(frozen=True)
class Member:
    name: str
    header_offset: int
    data_offset: int
    size: int
    data: bytes | None  # None when the caller asked for headers only


def iter_members(
    path: str | os.PathLike,
    *,
    read_data: bool = True,
    max_member_bytes: int = MAX_MEMBER_BYTES,
    max_members: int = MAX_MEMBERS,
) -> Iterator[Member]:
    """Yield the regular-file members of a tar in order, without extracting anything.

    Raises :class:`UnsafeTar` on a non-regular member, an absolute or ``..`` name, an
    over-size member, or too many members; ``tarfile.TarError`` on a corrupt archive.
    """
    with tarfile.open(path, mode="r:", encoding="utf-8") as tar:
        for count, info in enumerate(tar, start=1):
            if count > max_members:
                raise UnsafeTar(f"more than {max_members} members")
            if not info.isreg():
                raise UnsafeTar(f"member {info.name!r} is not a regular file (type {info.type!r})")
            if info.name.startswith("/") or ".." in Path(info.name).parts:
                raise UnsafeTar(f"member {info.name!r} has an unsafe path")
            if info.size > max_member_bytes:
                raise UnsafeTar(f"member {info.name!r} is {info.size} bytes, limit {max_member_bytes}")
            data = None
            if read_data:
                handle = tar.extractfile(info)
                assert handle is not None  # regular file
                data = handle.read(info.size)
                if len(data) != info.size:
                    raise tarfile.ReadError(f"member {info.name!r} is truncated")
            yield Member(info.name, info.offset, info.offset_data, info.size, data)


def split_member_name(name: str) -> tuple[str, str]:
    """``key.field.ext`` -> (``key``, ``field.ext``): the key ends at the first dot of the
    last path component, as webdataset splits it."""
    head, _, last = name.rpartition("/")
    key, dot, field = last.partition(".")
    if not dot:
        return name, ""
    return (f"{head}/{key}" if head else key), field


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary name and a rename (atomic on POSIX)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
