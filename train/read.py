"""Reading one sample of a shard by its index entry: one positioned read, in-place decoding, checks.

This is the stream's per-sample hot path (``train.stream``), measured against MosaicML Streaming and LitData in
``bench/peers.py``. What it does per sample, and why it is cheap:

* The index (SPEC §4) comes from the shard's binary sidecar ``*.index.npy`` (spec 1.4): one read, every row's
  offsets checked at once and turned into :class:`Span` s (member offsets relative to the sample's first member)
  before the first sample is read. Shards without one (1.0-1.3), or with one that is unusable or older than the JSON
  sidecar, use the JSON sidecar, whose entries are turned into spans on their first read; either way later epochs
  look nothing up or convert nothing, and a malformed entry becomes a span that carries its reason and makes the
  sample *bad* when read.
* Shards are memory-mapped (a small LRU, :class:`FileCache`): a sample's member span is decoded where it lies,
  with no read system call and no copy of the compressed bytes.
* The token arrays are one ``tokens.npy`` member (spec 1.4: a structured ``[L]`` array; its header matched by a
  strict pattern, ``shards_spec.codec.tokens_array``) copied out of the map once, the three arrays being views of
  that copy; 1.0-1.3 shards hold three members, each parsed and copied. ``meta.json`` is parsed once; the image
  member is decompressed straight from the map by a per-thread zstd context into its own array; an uncompressed
  ``vision.npy`` member (spec 1.3, ``--zstd-level 0``) is a read-only view of the map itself (no copy: the map
  stays open while such an array lives, see :class:`FileCache`). A 3D image stored slices-contiguous (spec 1.4,
  ``slices.npy.zst`` / ``slices.npy``: ``[S, C, D, H, W]``) is returned as its ``[S, C, H, W, D]`` view.
* The checks that make a sample bad: an index entry without all its members (1.4: ``meta.json``, ``tokens.npy``
  and exactly one image member, ``vision.npy.zst``, ``vision.npy``, ``slices.npy.zst`` or ``slices.npy``; 1.0-1.3:
  the three token members instead of ``tokens.npy``, the image in ``vision.npy.zst`` or ``vision.npy``)
  or with a mistyped key, token count or member offsets, spans past the end of the tar, undecodable members, a
  ``meta.json`` whose ``key`` is not the index's or whose ``special_ids.base_vocab`` is not a positive int,
  inconsistent lengths, image-token ids beyond the sample's images, negative labels other than -100, non-finite
  weights.

What is checked is what the trainer uses, so that no value of a hostile shard can crash it and none is used
unchecked. The full schema check of ``meta.json`` (``shards_spec.schema.SampleMeta``, every key and type) is the
validator's and ``pipelines.inspect``'s: it costs about as much as the rest of reading a stored 2D sample, so the
hot path leaves it out. ``Sample.meta`` is the member as stored; code that reads other keys of it parses it with
``SampleMeta.from_dict`` (and treats a ``SchemaError`` as a bad sample).
"""

from __future__ import annotations

import functools
import math
import mmap
import os
import sys
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from shards_spec import storage
from shards_spec.codec import DTYPES, DecodeError, decode_image, decode_meta, load_npy, tokens_array
from shards_spec.index_bin import MAX_BYTES as MAX_INDEX_BYTES
from shards_spec.index_bin import decode_index, entries_of
from shards_spec.jsonio import loads
from shards_spec.layout import (
    FIELD_INPUT_IDS,
    FIELD_LABELS,
    FIELD_LOSS_WEIGHT,
    FIELD_META,
    FIELD_VISION,
    FIELDS,
    FIELDS_BY_IMAGE,
    IGNORE_INDEX,
    IMAGE_FIELDS,
    IMAGE_TOKENS_PER_IMAGE,
    INDEX_BIN_SUFFIX,
    INDEX_SUFFIX,
    image_field,
    index_bin_path,
    sample_fields,
)

