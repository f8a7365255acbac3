"""What makes a rebuild incremental: stable shard membership, and fingerprints that see every change.

**Membership** (:func:`partition`). The samples of one (split, stream) are placed by their keys alone, in a binary
trie over the key's 80 hash bits: a node holding more than ``samples_per_shard`` samples splits into its two
children (next bit 0 / 1); every leaf that holds samples is a shard. The shard's number is the leaf's position in
the trie counted breadth-first (root 0, children of ``n`` are ``2n+1`` and ``2n+2``), so it never depends on other
leaves. The partition is a pure function of the set of keys: a full build and any sequence of incremental builds
of the same inputs give the same shards. Adding one sample changes only its leaf (or, when that leaf overflows,
replaces it by its two children: two shards); an edited sample changes only its own shard. A shard holds at most
``samples_per_shard`` samples (on average about 0.7 of it, as leaves fill between half and all of it).

**Fingerprints** (:func:`shard_fingerprint`). A shard is rebuilt when its fingerprint differs from the one in its
completion marker. The fingerprint covers the build's parameters and tokenizer, every sample's record and spec
(texts, image references, positions), the identity of every input file the shard reads (:class:`InputIdentity`:
size and modification time by default, or a content hash with ``--input-identity content``; a slice folder by its
files) and :func:`code_version`: a hash of the code that turns a planned sample into bytes (image readers,
intensity and depth rules, token layout, keywords and their lexicon, writer, codec) and of the versions of the
libraries that decode and encode (Pillow, pydicom and its decoders, nibabel, NumPy, zstandard, SentencePiece). A
fix to the imaging code therefore rebuilds every shard; a repaired JPEG rebuilds the one shard that holds it.
Comments and docstrings do not count (the code is hashed as its syntax tree).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import asdict
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Literal

import numpy as np

from pipelines.paths import store_root
from pipelines.records import ImageRef, Job

#: Bits of a sample key's hash (SPEC §2: 20 hex digits).
KEY_BITS = 80
#: The low bits of a key's number held apart from the high 64 (numpy has no 80-bit integers).
LOW_BITS = KEY_BITS - 64

InputIdentity = Literal["stat", "content"]
INPUT_IDENTITIES: tuple[str, ...] = ("stat", "content")

ROOT = Path(__file__).resolve().parents[1]
#: The code that shapes a sample's bytes once it is planned (planning code shapes the jobs, which are hashed).
SAMPLE_CODE = (
    "pipelines/imaging",
    "pipelines/text.py",
    "pipelines/keywords.py",
    "pipelines/worker.py",
    "pipelines/writer.py",
    "pipelines/data",
    "shards_spec/codec.py",
    "shards_spec/tario.py",
    "shards_spec/layout.py",
    "shards_spec/schema.py",
    "shards_spec/tokenizer.py",
    "shards_spec/jsonio.py",
)
#: Libraries whose version can change decoded pixels or encoded bytes.
SAMPLE_LIBRARIES = ("numpy", "Pillow", "pydicom", "pylibjpeg", "pylibjpeg-libjpeg", "pylibjpeg-openjpeg",
                    "pylibjpeg-rle", "nibabel", "zstandard", "sentencepiece")


# ------------------------------------------------------------------------------------------------- membership
def key_bits(key: str) -> int:
    """The 80-bit number a sample key ends in (``<dataset>_<20 hex>``)."""
    return int(key.rsplit("_", 1)[1], 16)


def partition(keys: Sequence[str], per_shard: int) -> list[tuple[int, list[str]]]:
    """``(shard number, keys in key order)`` for every non-empty leaf of the key trie (see the module docstring),
    in shard-number order."""
    ordered = sorted(keys, key=key_bits)
    bits = [key_bits(k) for k in ordered]
    hi = np.array([b >> LOW_BITS for b in bits], dtype=np.uint64)
    lo = np.array([b & ((1 << LOW_BITS) - 1) for b in bits], dtype=np.uint16)
    return [(number, ordered[low:high]) for number, low, high in partition_sorted(hi, lo, per_shard)]


def partition_sorted(hi: np.ndarray, lo: np.ndarray, per_shard: int) -> list[tuple[int, int, int]]:
    """:func:`partition` of keys given as their sorted 80-bit numbers, split into the high 64 bits (``hi``, uint64)
    and the low 16 (``lo``, uint16), sorted by ``(hi, lo)``: ``(shard number, start, stop)`` of every non-empty leaf,
    ``start:stop`` a range of the arrays, in shard-number order. Holds no per-key Python objects (a plan of millions
    of keys, ``pipelines.plan``)."""
    if per_shard < 1:
        raise ValueError(f"samples per shard must be >= 1, not {per_shard}")
    leaves: list[tuple[int, int, int]] = []

    def middle(depth: int, low: int, high: int) -> int:  # the first of keys[low:high] whose bit after `depth` is 1
        values, bit = (hi, 63 - depth) if depth < 64 else (lo, KEY_BITS - 1 - depth)
        prefix = int(values[low]) >> (bit + 1)
        threshold = ((prefix << 1) | 1) << bit
        return low + int(np.searchsorted(values[low:high], values.dtype.type(threshold), side="left"))

    def visit(node: int, depth: int, low: int, high: int) -> None:  # keys[low:high] share the node's prefix
        if high == low:
            return
        if high - low <= per_shard or depth == KEY_BITS:
            leaves.append((node, low, high))
            return
        split = middle(depth, low, high)
        visit(2 * node + 1, depth + 1, low, split)
        visit(2 * node + 2, depth + 1, split, high)

    visit(0, 0, 0, len(hi))
    return sorted(leaves)


# ------------------------------------------------------------------------------------------------- input files
def _file_identity(path: Path, how: InputIdentity) -> str:
    try:
        st = path.stat()
    except OSError:
        return "missing"
    if how == "stat":
        return f"{st.st_size}:{st.st_mtime_ns}"
    digest = hashlib.blake2b(digest_size=16)
    try:
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        return f"unreadable:{exc.errno}"
    return f"{st.st_size}:{digest.hexdigest()}"


def path_identity(raw: Path, rel: str, how: InputIdentity) -> str:
    """A file's identity; a folder's is its visible files' names and identities (what a slice series reads)."""
    path = raw / rel
    if not path.is_dir():
        return _file_identity(path, how)
    try:
        names = sorted(n for n in os.listdir(path) if not n.startswith("."))
    except OSError as exc:
        return f"unlistable:{exc.errno}"
    parts = [f"{n}={_file_identity(path / n, how)}" for n in names if not (path / n).is_dir()]
    return "dir[" + ",".join(parts) + "]"


