"""Where shards live: a local folder, or an object store named by a URL (``s3://bucket/prefix``, ``gs://…``,
``az://…``, ``http(s)://…`` through obstore; any other fsspec URL, e.g. ``memory://``, through fsspec).

Every function takes a *location*: a local path (``str`` or ``Path``) or a URL. Local locations keep the local
code path (atomic rename, memory maps elsewhere); remote ones go through one :class:`Store` per bucket:

* **Objects appear whole.** A PUT publishes an object atomically, so a reader never sees a partial object; the
  build's commit order (tar, index, then the completion marker; the manifest last) gives the rest.
* **Byte ranges.** :func:`read_range` is one ranged GET; the trainer reads a sample's span through the index
  sidecar and never downloads a whole shard.
* **Retries with backoff** (:class:`RetryPolicy`) on transient errors: 5xx answers (503 SlowDown …), throttling,
  dropped or reset connections, a short body. A missing object (:class:`FileNotFoundError`) and refused
  credentials are not retried. The policy comes from ``RADFM_STORAGE_RETRIES`` (attempts, default 6) and
  ``RADFM_STORAGE_BACKOFF_S`` (first delay, default 0.2 s, doubling, capped at 8 s, with jitter).

Client: obstore, chosen by measurement (``bench/remote.py``: index-driven range reads on a local S3 server,
against pyarrow's ``S3FileSystem``, boto3 and s3fs; docs/benchmarks.md). Endpoint, region and credentials come
from the usual environment (``AWS_ENDPOINT_URL``, ``AWS_REGION``, ``AWS_ACCESS_KEY_ID`` …, ``GOOGLE_*``,
``AZURE_*``); an ``http://`` endpoint is allowed.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from shards_spec.tario import atomic_write_bytes

Location = str | os.PathLike
T = TypeVar("T")

#: URL schemes served by obstore; any other scheme with ``://`` goes to fsspec.
OBSTORE_SCHEMES = ("s3", "s3a", "gs", "az", "abfs", "abfss", "azure", "http", "https")


class StorageError(OSError):
    """A remote operation that failed for good (after retries, or not retryable); the message says which object."""


def is_remote(location: Location) -> bool:
    """True for a URL with a scheme other than ``file``."""
    text = os.fspath(location)
    return "://" in text and not text.startswith("file://")


def local_path(location: Location) -> Path:
    text = os.fspath(location)
    return Path(text[len("file://"):] if text.startswith("file://") else text)


def join(base: Location, *parts: str) -> str | Path:
    """``base/part/...``: a URL stays a string, a local path a :class:`Path`."""
    if not is_remote(base):
        return local_path(base).joinpath(*parts)
    out = os.fspath(base).rstrip("/")
    for part in parts:
        out += "/" + part.strip("/")
    return out


def name(location: Location) -> str:
    return os.fspath(location).rstrip("/").rsplit("/", 1)[-1]


def parent(location: Location) -> str | Path:
    if not is_remote(location):
        return local_path(location).parent
    return os.fspath(location).rstrip("/").rsplit("/", 1)[0]


def relative(location: Location, base: Location) -> str:
    """``location`` relative to ``base`` (``/``-separated)."""
    if not is_remote(location):
        return local_path(location).relative_to(local_path(base)).as_posix()
    loc, root = os.fspath(location), os.fspath(base).rstrip("/") + "/"
    if not loc.startswith(root):
        raise ValueError(f"{loc} is not under {root}")
    return loc[len(root):]


# ------------------------------------------------------------------------------------------------- retries
@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6
    first_delay_s: float = 0.2
    max_delay_s: float = 8.0

    @classmethod
    def from_env(cls) -> RetryPolicy:
        return cls(attempts=max(1, int(os.environ.get("RADFM_STORAGE_RETRIES") or 6)),
                   first_delay_s=float(os.environ.get("RADFM_STORAGE_BACKOFF_S") or 0.2))

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (1-based): exponential, capped, with full jitter above
        half of it (so retrying clients spread out)."""
        d = min(self.max_delay_s, self.first_delay_s * 2 ** (attempt - 1))
        return d * (0.5 + 0.5 * random.random())


#: Retries performed by this process, by operation (read by tests and logs).
RETRIES: dict[str, int] = {}
_retries_lock = threading.Lock()