from .collate import Sample
from .sources import ShardRef

DEFAULT_BASE_VOCAB = 32000
#: Largest member span one sample may have (4 GiB): larger means a corrupt index, not a sample.
MAX_SPAN = 1 << 32


class BadSample(Exception):
    pass


def _warn(msg: str) -> None:
    print(f"[train.stream] warning: {msg}", file=sys.stderr, flush=True)


# ============================================================================ index sidecars
class Span(NamedTuple):
    """Where one sample's members lie: ``lo``/``size`` of the whole span and ``(start, stop)`` of each member
    relative to ``lo``, in the order of ``fields`` (one of ``SAMPLE_FIELDS``: the 1.4 ``meta.json``,
    ``tokens.npy``, image, or the 1.0-1.3 five members; the image member last); or ``error`` for an entry that
    cannot be read."""

    lo: int = 0
    size: int = 0
    members: tuple[tuple[int, int], ...] = ()
    error: str = ""
    fields: tuple[str, ...] = FIELDS


def _kind(value) -> str:
    return type(value).__name__ if value is not None else "null"


def entry_span(entry: dict) -> Span:
    """The read span of an index entry, or a span carrying why the entry cannot be used (every value the trainer
    takes from an entry is checked: ``key``, ``n_tokens``, ``members``). The common case (a str key, an int token
    count, the three ``[int, int]`` pairs of a 1.4 sample) takes a straight path."""
    members = entry.get("members")
    if type(members) is dict and len(members) == 3 and type(entry.get("key")) is str \
            and type(entry.get("n_tokens", 0)) is int:
        try:
            fields = FIELDS_BY_IMAGE[image_field(members)]
            (a0, a1), (b0, b1), (v0, v1) = [members[f] for f in fields]
        except (KeyError, TypeError, ValueError):
            pass
        else:
            if type(a0) is type(a1) is type(b0) is type(b1) is type(v0) is type(v1) is int:
                lo = min(a0, b0, v0)
                hi = max(a0 + a1, b0 + b1, v0 + v1)
                if lo >= 0 and hi - lo <= MAX_SPAN and min(a1, b1, v1) >= 0:
                    return Span(lo, hi - lo, ((a0 - lo, a0 - lo + a1), (b0 - lo, b0 - lo + b1), (v0 - lo, v0 - lo + v1)),
                                "", fields)
    return _entry_span_checked(entry)


def _entry_span_checked(entry: dict) -> Span:
    """:func:`entry_span` for anything else (1.0-1.3 entries, and what is wrong)."""
    if type(entry.get("key")) is not str:
        return Span(error=f"index entry key: expected str, got {_kind(entry.get('key'))}")
    n_tokens = entry.get("n_tokens", 0)
    if type(n_tokens) is not int:
        return Span(error=f"index entry n_tokens: expected int, got {_kind(n_tokens)}")
    members = entry.get("members")
    if not isinstance(members, dict):
        return Span(error="index entry has no members")
    images = [f for f in IMAGE_FIELDS if f in members]
    if len(images) > 1:
        return Span(error=f"index entry has more than one image member: both {' and '.join(images)}")
    fields = sample_fields(members)
    try:
        pairs = [members[f] for f in fields]
    except KeyError:
        return Span(error=f"index entry lacks members {[f for f in fields if f not in members]}")
    extra = sorted(set(members) - set(fields))
    if extra:
        return Span(error=f"index entry has unexpected members {extra}")
    try:
        offsets = [p[0] for p in pairs]
        sizes = [p[1] for p in pairs]
    except (TypeError, IndexError, KeyError):
        return Span(error="index entry has malformed member offsets")
    if not all(type(v) is int for v in offsets + sizes):
        return Span(error="index entry has malformed member offsets")
    lo = min(offsets)
    hi = max([o + n for o, n in zip(offsets, sizes)])
    if lo < 0 or min(sizes) < 0 or hi - lo > MAX_SPAN:
        return Span(error=f"implausible member span [{lo}, {hi})")
    return Span(lo, hi - lo, tuple([(o - lo, o - lo + n) for o, n in zip(offsets, sizes)]), "", fields)


