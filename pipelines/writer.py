"""Writes one shard: the tar (deterministic, atomic), its index sidecars (JSON, and binary since spec 1.4) and its
stats marker.

Commit order: the old marker is removed, then tar -> index (JSON, then binary) -> stats, each written under a temporary name, synced and
renamed, so the stats file (the completion marker) exists only when everything before it is complete, and a file
under its final name is never partial. A build killed anywhere in between rebuilds that shard when rerun.

On object storage (``--out s3://…``, :class:`RemoteShardWriter`) the tar is spooled to a local temporary file, then
the same order holds with one PUT per object (an object appears whole or not at all): the old marker is deleted,
then the tar, the indexes and the marker are uploaded.

Fault injection for tests (an environment variable, never a command-line flag): ``RADFM_TEST_KILL_AT=<point>[:N]``
kills the process with SIGKILL at that point of its N-th shard commit (default the first). Points: ``tar`` (the tar
renamed, no index or marker yet), ``index`` (both indexes written, no marker yet).
"""

from __future__ import annotations

import hashlib
import os
import signal
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shards_spec import storage
from shards_spec.index_bin import encode_index
from shards_spec.jsonio import json_bytes, write_json
from shards_spec.layout import FIELDS_BY_IMAGE, SPEC_VERSION, index_bin_path, index_path, stats_path
from shards_spec.schema import IndexEntry, ShardIndex
from shards_spec.tario import TarSink, atomic_write_bytes


class _HashingFile:
    """A write-only file wrapper that hashes what passes through it."""

    def __init__(self, fh):
        self._fh = fh
        self.sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self._fh.write(data)

    def tell(self) -> int:
        return self._fh.tell()

    def flush(self) -> None:
        self._fh.flush()


@dataclass(frozen=True)
class SampleSummary:
    """What the index records about a sample besides where its members are (SPEC §4)."""

    task: str
    n_tokens: int
    n_images: int
    depth: int


#: Test hook, read at every commit: ``<point>[:N]`` (see the module docstring).
KILL_ENV = "RADFM_TEST_KILL_AT"
KILL_POINTS = ("tar", "index")
_commits: Counter[str] = Counter()