def _permanent(exc: BaseException) -> bool:
    """Errors that a retry cannot fix: missing object, refused credentials, a bad path or configuration, a 4xx
    answer other than 408/429."""
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError, ValueError,
                        TypeError)):
        return True
    try:
        from obstore import exceptions as ox
    except ImportError:
        return False
    if isinstance(exc, (ox.NotFoundError, ox.PermissionDeniedError, ox.UnauthenticatedError, ox.InvalidPathError,
                        ox.NotSupportedError, ox.UnknownConfigurationKeyError, ox.AlreadyExistsError,
                        ox.PreconditionError)):
        return True
    text = str(exc)
    for code in ("400", "401", "403", "404", "405", "409", "411", "412", "416"):
        if f"status code: {code}" in text:
            return True
    return False


def with_retries(what: str, fn: Callable[[], T], policy: RetryPolicy | None = None, op: str = "op") -> T:
    """``fn()``, retried with backoff on transient errors; raises :class:`FileNotFoundError` for a missing object
    and :class:`StorageError` (one line: what, how many attempts, the last error) otherwise."""
    policy = policy or RetryPolicy.from_env()
    for attempt in range(1, policy.attempts + 1):
        try:
            return fn()
        except FileNotFoundError as exc:
            raise FileNotFoundError(f"{what}: no such object") from exc
        except Exception as exc:
            if _permanent(exc):
                raise StorageError(f"{what}: {_first_line(exc)}") from exc
            if attempt == policy.attempts:
                raise StorageError(f"{what}: failed after {attempt} attempts: {_first_line(exc)}") from exc
            with _retries_lock:
                RETRIES[op] = RETRIES.get(op, 0) + 1
            time.sleep(policy.delay(attempt))
    raise AssertionError("unreachable")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


class ShortRead(OSError):
    """A ranged read returned fewer bytes than the object holds there (a cut connection that the client did not
    report): transient."""


# ------------------------------------------------------------------------------------------------- stores
class Store:
    """One bucket (or fsspec file system) at ``root`` (``scheme://netloc``); keys are paths under it."""

    def __init__(self, root: str):
        self.root = root
        self.scheme = urlsplit(root).scheme
        self.policy = RetryPolicy.from_env()
        if self.scheme in OBSTORE_SCHEMES:
            from obstore.store import from_url

            options = {}
            endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
            if self.scheme.startswith("http") and root.startswith("http://") or endpoint.startswith("http://"):
                options["client_options"] = {"allow_http": True}
            # our retry loop is the only one: obstore's own retries would hide faults from it and multiply the waits
            self._store = from_url(root, retry_config={"max_retries": 0, "retry_timeout": _seconds(60)}, **options)
            self._fs = None
        else:
            import fsspec

            self._store = None
            self._fs = fsspec.filesystem(self.scheme)

    # keys of an fsspec file system carry the netloc ("bucket/key"); obstore's are relative to the bucket
    def _fskey(self, key: str) -> str:
        netloc = urlsplit(self.root).netloc
        return f"{netloc}/{key}" if netloc else f"/{key}"

    def read_range(self, key: str, offset: int, size: int) -> bytes:
        """The ``size`` bytes at ``offset`` (fewer only at the object's end)."""
        if size <= 0:
            return b""

        def once() -> bytes:
            if self._store is not None:
                import obstore

                data = bytes(obstore.get_range(self._store, key, start=offset, length=size))
            else:
                data = self._fs.cat_file(self._fskey(key), start=offset, end=offset + size)
            if len(data) > size:
                raise ShortRead(f"asked for {size} bytes, got {len(data)}")
            return data

        return with_retries(f"{self.root}/{key} [{offset}, {offset + size})", once, self.policy, "read")

    def read(self, key: str) -> bytes:
        def once() -> bytes:
            if self._store is not None:
                import obstore

                return bytes(obstore.get(self._store, key).bytes())
            return self._fs.cat_file(self._fskey(key))

        return with_retries(f"{self.root}/{key}", once, self.policy, "read")

    def write(self, key: str, data: bytes | Path) -> None:
        """Publish ``data`` (bytes, or a local file streamed in parts) as one object: it appears whole or not at
        all."""
        def once() -> None:
            if self._store is not None:
                import obstore

                if isinstance(data, Path):
                    with open(data, "rb") as fh:
                        obstore.put(self._store, key, fh, chunk_size=8 << 20)
                else:
                    obstore.put(self._store, key, data)
            elif isinstance(data, Path):
                self._fs.put_file(str(data), self._fskey(key))
            else:
                self._fs.pipe_file(self._fskey(key), data)

        with_retries(f"writing {self.root}/{key}", once, self.policy, "write")

    def delete(self, key: str) -> None:
        def once() -> None:
            if self._store is not None:
                import obstore

                obstore.delete(self._store, key)  # deleting a missing object is not an error on S3
            else:
                try:
                    self._fs.rm_file(self._fskey(key))
                except FileNotFoundError:
                    pass

        with_retries(f"deleting {self.root}/{key}", once, self.policy, "delete")

    def size(self, key: str) -> int:
        """The object's size (raises :class:`FileNotFoundError` when it is missing)."""
        def once() -> int:
            if self._store is not None:
                import obstore

                return int(obstore.head(self._store, key)["size"])
            return int(self._fs.size(self._fskey(key)))

        return with_retries(f"{self.root}/{key}", once, self.policy, "head")

    def listing(self, prefix: str) -> dict[str, int]:
        """``{key: size}`` of every object under ``prefix`` (a folder: ``prefix/...``)."""
        prefix = prefix.strip("/")

        def once() -> dict[str, int]:
            if self._store is not None:
                import obstore

                out = {}
                for batch in obstore.list(self._store, prefix=prefix + "/" if prefix else None, chunk_size=1000):
                    out.update({meta["path"]: int(meta["size"]) for meta in batch})
                return out
            base = self._fskey(prefix)
            try:
                found = self._fs.find(base, detail=True)
            except FileNotFoundError:
                return {}
            strip = len(self._fskey(""))
            return {p[strip:].lstrip("/"): int(info.get("size") or 0) for p, info in found.items()}

        return with_retries(f"listing {self.root}/{prefix}", once, self.policy, "list")