def input_key(ref: ImageRef) -> str:
    """How an input file is named in the identities: its path under the raw root, or ``<store>//<path>`` for a
    file of a figure store (a normalised path never holds ``//``, so the two cannot collide)."""
    return f"{ref.store}//{ref.path}" if ref.store else ref.path


def input_identities(raw: Path, refs: Iterable[ImageRef], how: InputIdentity, workers: int = 8, *,
                     stores: Mapping[str, Path] | None = None, pool: Executor | None = None) -> dict[str, str]:
    """The identity of every distinct input among ``refs`` (:func:`input_key`; a store's files under its root,
    ``stores``), read by threads: a content hash or a network file system waits on I/O. ``pool``: threads to use
    (a caller that asks for many small sets, one per shard, passes one pool; new threads per call cost the process
    memory that it keeps), else ``workers`` new ones."""
    if how not in INPUT_IDENTITIES:
        raise ValueError(f"input identity must be one of {INPUT_IDENTITIES}, not {how!r}")
    distinct = {input_key(ref): ref for ref in refs}
    keys = sorted(distinct)

    def identity(key: str) -> str:
        ref = distinct[key]
        return path_identity(store_root(raw, ref.store, stores), ref.path, how)

    if pool is not None:
        return dict(zip(keys, pool.map(identity, keys)))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as threads:
        return dict(zip(keys, threads.map(identity, keys)))


# ------------------------------------------------------------------------------------------------- code
def _tree_text(path: Path) -> bytes:
    if path.suffix != ".py":
        return path.read_bytes()
    tree = ast.parse(path.read_text("utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree).encode()


def _library_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


@lru_cache(maxsize=1)
def code_version() -> str:
    """``sha256:<16 hex>`` over the sample-shaping code (as syntax trees) and library versions."""
    digest = hashlib.sha256()
    for entry in SAMPLE_CODE:
        base = ROOT / entry
        files = sorted(p for p in base.rglob("*") if p.is_file() and p.suffix in (".py", ".txt", ".json")) \
            if base.is_dir() else [base]
        for path in files:
            digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + _tree_text(path) + b"\0")
    for name in SAMPLE_LIBRARIES:
        digest.update(f"{name}=={_library_version(name)}\0".encode())
    return "sha256:" + digest.hexdigest()[:16]


# ------------------------------------------------------------------------------------------------- shards
def shard_fingerprint(environment: str, jobs: Sequence[Job], identities: dict[str, str]) -> str:
    """The fingerprint of a shard: the build environment (parameters, tokenizer, code version), its jobs in order,
    and the identity of every file they read."""
    digest = hashlib.sha256(environment.encode())
    for job in jobs:
        digest.update(json.dumps(asdict(job), sort_keys=True, default=str).encode("utf-8", "surrogatepass"))
        for ref in job.record.images:
            key = input_key(ref)
            digest.update(f"\0{key}={identities.get(key, 'unknown')}".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()