def _scan_index(path: str) -> list[dict]:
    """Index entries for a tar without (readable) sidecar, by walking its headers."""
    from shards_spec.reader import iter_raw_samples

    entries = []
    try:
        for raw in iter_raw_samples(path, read_data=False):
            members = {f: [m.data_offset, m.size] for f, m in raw.members.items()}
            first = min(m.header_offset for m in raw.members.values())
            end = max(m.data_offset + m.size for m in raw.members.values())
            entries.append({"key": raw.key, "offset": first, "size": end - first, "members": members,
                            "n_tokens": 0, "n_images": 0, "depth": 0})
    except Exception as exc:
        _warn(f"{path}: walking the tar stopped ({exc}); {len(entries)} samples indexed")
    return entries


class IndexCache:
    """Index entries (and their read spans) per shard path, loaded lazily in the worker that reads the shard."""

    def __init__(self) -> None:
        self._cache: dict[str, list[dict]] = {}
        self._owned: set[int] = set()  # ids of the cached entries (alive as long as the cache)
        self._spans: dict[int, Span] = {}  # id(entry) -> span, computed on the entry's first read

    def get(self, shard: ShardRef) -> list[dict]:
        if shard.path not in self._cache:
            self._load(shard)
        return self._cache[shard.path]

    def _load(self, shard: ShardRef) -> None:
        remote = storage.is_remote(shard.path)
        entries = None if remote else self._load_binary(shard)
        if entries is None:
            entries = self._load_json(shard, remote)
        if shard.samples >= 0 and len(entries) != shard.samples:
            _warn(f"{shard.name}: index lists {len(entries)} samples, manifest {shard.samples}; using the index")
        self._cache[shard.path] = entries
        self._owned.update(map(id, entries))

    def _load_binary(self, shard: ShardRef) -> list[dict] | None:
        """Entries and their spans from the binary sidecar (spec 1.4), every row checked before the first read;
        ``None`` when there is none (older shards) or it cannot be used (then the JSON sidecar is read, after a
        warning)."""
        path = shard.path[:-4] + INDEX_BIN_SUFFIX if shard.path.endswith(".tar") else str(index_bin_path(shard.path))
        try:
            with open(path, "rb") as fh:
                # a JSON sidecar written (edited) after the binary one wins: the binary one is stale
                if os.stat(_json_index(shard)).st_mtime_ns > os.fstat(fh.fileno()).st_mtime_ns:
                    return None
                entries = entries_of(decode_index(fh.read(MAX_INDEX_BYTES + 1)))
        except FileNotFoundError:  # no binary sidecar (specs 1.0-1.3), or no JSON one (then the JSON path warns)
            return None
        except (OSError, ValueError) as exc:
            _warn(f"{path}: unusable binary index ({exc}); reading the JSON sidecar")
            return None
        spans = self._spans
        for entry in entries:  # Python ints: no overflow; the same checks as entry_span
            members = entry["members"]
            (a0, a1), (b0, b1), (v0, v1) = members.values()
            lo, hi = min(a0, b0, v0), max(a0 + a1, b0 + b1, v0 + v1)
            if lo >= 0 and min(a1, b1, v1) >= 0 and hi - lo <= MAX_SPAN:
                spans[id(entry)] = Span(lo, hi - lo, ((a0 - lo, a0 - lo + a1), (b0 - lo, b0 - lo + b1),
                                                      (v0 - lo, v0 - lo + v1)), "",
                                        FIELDS_BY_IMAGE[[*members][2]])
            else:
                spans[id(entry)] = Span(error=f"implausible member span [{lo}, {hi}) in the binary index")
        return entries

    def _load_json(self, shard: ShardRef, remote: bool) -> list[dict]:
        try:
            if remote:
                data = loads(storage.read_bytes(shard.index))
                storage.note_version(shard.path, data.get("sha256"))
            else:
                with open(shard.index, "rb") as fh:
                    data = loads(fh.read())
            entries = data["samples"]
            if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                raise ValueError("'samples' is not a list of objects")
        except (OSError, ValueError, KeyError, TypeError) as exc:
            if remote:  # walking would download the whole shard
                _warn(f"{shard.index}: unreadable index sidecar ({exc}); the shard is skipped")
                entries = []
            else:
                _warn(f"{shard.index}: unreadable index sidecar ({exc}); indexing by walking the tar")
                entries = _scan_index(shard.path)
        return entries

    def span(self, entry: dict) -> Span:
        span = self._spans.get(id(entry))
        if span is None:
            span = entry_span(entry)
            if id(entry) in self._owned:
                self._spans[id(entry)] = span
        return span