def _seconds(s: float):
    from datetime import timedelta

    return timedelta(seconds=s)


_STORES: dict[tuple[int, str], Store] = {}
_stores_lock = threading.Lock()


def store_for(url: str) -> tuple[Store, str]:
    """The process's :class:`Store` for ``url``'s bucket and the key of ``url`` in it (one store per process and
    bucket: a forked loader worker makes its own)."""
    parts = urlsplit(url)
    root = f"{parts.scheme}://{parts.netloc}"
    with _stores_lock:
        store = _STORES.get((os.getpid(), root))
        if store is None:
            store = _STORES[(os.getpid(), root)] = Store(root)
    return store, parts.path.lstrip("/")


# ------------------------------------------------------------------------------------------------- by location
def read_bytes(location: Location) -> bytes:
    if not is_remote(location):
        return local_path(location).read_bytes()
    store, key = store_for(os.fspath(location))
    return store.read(key)


def read_range(location: Location, offset: int, size: int) -> bytes:
    """``size`` bytes at ``offset`` (fewer at the end of the file)."""
    if not is_remote(location):
        with open(local_path(location), "rb") as fh:
            fh.seek(offset)
            return fh.read(size)
    store, key = store_for(os.fspath(location))
    return store.read_range(key, offset, size)


def write_bytes(location: Location, data: bytes) -> None:
    """Publish ``data`` atomically: a temporary file and a rename locally, one PUT remotely."""
    if not is_remote(location):
        atomic_write_bytes(local_path(location), data)
        return
    store, key = store_for(os.fspath(location))
    store.write(key, data)


def upload(local: Path, location: Location) -> None:
    """Publish the local file ``local`` at the remote ``location`` as one object."""
    store, key = store_for(os.fspath(location))
    store.write(key, Path(local))


def delete(location: Location) -> None:
    if not is_remote(location):
        local_path(location).unlink(missing_ok=True)
        return
    store, key = store_for(os.fspath(location))
    store.delete(key)


def listing(folder: Location) -> dict[str, int]:
    """``{location: size}`` of every file under ``folder``, recursively (locations as strings)."""
    if not is_remote(folder):
        root = local_path(folder)
        if not root.is_dir():
            return {}
        return {str(p): p.stat().st_size for p in root.rglob("*") if p.is_file()}
    store, key = store_for(os.fspath(folder))
    base = os.fspath(folder).rstrip("/")
    bucket_root = base[: len(base) - len(key.rstrip("/"))].rstrip("/") if key else base
    return {f"{bucket_root}/{k}": size for k, size in store.listing(key).items()}


def exists(location: Location) -> bool:
    if not is_remote(location):
        return local_path(location).exists()
    store, key = store_for(os.fspath(location))
    try:
        store.size(key)
    except FileNotFoundError:
        return False
    return True


__all__ = ["Location", "RetryPolicy", "StorageError", "Store", "delete", "exists", "is_remote", "join", "listing",
           "local_path", "name", "parent", "read_bytes", "read_range", "relative", "store_for", "upload", "with_retries",
           "write_bytes", "RETRIES"]


