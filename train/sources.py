"""Resolve the config's ``sources`` into a deterministic list of shards per stream.

A source ``path`` may be

* a dataset directory holding ``manifest.json`` (``<out>/<dataset>``),
* a directory of dataset directories (``<out>``, e.g. ``data/shards``): every ``*/manifest.json`` in it,
* a ``manifest.json`` file,
* a brace pattern (or a single path) of local tar files, e.g. ``/x/mimic-train-2d-{000000..000005}.tar``,
  expanded with ``webdataset.shardlists.expand_urls``; ``file:`` prefixes are accepted. The stream, split and
  dataset come from the shard name (SPEC §1), the sample count from the index sidecar.

Manifests are filtered by ``splits`` (default ``["train"]``); URL patterns only when ``splits`` is given.
Shards come back in a fixed order (source order, then path), so every rank derives the same list.
Any of these may also be an object-store URL (``s3://bucket/prefix/mimic``, ``gs://…``; ``shards_spec.storage``):
the dataset folders are found by one listing, and the stream reads each sample's span with a ranged request driven
by the index sidecar (SPEC §4), never a whole shard. ``pipe:`` and plain ``http(s)`` tar streams are refused: the
stream seeks by index.
Shards listed in a manifest but missing on disk are reported and left out (they cannot be read on any rank);
shards with zero samples are left out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from shards_spec import storage
from shards_spec.codec import MAX_META_BYTES
from shards_spec.jsonio import loads, read_json
from shards_spec.layout import FIELD_META, MANIFEST_NAME, SHARD_RE, SPEC_VERSION, STREAMS, index_path, is_plain_relative
from shards_spec.schema import parse_manifest
from shards_spec.tokenizer import TokenizerIdentity

from .config import SourceConfig

DEFAULT_SPLITS = ("train",)


@dataclass(frozen=True)
class ShardRef:
    path: str  # absolute path of the tar
    stream: str  # "2d" / "3d"
    split: str
    dataset: str
    samples: int  # from the manifest, else the index sidecar (the index is authoritative when reading)
    weight: float
    source: int  # position of the source entry in the config

    @property
    def index(self) -> str:
        return str(index_path(self.path))

    @property
    def name(self) -> str:
        return storage.name(self.path)


class SourceError(ValueError):
    pass


log = logging.getLogger(__name__)


def _check_version(version: object, where: str) -> None:
    if not isinstance(version, str) or version.split(".")[0] != SPEC_VERSION.split(".")[0]:
        raise SourceError(f"{where}: spec_version {version!r} is not readable by this trainer (spec {SPEC_VERSION})")


def _from_manifest(manifest: Path | str, src: SourceConfig, source_idx: int,
                   skipped: list[str] | None = None) -> list[ShardRef]:
    """The shards a manifest lists for the source's splits. A manifest that cannot be read, or whose own keys
    are mistyped, is a :class:`SourceError`; a bad shard *entry* (mistyped fields, an unknown stream, a path
    outside the manifest's folder, a shard missing on disk) is left out with a warning and its reason appended
    to ``skipped``."""
    remote = storage.is_remote(manifest)
    try:
        raw = loads(storage.read_bytes(manifest)) if remote else read_json(manifest)
    except UnicodeDecodeError:
        raise SourceError(f"{manifest}: not a manifest (not UTF-8 text)") from None
    except ValueError as exc:
        raise SourceError(f"{manifest}: not a manifest (not valid JSON: {exc})") from None
    except FileNotFoundError:
        raise SourceError(f"{manifest}: no such manifest") from None
    except OSError as exc:
        raise SourceError(f"{manifest}: cannot be read ({exc.strerror or exc})") from None
    _check_version(raw.get("spec_version") if isinstance(raw, dict) else None, str(manifest))
    head, entries, problems = parse_manifest(raw)
    if head is None or not isinstance(raw.get("shards"), list):
        reason = problems[0] if problems else "shards: missing"
        raise SourceError(f"{manifest}: not a valid manifest ({reason}; python -m shards_spec.validate checks it)")

    def skip(reason: str) -> None:
        log.warning(f"{manifest}: {reason}; the entry is skipped")
        if skipped is not None:
            skipped.append(f"{manifest}: {reason}")

    splits = set(src.splits or DEFAULT_SPLITS)
    good = {i for i, _ in entries}
    bad = [i for i in range(len(raw["shards"])) if i not in good]
    for i, problem in zip(bad, problems):  # the head is well typed: every problem is one entry's, in order
        split = raw["shards"][i].get("split") if isinstance(raw["shards"][i], dict) else None
        if not (isinstance(split, str) and split not in splits):  # an entry of another split is not ours to count
            skip(problem)
    root = storage.parent(manifest)
    present = storage.listing(root) if remote else None  # one listing instead of a request per shard
    out = []
    for i, entry in entries:
        if entry.split not in splits:
            continue
        if entry.stream not in STREAMS:
            skip(f"shards[{i}] ({entry.path}) has unknown stream {entry.stream!r}")
            continue
        if not is_plain_relative(entry.path):
            skip(f"shards[{i}].path {entry.path!r} is not a relative path inside the manifest's folder")
            continue
        path = storage.join(root, entry.path) if remote else (root / entry.path).resolve()
        if not (str(path) in present if remote else path.is_file()):
            skip(f"shards[{i}] ({entry.path}) is listed but missing")
            continue
        if entry.samples <= 0:
            continue
        out.append(ShardRef(str(path), entry.stream, entry.split, head.dataset, entry.samples, src.weight, source_idx))
    return out


def count_index_samples(tar: Path | str) -> int:
    """Samples listed in a shard's index sidecar (-1 if the sidecar is missing or unreadable)."""
    idx = index_path(tar)
    try:
        return len(loads(storage.read_bytes(idx))["samples"])
    except (OSError, ValueError, KeyError, TypeError):
        return -1


def _from_pattern(pattern: str, src: SourceConfig, source_idx: int) -> list[ShardRef]:
    from webdataset.shardlists import expand_urls

    urls = expand_urls(pattern)
    out = []
    listed: dict[str, dict[str, int]] = {}  # remote folder -> its listing
    for url in urls:
        if storage.is_remote(url) and not url.startswith(("pipe:", "http://", "https://")):
            folder = str(storage.parent(url))
            if folder not in listed:
                listed[folder] = storage.listing(folder)
            if url not in listed[folder]:
                raise SourceError(f"{pattern}: {url} does not exist")
            m = SHARD_RE.match(storage.name(url))
            if not m:
                raise SourceError(f"{storage.name(url)}: not a shard name <dataset>-<split>-<stream>-NNNNNN.tar")
            if src.splits is not None and m["split"] not in src.splits:
                continue
            samples = count_index_samples(url)
            if samples < 0:
                raise SourceError(f"{url}: no readable index sidecar ({storage.name(index_path(url))}); a remote "
                                  "shard is read through its index")
            if samples:
                out.append(ShardRef(url, m["stream"], m["split"], m["dataset"], samples, src.weight, source_idx))
            continue
        if url.startswith("file://"):
            url = url[len("file://"):]
        elif url.startswith("file:"):
            url = url[len("file:"):]
        if "://" in url or url.startswith("pipe:"):
            raise SourceError(f"{url}: only local shard files are supported (the stream seeks by index)")
        path = Path(url).resolve()
        if not path.is_file():
            raise SourceError(f"{pattern}: {path} does not exist")
        m = SHARD_RE.match(path.name)
        if not m:
            raise SourceError(f"{path.name}: not a shard name <dataset>-<split>-<stream>-NNNNNN.tar")
        if src.splits is not None and m["split"] not in src.splits:
            continue
        samples = count_index_samples(path)
        if samples < 0:
            from shards_spec.reader import iter_raw_samples

            log.warning(f"{path}: no readable index sidecar; counting samples by walking the tar")
            try:
                samples = sum(1 for _ in iter_raw_samples(path, read_data=False))
            except Exception as exc:  # a truncated tar still counts what it holds
                log.warning(f"{path}: walking the tar failed ({exc})")
                samples = max(samples, 0)
        if samples == 0:
            continue
        out.append(ShardRef(str(path), m["stream"], m["split"], m["dataset"], samples, src.weight, source_idx))
    return out


def _remote_source(src: SourceConfig, source_idx: int, skipped: list[str] | None = None) -> list[ShardRef]:
    """A manifest URL, a dataset prefix holding ``manifest.json``, or a prefix of dataset prefixes."""
    url = src.path.rstrip("/")
    if url.endswith(".json"):
        return _from_manifest(url, src, source_idx, skipped)
    try:
        listed = storage.listing(url)
    except OSError as exc:
        raise SourceError(f"source {url}: cannot list it ({exc})") from None
    own = f"{url}/{MANIFEST_NAME}"
    if own in listed:
        return _from_manifest(own, src, source_idx, skipped)
    manifests = sorted(loc for loc in listed if storage.relative(loc, url).count("/") == 1
                       and loc.endswith("/" + MANIFEST_NAME))
    if not manifests:
        raise SourceError(f"{url}: no {MANIFEST_NAME} in it or in its sub-prefixes")
    return [s for m in manifests for s in _from_manifest(m, src, source_idx, skipped)]


def resolve_source(src: SourceConfig, source_idx: int = 0, skipped: list[str] | None = None) -> list[ShardRef]:
    """The shards of one source (see the module docstring); manifest entries left out are appended to
    ``skipped``, one reason each."""
    p = Path(src.path)
    if any(ch in src.path for ch in "{}") or src.path.endswith(".tar"):
        shards = _from_pattern(src.path, src, source_idx)
    elif storage.is_remote(src.path) and not src.path.startswith(("pipe:", "http://", "https://")):
        shards = _remote_source(src, source_idx, skipped)
    elif p.is_file() and p.name.endswith(".json"):
        shards = _from_manifest(p, src, source_idx, skipped)
    elif p.is_dir() and (p / MANIFEST_NAME).is_file():
        shards = _from_manifest(p / MANIFEST_NAME, src, source_idx, skipped)
    elif p.is_dir():
        manifests = sorted(p.glob(f"*/{MANIFEST_NAME}"))
        if not manifests:
            raise SourceError(f"{p}: no {MANIFEST_NAME} in it or in its subdirectories (build shards with `make demo` "
                              "or python -m pipelines.build --out <it>)")
        shards = [s for m in manifests for s in _from_manifest(m, src, source_idx, skipped)]
    else:
        raise SourceError(f"source {src.path!r} does not exist (relative paths start at {Path.cwd()}; "
                          "the demo shards come from `make demo`)")
    return sorted(shards, key=lambda s: s.path)


def resolve_sources(sources: list[SourceConfig], skipped: list[str] | None = None) -> dict[str, list[ShardRef]]:
    """``{"2d": [...], "3d": [...]}``: the shards of every source, in source order then path order; manifest
    entries left out (mistyped, unknown stream, path outside the folder, missing shard) are appended to
    ``skipped``, one reason each."""
    by_stream: dict[str, list[ShardRef]] = {s: [] for s in STREAMS}
    for i, src in enumerate(sources):
        shards = resolve_source(src, i, skipped)
        if not shards:
            log.warning(f"source {src.path!r} (splits {src.splits or list(DEFAULT_SPLITS)}) gave no shards")
        for s in shards:
            by_stream[s.stream].append(s)
    if not any(by_stream.values()):
        listing = "; ".join(f"{s.path} (splits {s.splits or list(DEFAULT_SPLITS)})" for s in sources)
        raise SourceError(f"no shards in any source: {listing}. Build shards with `make demo` or python -m "
                          "pipelines.build, or point 'sources' (or 'splits') at existing ones")
    return by_stream


def shard_tokenizers(by_stream: dict[str, list[ShardRef]]) -> dict[str, TokenizerIdentity]:
    """``{dataset: tokenizer identity}`` as stated by the first sample of each dataset's first shard (``meta.json``
    ``tokenizer`` + ``special_ids``; one seek through the index sidecar per dataset)."""
    from shards_spec.codec import decode_meta

    found: dict[str, TokenizerIdentity] = {}
    for shard in (s for shards in by_stream.values() for s in shards):
        if shard.dataset in found:
            continue
        try:
            entry = loads(storage.read_bytes(shard.index))["samples"][0]
            offset, size = entry["members"][FIELD_META]
            meta = storage.read_range(shard.path, offset, min(size, MAX_META_BYTES + 1))
            found[shard.dataset] = TokenizerIdentity.from_meta(decode_meta(meta))
        except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            # a bad first sample: the dataset's next shard is tried
            log.warning(f"{shard.path}: cannot read the tokenizer fingerprint ({exc})")
    return found


def tokenizer_fingerprints(by_stream: dict[str, list[ShardRef]]) -> dict[str, str]:
    """``{dataset: tokenizer fingerprint}`` (see :func:`shard_tokenizers`)."""
    return {d: ident.fingerprint for d, ident in shard_tokenizers(by_stream).items()}


def check_tokenizers(by_stream: dict[str, list[ShardRef]], model_vocab: int,
                     model_tokenizer: TokenizerIdentity | dict | None = None,
                     allow_mismatch: bool = False) -> TokenizerIdentity | None:
    """Refuse sources the model cannot read correctly; return the shards' tokenizer identity.

    * All sources must share one tokenizer.
    * Its base vocabulary must be the model's ``vocab_size``: image token ids are ``base + 2 + K``, so a mismatch
      would silently feed the wrong embeddings (refused even with ``allow_mismatch``).
    * It must be the tokenizer the model was trained with (``model_tokenizer``, the model's
      ``config.tokenizer``), unless ``allow_mismatch``: otherwise the same ids mean other pieces. A model without a
      recorded tokenizer accepts any.
    """
    found = shard_tokenizers(by_stream)
    if len({ident.fingerprint for ident in found.values()}) > 1:
        listing = ", ".join(f"{d}: {ident.fingerprint}" for d, ident in sorted(found.items()))
        raise SourceError(f"the sources were built with different tokenizers ({listing}); rebuild them with one")
    if not found:
        return None
    shards = next(iter(found.values()))
    if shards.base_vocab != model_vocab:
        raise SourceError(f"the shards' tokenizer has a base vocabulary of {shards.base_vocab} pieces but the model's "
                          f"vocab_size is {model_vocab}; image token ids would not line up")
    if isinstance(model_tokenizer, dict):
        model_tokenizer = TokenizerIdentity.from_dict(model_tokenizer)
    if model_tokenizer is not None and model_tokenizer != shards:
        datasets = ", ".join(sorted(found))
        where = model_tokenizer.source or "the model's tokenizer folder"
        problem = (f"dataset {datasets} was built with tokenizer {shards.describe()}, but the model was trained with "
                   f"{model_tokenizer.describe()}: the same ids would mean other pieces")
        if not allow_mismatch:
            raise SourceError(f"{problem}. Rebuild the shards with the model's tokenizer (python -m pipelines.build "
                              f"--dataset NAME ... --tokenizer <{where}>), or set allow_tokenizer_mismatch: true to "
                              "train anyway")
        log.warning(f"{problem} (training anyway: allow_tokenizer_mismatch is set)")
    return shards


def bind_model_tokenizer(sources: list[SourceConfig], model_config, allow_mismatch: bool = False,
                         resolved: dict[str, list[ShardRef]] | None = None) -> TokenizerIdentity | None:
    """The trainer's check before it builds the engine: :func:`check_tokenizers` against ``model_config``
    (``vocab_size``, ``tokenizer``); a model without a recorded tokenizer adopts the shards' (``config.tokenizer``
    is then saved with the model). ``resolved``: the sources' shards when already resolved."""
    by_stream = resolve_sources(sources) if resolved is None else resolved
    shards = check_tokenizers(by_stream, model_config.vocab_size, model_config.tokenizer, allow_mismatch)
    if model_config.tokenizer is None and shards is not None:
        model_config.tokenizer = shards.to_dict()
    return shards


def weighted_samples(shards: list[ShardRef]) -> float:
    """Expected samples per stream epoch: sum of weight x samples."""
    return float(sum(s.weight * s.samples for s in shards))


__all__ = ["ShardRef", "SourceError", "bind_model_tokenizer", "check_tokenizers", "resolve_source", "resolve_sources",
           "shard_tokenizers", "tokenizer_fingerprints",
           "weighted_samples", "count_index_samples"]