# ============================================================================ reading one sample
class FileCache:
    """Read-only memory maps of the last ``size`` shards read (LRU).

    A sample's members are decoded straight from the map: no read system call and no copy of the compressed
    bytes, and once a page is mapped it stays mapped while the shard is in the cache (fresh memory per sample
    would cost a page fault per 4 KiB, more than the copy itself on many machines). Shards are written
    atomically and never changed in place; a shard truncated *while* mapped would fault (SIGBUS) instead of
    reading short, so do not rewrite shards under a running job."""

    def __init__(self, size: int = 8):
        self.size = size
        self._files: OrderedDict[str, mmap.mmap | bytes] = OrderedDict()

    def get(self, path: str) -> mmap.mmap | bytes:
        mm = self._files.pop(path, None)
        if mm is None:
            with open(path, "rb") as fh:
                try:
                    mm = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
                except ValueError:  # an empty file cannot be mapped
                    mm = b""
            if len(self._files) >= self.size:
                _, old = self._files.popitem(last=False)
                self._close(old)
        self._files[path] = mm
        return mm

    @staticmethod
    def _close(mm) -> None:
        if isinstance(mm, mmap.mmap):
            try:
                mm.close()
            except BufferError:  # a view of it is still alive somewhere; it closes when that goes
                pass

    def close(self) -> None:
        for mm in self._files.values():
            self._close(mm)
        self._files.clear()


def _read_span(files: FileCache, path: str, lo: int, size: int) -> memoryview:
    """A view of the ``size`` bytes at ``lo`` in ``path`` (raises :class:`BadSample` past the end). A URL is read
    with one ranged request (``shards_spec.storage.read_span``: retries, optional local cache)."""
    if "://" in path:
        try:
            data = storage.read_span(path, lo, size)
        except OSError as exc:
            raise BadSample(f"read error: {exc}") from None
        if len(data) < size:
            raise BadSample(f"truncated shard: members end at byte {lo + size}, object ends at {lo + len(data)}")
        return memoryview(data)
    try:
        mm = files.get(path)
    except OSError as exc:
        raise BadSample(f"read error: {exc}") from None
    if lo + size > len(mm):
        raise BadSample(f"truncated shard: members end at byte {lo + size}, file ends at {len(mm)}")
    return memoryview(mm)[lo:lo + size]


def _tokens(field: str, data: memoryview) -> np.ndarray:
    arr = load_npy(data, field=field)
    if arr.dtype != DTYPES[field] or arr.ndim != 1:
        raise DecodeError(f"{field}: expected {DTYPES[field]} [L], got {arr.dtype} {arr.shape}")
    return arr.copy()  # out of the shared read buffer