# ------------------------------------------------------------------------------------------------- span cache
class SpanCache:
    """An optional local disk cache of byte spans read from object storage, bounded in bytes (least recently used
    spans go first). A span is keyed by the shard's URL, its content hash (the index sidecar's ``sha256``: a
    rebuilt shard never hits an old entry) and the range, so an entry can never be stale. Several loader processes
    may share one folder: entries are written under a temporary name and renamed, evictions tolerate races.

    Enabled by ``RADFM_REMOTE_CACHE=<folder>``, bounded by ``RADFM_REMOTE_CACHE_BYTES`` (default 10 GiB; suffixes
    K, M, G, T)."""

    def __init__(self, folder: Path, max_bytes: int):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self._total: int | None = None
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    @staticmethod
    def from_env() -> SpanCache | None:
        folder = os.environ.get("RADFM_REMOTE_CACHE")
        if not folder:
            return None
        return SpanCache(Path(folder), parse_bytes(os.environ.get("RADFM_REMOTE_CACHE_BYTES") or "10G"))

    def _file(self, url: str, version: str, offset: int, size: int) -> Path:
        import hashlib

        digest = hashlib.blake2b(f"{version}\0{url}\0{offset}\0{size}".encode(), digest_size=16).hexdigest()
        return self.folder / digest[:2] / digest

    def get(self, url: str, version: str, offset: int, size: int) -> bytes | None:
        path = self._file(url, version, offset, size)
        try:
            data = path.read_bytes()
        except OSError:
            self.misses += 1
            return None
        if len(data) != size:  # a foreign or damaged file: drop it
            path.unlink(missing_ok=True)
            self.misses += 1
            return None
        try:
            os.utime(path)  # recently used
        except OSError:
            pass
        self.hits += 1
        return data

    def put(self, url: str, version: str, offset: int, size: int, data: bytes) -> None:
        if len(data) > self.max_bytes:
            return
        path = self._file(url, version, offset, size)
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{threading.get_ident()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        with self._lock:
            if self._total is None:
                self._total = self.size()
            else:
                self._total += len(data)
            if self._total > self.max_bytes:
                self._total = self._evict(int(self.max_bytes * 0.9))

    def _entries(self) -> list[tuple[float, int, Path]]:
        out = []
        for path in self.folder.glob("*/*"):
            if path.name.startswith("."):
                continue
            try:
                st = path.stat()
            except OSError:
                continue
            out.append((st.st_mtime, st.st_size, path))
        return out

    def size(self) -> int:
        """Bytes held now."""
        return sum(size for _, size, _ in self._entries())

    def _evict(self, target: int) -> int:
        entries = sorted(self._entries(), key=lambda e: (e[0], str(e[2])))
        total = sum(size for _, size, _ in entries)
        for _, size, path in entries:
            if total <= target:
                break
            path.unlink(missing_ok=True)
            total -= size
        return total


def parse_bytes(text: str) -> int:
    """``"512M"`` -> 536870912 (suffixes K, M, G, T; powers of 1024)."""
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}.get(text[-1:], 1)
    try:
        return int(float(text[:-1] if scale > 1 else text) * scale)
    except ValueError:
        raise ValueError(f"not a byte size: {text!r} (e.g. 512M, 10G)") from None


_VERSIONS: dict[str, str] = {}  # shard URL -> content hash, noted when its index sidecar is read
_CACHE: dict[int, SpanCache | None] = {}


def note_version(url: str, sha256: str | None) -> None:
    """Record a shard's content hash (from its index sidecar): spans of it may then be cached."""
    if sha256:
        _VERSIONS[url] = sha256


def span_cache() -> SpanCache | None:
    """This process's span cache (``RADFM_REMOTE_CACHE``), or None."""
    pid = os.getpid()
    if pid not in _CACHE:
        _CACHE[pid] = SpanCache.from_env()
    return _CACHE[pid]


def read_span(url: str, offset: int, size: int) -> bytes:
    """A sample's span of a remote shard: from the span cache when it holds it, else one ranged GET (kept in the
    cache when the shard's version is known)."""
    cache = span_cache()
    version = _VERSIONS.get(url)
    if cache is not None and version:
        data = cache.get(url, version, offset, size)
        if data is not None:
            return data
    data = read_range(url, offset, size)
    if cache is not None and version and len(data) == size:
        cache.put(url, version, offset, size, data)
    return data