def _fault_point(point: str) -> None:
    target, _, nth = os.environ.get(KILL_ENV, "").partition(":")
    if target != point:
        return
    _commits[point] += 1
    if _commits[point] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def _sync_dir(path: Path) -> None:
    """Make the renames in a folder durable (where the platform allows opening a folder)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def clean_temporaries(tar_path: Path) -> None:
    """Remove leftovers of an interrupted attempt at this shard (``.<name>.tmp-<pid>``)."""
    stem = tar_path.name[: -len(".tar")]
    for p in tar_path.parent.glob(f".{stem}*.tmp-*"):
        p.unlink(missing_ok=True)


def _binary_index(entries: list[IndexEntry]) -> bytes | None:
    """The binary index sidecar (spec 1.4) of a shard whose samples all have 1.4 member sets; ``None`` for a shard
    written with other member sets (tests that build old-format shards), which then has only the JSON index."""
    if any(set(e.members) not in _SETS_14 for e in entries):
        return None
    return encode_index(entries)


_SETS_14 = tuple(set(fields) for fields in FIELDS_BY_IMAGE.values())


class ShardWriter:
    def __init__(self, tar_path: Path, mtime: int):
        self.tar_path = Path(tar_path)
        self.tar_path.parent.mkdir(parents=True, exist_ok=True)
        clean_temporaries(self.tar_path)
        self._tmp = self.tar_path.with_name(f".{self.tar_path.name}.tmp-{os.getpid()}")
        self._fh = open(self._tmp, "wb")
        self._hfile = _HashingFile(self._fh)
        self._sink = TarSink(self._hfile, mtime)
        self.entries: list[IndexEntry] = []

    def write(self, key: str, members: dict[str, bytes], summary: SampleSummary) -> IndexEntry:
        """Append one sample; members are written in sorted field order."""
        records = [self._sink.add(f"{key}.{field}", members[field]) for field in sorted(members)]
        first, last = records[0], records[-1]
        entry = IndexEntry(
            key=key,
            offset=first.header_offset,
            size=last.data_offset + last.size - first.header_offset,
            members={r.name[len(key) + 1 :]: (r.data_offset, r.size) for r in records},
            task=summary.task,
            n_tokens=summary.n_tokens,
            n_images=summary.n_images,
            depth=summary.depth,
        )
        self.entries.append(entry)
        return entry

    def commit(self, stats: dict[str, Any]) -> dict[str, Any]:
        stats_path(self.tar_path).unlink(missing_ok=True)  # from here on the shard counts as unfinished
        self._sink.close()
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        os.replace(self._tmp, self.tar_path)
        _fault_point("tar")
        sha = self._hfile.sha256.hexdigest()
        write_json(index_path(self.tar_path), ShardIndex(SPEC_VERSION, self.tar_path.name, sha, tuple(self.entries)).to_dict())
        binary = _binary_index(self.entries)
        if binary is None:
            Path(index_bin_path(self.tar_path)).unlink(missing_ok=True)
        else:
            atomic_write_bytes(Path(index_bin_path(self.tar_path)), binary)
        _fault_point("index")
        stats = {
            **stats,
            "spec_version": SPEC_VERSION,
            "shard": self.tar_path.name,
            "sha256": sha,
            "bytes": self._hfile.size,
            "samples": len(self.entries),
        }
        write_json(stats_path(self.tar_path), stats)
        _sync_dir(self.tar_path.parent)
        return stats

    def abort(self) -> None:
        try:
            self._fh.close()
        finally:
            self._tmp.unlink(missing_ok=True)


class RemoteShardWriter(ShardWriter):
    """A shard on object storage: spooled locally (``RADFM_SPOOL_DIR``, default the system's temporary folder),
    published object by object in the commit order of the module docstring."""

    def __init__(self, tar_url: str, mtime: int):
        self.tar_url = tar_url
        self.tar_path = Path(storage.name(tar_url))  # the name, for the index's "shard" field
        spool = os.environ.get("RADFM_SPOOL_DIR") or None
        fd, tmp = tempfile.mkstemp(prefix=f".{self.tar_path.name}.", suffix=".spool", dir=spool)
        self._tmp = Path(tmp)
        self._fh = os.fdopen(fd, "wb")
        self._hfile = _HashingFile(self._fh)
        self._sink = TarSink(self._hfile, mtime)
        self.entries = []

    def commit(self, stats: dict[str, Any]) -> dict[str, Any]:
        storage.delete(stats_path(self.tar_url))  # from here on the shard counts as unfinished
        self._sink.close()
        self._fh.close()
        try:
            storage.upload(self._tmp, self.tar_url)
        finally:
            self._tmp.unlink(missing_ok=True)
        _fault_point("tar")
        sha = self._hfile.sha256.hexdigest()
        index = ShardIndex(SPEC_VERSION, self.tar_path.name, sha, tuple(self.entries)).to_dict()
        storage.write_bytes(index_path(self.tar_url), json_bytes(index))
        binary = _binary_index(self.entries)
        if binary is None:
            storage.delete(index_bin_path(self.tar_url))
        else:
            storage.write_bytes(index_bin_path(self.tar_url), binary)
        _fault_point("index")
        stats = {**stats, "spec_version": SPEC_VERSION, "shard": self.tar_path.name, "sha256": sha,
                 "bytes": self._hfile.size, "samples": len(self.entries)}
        storage.write_bytes(stats_path(self.tar_url), json_bytes(stats))
        return stats


def open_writer(tar_path: str | Path, mtime: int) -> ShardWriter:
    """The writer for a shard at a local path or an object-store URL."""
    if storage.is_remote(tar_path):
        return RemoteShardWriter(str(tar_path), mtime)
    return ShardWriter(Path(tar_path), mtime)