def read_sample(files: FileCache, shard: ShardRef, entry: dict, epoch: int = 0, index: IndexCache | None = None
                ) -> Sample:
    """Read and decode one sample by its index entry; raises :class:`BadSample` with the reason."""
    key = entry.get("key", "?")
    span = index.span(entry) if index is not None else entry_span(entry)
    if span.error:
        raise BadSample(span.error)
    mv = _read_span(files, shard.path, span.lo, span.size)
    fields = span.fields
    try:
        if len(fields) == 3:  # spec 1.4: meta.json, tokens.npy, image
            (m0, m1), (t0, t1), (v0, v1) = span.members
            # the bytes copied out of the shared read buffer, then parsed in place (copying the bytes is cheaper than
            # copying a packed structured array); the three fields are writable views of that copy
            rec = tokens_array(bytearray(mv[t0:t1]))
            ids, labels, weights = rec["input_ids"], rec["labels"], rec["loss_weight"]
        else:  # specs 1.0-1.3: one member per token array
            (i0, i1), (l0, l1), (w0, w1), (m0, m1), (v0, v1) = span.members
            ids = _tokens(FIELD_INPUT_IDS, mv[i0:i1])
            labels = _tokens(FIELD_LABELS, mv[l0:l1])
            weights = _tokens(FIELD_LOSS_WEIGHT, mv[w0:w1])
        meta = decode_meta(mv[m0:m1])
        vision = decode_image(fields[-1], mv[v0:v1])  # [S, C, H, W, D] (a view of [S, C, D, H, W] for slices)
    except DecodeError as exc:
        raise BadSample(f"decode error: {exc}") from None
    if meta.get("key") != key:
        raise BadSample(f"{FIELD_META} key {meta.get('key')!r} does not match the index")
    special = meta.get("special_ids")
    base = special.get("base_vocab") if type(special) is dict else None
    if type(base) is not int or base <= 0:
        what = f"special_ids.base_vocab {base!r}" if type(special) is dict else f"special_ids {_kind(special)}"
        raise BadSample(f"{FIELD_META}: {what}, expected a positive int base vocabulary")
    n = ids.shape[0]
    if n == 0 or labels.shape[0] != n or weights.shape[0] != n:
        raise BadSample(f"token arrays disagree: input_ids {n}, labels {labels.shape[0]}, loss_weight {weights.shape[0]}")
    s, c = vision.shape[0], vision.shape[1]
    if s < 1 or c not in (1, 3) or min(vision.shape) < 1:
        raise BadSample(f"{FIELD_VISION} shape {tuple(vision.shape)} is not [S>=1, C in (1,3), H, W, D]")
    top = int(ids.view(np.uint32).max())  # a negative id wraps above 2**31: one reduction checks both ends
    if top >= 1 << 31:
        raise BadSample("negative token id")
    if top - base - 2 >= IMAGE_TOKENS_PER_IMAGE * s:
        raise BadSample(f"image token <image{top - base - 2}> needs more than the sample's {s} images")
    low = int(labels.min())
    # labels are -100 or >= 0: below -100 is caught by the minimum, -99..-1 map to 0..98 after adding 99
    if low < 0 and (low < IGNORE_INDEX or np.count_nonzero((labels + (-IGNORE_INDEX - 1)).view(np.uint32) < -IGNORE_INDEX - 1)):
        raise BadSample("labels hold negative ids other than -100")
    # one reduction: a NaN or an infinity makes the float64 sum non-finite (float32 values cannot overflow it)
    if not math.isfinite(float(weights.sum(dtype=np.float64))):
        raise BadSample("loss_weight is not finite")
    return Sample(key=key, input_ids=ids, labels=labels, loss_weight=weights, vision=vision, epoch=epoch,
                  shard=_basename(shard.path), meta=meta)


def _json_index(shard: ShardRef) -> str:
    return shard.path[:-4] + INDEX_SUFFIX if shard.path.endswith(".tar") else str(shard.index)


@functools.lru_cache(maxsize=4096)
def _basename(path: str) -> str:
    return os.path.basename(path)


__all__ = ["BadSample", "FileCache", "IndexCache", "Span", "entry_span", "read_sample", "DEFAULT_BASE_VOCAB"]
