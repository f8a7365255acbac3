"""Build WebDataset shards for one source dataset.

    python -m pipelines.build --dataset mimic --raw DIR --out DIR|URL [--mode radfm|native]
        [--radfm-dir DIR] [--split train ...] [--channels auto|grey|rgb] [--executor ray|serial] [--workers N]

As a library: ``build(BuildRequest(dataset="mimic", raw=..., out=...))`` returns the manifest.

Steps: read the source's files into records (rejects for bad rows, files and paths; every record's paths confined
to the raw root and its text cleaned) -> the dataset-wide vocabulary -> samples from the source's tasks -> group by
(split, stream) and partition by key into shards (stable membership, ``pipelines.incremental``) -> build every
shard whose completion marker is missing or whose fingerprint changed (one Ray task each; each sample isolated) ->
write ``rejects.jsonl`` and ``manifest.json`` -> fail (exit 1) if any sample hit a bug of ours or too many inputs
were rejected.

``--out`` may be an object-store URL (``s3://bucket/prefix``, ``shards_spec.storage``): shards are spooled locally and
published object by object in the same commit order, and reruns compare against one listing of the prefix.

The plan is streamed (``pipelines.plan``): records and sample specs are spooled to a private folder under
``--plan-dir`` while the driver holds per sample only its key and spool positions, and each shard's jobs are read back
when its fingerprint is computed and when its task is submitted, so a plan of millions of samples fits a head node.

A rerun builds nothing when nothing changed; an interrupted build resumes where it stopped; ``--split`` leaves the
other splits' files and manifest entries as they are; the same inputs and seed give byte-identical tars.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from tqdm import tqdm

from pipelines.config import BuildConfig, ImageConfig, ShardConfig, TextConfig
from pipelines.distributor import run_ray, run_serial
from pipelines.failures import describe
from pipelines.hygiene import clean_record, clean_value
from pipelines.imaging.intensity import CHANNELS
from pipelines.incremental import INPUT_IDENTITIES, code_version
from pipelines.keywords import make_matcher
from pipelines.paths import PathResolver, UnresolvedPath, parse_path_maps
from pipelines.plan import Plan, PlannedShard, Spool, derive_plan, plan_shards
from pipelines.records import FileReject, Job, Record, Reject
from pipelines.sources import REGISTRY, BuildContext, Source, Store, Vocabulary, get_source, users_of
from pipelines.text import DEFAULT_TOKENIZER, TokenizerError, load_tokenizer
from pipelines.worker import ShardPlan, WorkerEnv
from shards_spec import storage
from shards_spec.jsonio import json_bytes, read_json
from shards_spec.layout import (
    INDEX_BIN_SUFFIX,
    INDEX_SUFFIX,
    SPEC_VERSION,
    SPLITS,
    STATS_SUFFIX,
    STREAMS,
    manifest_path,
    rejects_path,
    stats_path,
)
from shards_spec.schema import Manifest, ManifestShard, RejectSummary

log = logging.getLogger("pipelines.build")  # not __name__: that is "__main__" under python -m


class BuildError(RuntimeError):
    """A request that cannot be built at all; the message says why in one line."""


class BuildFailed(BuildError):
    """A build that wrote everything (shards, ``rejects.jsonl``, manifest) but must not count as a success: a sample
    hit a bug of ours (``internal_error``) or more than ``max_reject_fraction`` of the inputs were rejected."""

    def __init__(self, message: str, manifest: dict[str, Any]):
        super().__init__(message)
        self.manifest = manifest


@dataclass(frozen=True)
class BuildRequest:
    """One build: which dataset, where its files are, where the shards go, and how to build them."""

    dataset: str  # a registry id (pipelines.sources.REGISTRY)
    raw: Path  # the dataset's raw root
    out: Path | str  # output root (a folder or an object-store URL); shards go to <out>/<dataset>/<stream>/<split>/
    mode: str | None = None  # None: the source's default mode
    radfm_dir: Path | None = None  # RadFM's split files (None: <raw>/radfm)
    path_maps: tuple[tuple[str, str], ...] = ()  # (OLD, NEW) prefixes of RadFM's paths mapped onto the raw root
    stores: tuple[tuple[str, Path], ...] = ()  # (store id, root) for stores not beside the raw root (``--store``)
    splits: tuple[str, ...] | None = None  # build only these splits (None: all)
    tokenizer: str = DEFAULT_TOKENIZER  # Hugging Face tokenizer directory, or "default"
    keywords: str = "lexicon"  # lexicon | lexicon+spacy:MODEL | none
    config: BuildConfig = field(default_factory=BuildConfig)  # sizes, limits, seed
    executor: Literal["ray", "serial"] = "ray"
    workers: int | None = None  # local Ray CPUs (None: all)
    progress: bool = True  # a progress bar while shards are built
    channels: str = "auto"  # auto (grey unless the planes differ) | grey | rgb
    follow_symlinks_outside: bool = False  # read through symbolic links that leave the raw root
    input_identity: str = "stat"  # stat (size + mtime) | content (a hash of every input file)
    max_reject_fraction: float | None = None  # None: the source's default (Source.max_reject_fraction)
    plan_dir: Path | None = None  # where the plan's spool files go while the build runs (None: TMPDIR; pipelines.plan)


# ------------------------------------------------------------------------------------------------- planning
def _records(source: Source, ctx: BuildContext) -> Iterator[Record | Reject]:
    """The source's records and rejects; an exception from the source ends them with one ``internal_error``."""
    try:
        for item in source.records(ctx):
            yield item
    except Exception as exc:
        yield Reject(source.name, "", "", "internal_error", f"reading the dataset stopped: {describe(exc)}", "plan")


def check_record(record: Record, ctx: BuildContext, dataset: str | None = None) -> Record | Reject:
    """What the build checks of every record of every source: its dataset (``dataset``, the source's name), stream
    and split names, its image paths inside the raw root (normalised), and its text (``pipelines.hygiene``)."""
    first = record.images[0].path if record.images else ""
    if dataset is not None and record.dataset != dataset:
        return Reject(dataset, record.source_id, first, "internal_error",
                      f"the {dataset} source made a record of dataset {record.dataset!r}", "plan")
    if record.stream not in STREAMS:
        return Reject(record.dataset, record.source_id, first, "internal_error",
                      f"the source made a record of stream {record.stream!r} (streams: {', '.join(STREAMS)})", "plan")
    if record.split not in SPLITS:
        return Reject(record.dataset, record.source_id, first, "bad_row",
                      f"split {record.split!r} is not one of {', '.join(SPLITS)}", "plan")
    images = []
    for ref in record.images:
        try:
            images.append(replace(ref, path=ctx.confine(ref)))
        except UnresolvedPath as exc:
            return Reject(record.dataset, record.source_id, ref.path, exc.reason, str(exc), "plan")
    if tuple(images) != record.images:
        record = replace(record, images=tuple(images))
    return clean_record(record, ctx.text)


def read_dataset(source: Source, ctx: BuildContext, into: list | Spool | None = None
                 ) -> tuple[Sequence[Record], Vocabulary, list[Reject]]:
    """The dataset-wide pass: every record and reject of the source (checked by :func:`check_record`), then its
    vocabulary over all records (text cleaned). The records are appended to ``into`` (default: a new list; the build
    passes a :class:`pipelines.plan.Spool`, which keeps them on disk) and returned as that sequence."""
    records: list | Spool = [] if into is None else into
    rejects = []
    for item in _records(source, ctx):
        checked = item if isinstance(item, Reject) else check_record(item, ctx, source.name)
        (rejects if isinstance(checked, Reject) else records).append(checked)
    try:
        vocab = clean_value(source.vocabulary(records, ctx))
    except Exception as exc:
        raise BuildError(f"{source.name}: internal error while computing the dataset vocabulary: {describe(exc)}") from exc
    return records, vocab, rejects + list(vocab.rejects)


def derive_jobs(source: Source, ctx: BuildContext, records: Sequence[Record], vocab: Vocabulary,
                splits: set[str] | None) -> tuple[list[Job], list[Reject]]:
    """Records -> samples -> jobs ordered by key, in memory (:func:`pipelines.plan.derive_plan`, read back whole: for
    tests and benches; the build keeps its plan on disk); a second sample with the same key is a ``duplicate``
    reject, a record without samples a ``no_sample`` one, an exception of the source an ``internal_error``."""
    with tempfile.TemporaryDirectory(prefix="radfm-plan-") as folder:
        plan = derive_plan(source, ctx, records, vocab, splits, folder)
        try:
            return list(plan.jobs()), plan.rejects
        finally:
            plan.close()


def plan_jobs(source: Source, ctx: BuildContext, splits: set[str] | None) -> tuple[list[Job], list[Reject]]:
    """Records -> samples -> jobs, with every record or sample that fell out as a reject."""
    records, vocab, rejects = read_dataset(source, ctx)
    jobs, duplicates = derive_jobs(source, ctx, records, vocab, splits)
    return jobs, rejects + duplicates


Listing = dict[str, int]  # {location: size} of an object-store prefix, listed once per build


def read_stats(tar: Path | str, listed: Listing | None = None) -> dict[str, Any] | None:
    """A shard's completion marker, if it exists, parses and matches the tar's size. On object storage the
    existence and sizes come from the build's one listing (``listed``)."""
    marker = stats_path(tar)
    if listed is None:
        tar, marker = Path(tar), Path(marker)
        if not (marker.is_file() and tar.is_file()):
            return None
        size = tar.stat().st_size
    else:
        if str(marker) not in listed or str(tar) not in listed:
            return None
        size = listed[str(tar)]
    try:
        stats = read_json(marker) if listed is None else json.loads(storage.read_bytes(marker))
    except (OSError, ValueError):
        return None
    if not isinstance(stats, dict) or stats.get("bytes") != size:
        return None
    return stats


def is_complete(plan: ShardPlan | PlannedShard, listed: Listing | None = None) -> dict[str, Any] | None:
    """The stats of a finished shard built from exactly this plan, else None."""
    stats = read_stats(plan.tar_path, listed)
    return stats if stats is not None and stats.get("fingerprint") == plan.fingerprint else None


def _shard_files(out: Path | str, dataset: str, splits: set[str] | None, listed: Listing | None = None) -> list[Path | str]:
    """This dataset's shard files (tars, indexes, markers) in the given splits' folders (None: all)."""
    if listed is None:
        found = [(path, path.parent.parent.name, path.parent.name) for path in (Path(out) / dataset).glob("*/*/*")]
    else:
        base = storage.join(out, dataset)
        found = [(loc, *parts[:2]) for loc in listed
                 if len(parts := storage.relative(loc, base).split("/")) == 3]
    files = []
    for path, stream, split in sorted(found, key=lambda f: str(f[0])):
        name = storage.name(path)
        if stream in STREAMS and (splits is None or split in splits) and name.startswith(f"{dataset}-") \
                and name.endswith((".tar", INDEX_SUFFIX, INDEX_BIN_SUFFIX, STATS_SUFFIX)):
            files.append(path)
    return files


def remove_stale(out: Path | str, dataset: str, plans: Sequence[ShardPlan | PlannedShard], splits: set[str] | None = None,
                 listed: Listing | None = None) -> list[str]:
    """Delete shard files of this dataset, in the splits being built (None: all), that the plan does not contain.
    Other splits' files are never touched."""
    wanted = {storage.name(p.tar_path)[: -len(".tar")] for p in plans}
    removed = []
    for path in _shard_files(out, dataset, splits, listed):
        name = storage.name(path)
        stem = name[: -len(next(s for s in (".tar", INDEX_SUFFIX, INDEX_BIN_SUFFIX, STATS_SUFFIX) if name.endswith(s)))]
        if stem not in wanted:
            storage.delete(path)
            removed.append(storage.relative(path, out))
    return removed


def kept_shards(out: Path | str, dataset: str, building: set[str], tokenizer: str,
                listed: Listing | None = None) -> dict[str, dict[str, Any]]:
    """The finished shards of the splits a ``--split`` build leaves alone (tar path -> stats), which stay in the
    manifest as they are. Raises :class:`BuildError` when they cannot share a manifest with this build."""
    kept = {}
    for marker in _shard_files(out, dataset, None, listed):
        if not storage.name(marker).endswith(STATS_SUFFIX) or storage.name(storage.parent(marker)) in building:
            continue
        tar = str(marker)[: -len(STATS_SUFFIX)] + ".tar"
        tar = tar if listed is not None else Path(tar)
        stats = read_stats(tar, listed)
        if stats is None:
            log.warning(f"{tar}: no valid completion marker; left on disk but not listed in the manifest")
            continue
        if stats.get("spec_version") != SPEC_VERSION or stats.get("tokenizer") != tokenizer:
            raise BuildError(f"{storage.name(storage.parent(tar))} shards in {storage.join(out, dataset)} were built with spec "
                             f"{stats.get('spec_version')} / tokenizer {stats.get('tokenizer')}, this build uses spec "
                             f"{SPEC_VERSION} / tokenizer {tokenizer}: one manifest cannot hold both; build every "
                             "split (omit --split)")
        kept[str(tar)] = stats
    return kept


# ------------------------------------------------------------------------------------------------- stores
#: Entries of a store looked at when a dataset that reads it is built (the whole store is checked by building it).
STORE_PEEK = 1000


def find_stores(source: Source, raw: Path, given: Sequence[tuple[str, Path]]) -> tuple[tuple[str, Path], ...]:
    """The root of every store ``source`` reads: given with ``--store NAME=DIR``, else beside the raw root
    (``<raw>/../<store>``); each checked to exist and to hold files of its layout. Raises :class:`BuildError`."""
    given_roots = {name: Path(root) for name, root in given}
    unknown = sorted(set(given_roots) - set(source.stores))
    if unknown:
        raise BuildError(f"{source.name} reads no store named {', '.join(unknown)} (it reads: {', '.join(source.stores) or 'none'})")
    found = []
    for name in source.stores:
        store = get_source(name)
        root = given_roots.get(name, raw.parent / name).resolve()
        where = "given with --store" if name in given_roots else "beside the raw root"
        if not root.is_dir():
            raise BuildError(f"{source.name} reads its images from the {name} store ({store.description}); {root} "
                             f"({where}) is not a directory: pass --store {name}=DIR")
        check = store.check(root, limit=STORE_PEEK)
        if not check.usable:
            raise BuildError(f"{root} ({where}) does not look like the {name} store ({store.description}): none of its "
                             f"first {STORE_PEEK} entries follows the layout; pass --store {name}=DIR")
        found.append((name, root))
    return tuple(found)


def parse_stores(items: list[str] | None) -> tuple[tuple[str, Path], ...]:
    """``--store NAME=DIR`` values as (name, root) pairs."""
    out = []
    for item in items or []:
        name, sep, root = item.partition("=")
        if not sep or not name.strip() or not root.strip():
            raise ValueError(f"--store expects NAME=DIR, got {item!r}")
        out.append((name.strip(), Path(root.strip())))
    return tuple(out)


def describe_store(store: Store, raw: Path) -> dict[str, Any]:
    """``make shards DATASET=<store>``: what the store is, which datasets read it, and a check of its layout (no
    shards: a store has no samples of its own). Raises :class:`BuildError` when nothing follows the layout."""
    users = users_of(store.name)
    log.info(f"{store.name} is a store, not a dataset with samples: {store.description}. Read by: {', '.join(users)}; "
             f"build those (they find the store beside their raw roots, as {raw}, or with --store {store.name}=DIR).")
    check = store.check(raw)
    for line in check.lines():
        log.info(line)
    if not check.usable:
        raise BuildError(f"{raw}: no file follows the {store.name} layout ({store.description})")
    return {"dataset": store.name, "store": True, "description": store.description, "used_by": users,
            "root": str(raw), "files": check.files, "strays": check.strays}


def make_context(source: Source, raw: Path, mode: str | None = None, radfm_dir: Path | None = None,
                 path_maps: Sequence[tuple[str, str]] = (), stores: Sequence[tuple[str, Path]] = (),
                 config: BuildConfig | None = None, *, follow_symlinks_outside: bool = False) -> BuildContext:
    """What ``source`` is given for a build of ``raw`` (its stores found and checked, :func:`find_stores`)."""
    cfg = config or BuildConfig()
    raw = Path(raw).resolve()
    radfm = Path(radfm_dir).resolve() if radfm_dir else raw / "radfm"
    resolver = PathResolver(raw, list(path_maps), follow_symlinks_outside=follow_symlinks_outside)
    return BuildContext(raw, mode or source.default_mode, radfm, resolver, cfg.seed, cfg.image, cfg.text,
                        find_stores(source, raw, stores))


# ------------------------------------------------------------------------------------------------- outputs
def write_outputs(out: Path | str, dataset: str, stats: dict[str, dict], plan_rejects: list[Reject],
                  params: dict[str, Any], tokenizer: dict[str, Any]) -> Manifest:
    """``rejects.jsonl`` and ``manifest.json`` from every shard's stats (tar path -> stats; failed shards add their
    rejects only) and the planning rejects."""
    rejects = [r.to_dict() for r in plan_rejects]
    shards = []
    per_task, per_split, per_stream = Counter(), Counter(), Counter()
    for tar_path, s in sorted(stats.items()):
        rejects.extend(s["rejects"])
        if s.get("failed"):
            continue
        shards.append(ManifestShard(
            path=storage.relative(tar_path, storage.join(out, dataset)), split=s["split"], stream=s["stream"],
            samples=s["samples"], bytes=s["bytes"], sha256=s["sha256"], tasks=s["tasks"]))
        for task, n in s["tasks"].items():
            per_task[f"{s['stream']}/{s['split']}/{task}"] += n
        per_split[s["split"]] += s["samples"]
        per_stream[s["stream"]] += s["samples"]
    rejects.sort(key=lambda r: tuple(r[k] for k in ("stage", "source_id", "task", "reason", "file", "message")))
    storage.write_bytes(rejects_path(out, dataset), "".join(json.dumps(r, sort_keys=True) + "\n" for r in rejects).encode())
    manifest = Manifest(
        spec_version=SPEC_VERSION,
        dataset=dataset,
        tokenizer=tokenizer,
        build=params,
        samples=sum(per_stream.values()),
        counts={"task": dict(sorted(per_task.items())), "split": dict(sorted(per_split.items())),
                "stream": dict(sorted(per_stream.items()))},
        rejects=RejectSummary(len(rejects), dict(sorted(Counter(r["reason"] for r in rejects).items())),
                              storage.name(rejects_path(out, dataset))),
        shards=tuple(shards),
    )
    storage.write_bytes(manifest_path(out, dataset), json_bytes(manifest.to_dict()))  # last: the build is published
    return manifest


def _verdict(manifest: Manifest, out: Path | str, dataset: str, max_fraction: float) -> str | None:
    """Why a written build failed (``internal_error`` rejects, or too large a share of rejects), or None."""
    reasons = manifest.rejects.by_reason
    total = manifest.rejects.total
    problems = []
    internal = reasons.get("internal_error", 0)
    if internal:
        first = next(json.loads(line) for line in storage.read_bytes(rejects_path(out, dataset)).decode().splitlines()
                     if '"internal_error"' in line)
        problems.append(f"{internal} internal error(s), bugs of this project rather than bad inputs (first: "
                        f"{first['source_id'] or first['file']}: {first['message']})")
    seen = manifest.samples + total
    if seen and total / seen > max_fraction:
        top = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:4])
        problems.append(f"{total} of {seen} inputs rejected ({total / seen:.0%}, more than --max-reject-fraction "
                        f"{max_fraction:g}): {top}")
    if not problems:
        return None
    return f"{dataset}: " + "; ".join(problems) + f"; every reject is in {rejects_path(out, dataset)}"


# ------------------------------------------------------------------------------------------------- the build
def _check_raw(raw: Path) -> None:
    if not raw.is_dir():
        raise BuildError(f"raw root {raw} is not a directory")
    if not any(not p.name.startswith(".") for p in raw.iterdir()):
        raise BuildError(f"raw root {raw} is empty: put the dataset's files there (layouts: README, 'Sources'), "
                         "or write the demo tree with `python -m pipelines.demo --out data/raw`")


def _output_dir(out: Path, dataset: str) -> Path:
    """``<out>/<dataset>``, created; a file in the way is one clear error."""
    target = out / dataset
    for path in (out, target):
        if path.exists() and not path.is_dir():
            raise BuildError(f"output path {path} is a file, not a directory: pass --out a directory")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BuildError(f"cannot create the output directory {target}: {exc.strerror or exc}") from None
    return target


def _remote_listing(out: str, dataset: str) -> Listing:
    """Every object under ``<out>/<dataset>/`` (one listing: what an incremental rerun compares against)."""
    try:
        return storage.listing(storage.join(out, dataset))
    except OSError as exc:
        raise BuildError(f"cannot list the output {storage.join(out, dataset)}: {exc} (check the bucket name, "
                         "credentials and AWS_ENDPOINT_URL / the store's environment)") from None


def _nothing_to_build(source: Source, ctx: BuildContext, rejects: list[Reject]) -> BuildError:
    """The one-line error for a dataset that gave no record: which files are missing or broken, what to try."""
    files = [r for r in rejects if isinstance(r, FileReject)]
    where = f"{source.name} ({ctx.mode} mode)"
    if files:
        problems = "; ".join(r.message for r in files[:4]) + (f"; and {len(files) - 4} more" if len(files) > 4 else "")
        hints = []
        if ctx.mode == "radfm":
            hints.append(f"pass --radfm-dir DIR if RadFM's files are elsewhere (looked in {ctx.radfm_dir})")
        hints += [f"build from the dataset's own files with --mode {m}" if m == "native" else f"try --mode {m}"
                  for m in source.modes if m != ctx.mode]
        return BuildError(f"{where}: nothing to build: {problems}" + (f"; {' or '.join(hints)}" if hints else ""))
    if rejects:
        reasons = Counter(r.reason for r in rejects)
        return BuildError(f"{where}: nothing to build: all {len(rejects)} inputs rejected "
                          f"({', '.join(f'{k} {v}' for k, v in reasons.most_common())}), first: {rejects[0].message}")
    return BuildError(f"{where}: nothing to build: the input files hold no data rows")


def build(request: BuildRequest) -> dict[str, Any]:
    """Build (or bring up to date) the shards of ``request.dataset`` and return its manifest (SPEC §5).

    Raises :class:`BuildError` when the request cannot be built at all (unknown mode, no raw root, none of the
    dataset's files), and :class:`BuildFailed` *after* writing every shard, ``rejects.jsonl`` and the manifest when
    a sample hit a bug of ours (``internal_error``) or too large a share of the inputs was rejected."""
    try:
        source = get_source(request.dataset)
    except KeyError as exc:
        raise BuildError(str(exc.args[0])) from None
    mode = request.mode or source.default_mode
    if mode not in source.modes:
        raise BuildError(f"{request.dataset}: mode {mode!r} not supported (modes: {', '.join(source.modes)})")
    if request.channels not in CHANNELS:
        raise BuildError(f"--channels must be one of {', '.join(CHANNELS)}, not {request.channels!r}")
    if request.input_identity not in INPUT_IDENTITIES:
        raise BuildError(f"--input-identity must be one of {', '.join(INPUT_IDENTITIES)}, not {request.input_identity!r}")
    max_fraction = source.max_reject_fraction if request.max_reject_fraction is None else request.max_reject_fraction
    if not 0 <= max_fraction <= 1:
        raise BuildError(f"--max-reject-fraction must be between 0 and 1, not {max_fraction}")
    raw = Path(request.raw).resolve()
    remote = storage.is_remote(request.out)
    out = str(request.out).rstrip("/") if remote else Path(request.out).resolve()
    _check_raw(raw)
    if isinstance(source, Store):
        return describe_store(source, raw)
    if not remote:
        _output_dir(out, request.dataset)
    cfg = request.config
    ctx = make_context(source, raw, mode, request.radfm_dir, request.path_maps, request.stores, cfg,
                       follow_symlinks_outside=request.follow_symlinks_outside)
    try:
        folder = Path(tempfile.mkdtemp(prefix=f"radfm-plan-{request.dataset}-", dir=request.plan_dir))
    except OSError as exc:
        raise BuildError(f"cannot create the plan folder in {request.plan_dir or tempfile.gettempdir()}: "
                         f"{exc.strerror or exc}; pass --plan-dir DIR (a local disk with room for the plan)") from None
    records = Spool(folder / "records.spool")
    plan = None
    try:
        started = time.perf_counter()
        records, vocab, plan_rejects = read_dataset(source, ctx, into=records)
        if not records:
            raise _nothing_to_build(source, ctx, plan_rejects)
        building = set(request.splits) if request.splits else None
        plan = derive_plan(source, ctx, records, vocab, building, folder)
        plan_rejects += plan.rejects
        return _build_plan(request, source, ctx, plan, vocab, plan_rejects, raw, out, remote, mode, max_fraction,
                           building, started)
    finally:
        (plan or records).close()
        shutil.rmtree(folder, ignore_errors=True)


def _build_plan(request: BuildRequest, source: Source, ctx: BuildContext, plan: Plan, vocab: Vocabulary,
                plan_rejects: list[Reject], raw: Path, out: Path | str, remote: bool, mode: str, max_fraction: float,
                building: set[str] | None, started: float) -> dict[str, Any]:
    """:func:`build` once the plan is made: fingerprints, what is already built, the shard tasks, the outputs."""
    cfg = request.config

    try:
        tokenizer = load_tokenizer(request.tokenizer, cfg.image.max_images)
        label_terms = source.label_terms(vocab)
        matcher = make_matcher(request.keywords, label_terms)
    except (TokenizerError, ValueError, ImportError, OSError) as exc:
        raise BuildError(str(exc)) from None
    # what shapes the samples' bytes (the fingerprint's environment) ...
    shaping = {"mode": mode, "config": cfg.to_dict(), "keywords": matcher.description, "tokenizer_name": tokenizer.name,
               "channels": request.channels, "follow_symlinks_outside": request.follow_symlinks_outside}
    environment = json.dumps({"spec": SPEC_VERSION, "tokenizer": tokenizer.fingerprint, "code": code_version(), **shaping},
                             sort_keys=True, default=str)
    env_digest = "sha256:" + hashlib.sha256(environment.encode()).hexdigest()[:16]
    # ... and what the manifest records besides
    params = {**shaping, "splits": sorted(building) if building else "all", "code_version": code_version(),
              "input_identity": request.input_identity, "max_reject_fraction": max_fraction}
    env = WorkerEnv(str(raw), cfg, tokenizer.name, request.keywords, label_terms, request.channels,
                    request.follow_symlinks_outside, env_digest, tuple((name, str(root)) for name, root in ctx.stores))
    plans = plan_shards(plan, out, request.dataset, cfg.shard.samples_per_shard_2d, cfg.shard.samples_per_shard_3d,
                        environment, raw, request.input_identity, dict(ctx.stores))
    listed = _remote_listing(out, request.dataset) if remote else None
    stats: dict[str, dict] = kept_shards(out, request.dataset, building, tokenizer.fingerprint, listed) if building else {}
    if any(s.get("environment") != env_digest for s in stats.values()):
        log.warning(f"{request.dataset}: shards of the splits not being built were made with other build parameters; "
                    "the manifest's 'build' describes this build")
    removed = remove_stale(out, request.dataset, plans, building, listed)

    todo = []
    for shard in plans:
        done_stats = is_complete(shard, listed)
        if done_stats is None:
            todo.append(shard)
        else:
            stats[shard.tar_path] = done_stats
    log.info(f"{request.dataset} ({mode}): {len(plan)} samples planned in {len(plans)} shards, "
             f"{len(plans) - len(todo)} already complete, {len(todo)} to build; {len(plan_rejects)} rejected while planning"
             + (f"; removed {len(removed)} stale files" if removed else ""))

    bar = tqdm(total=sum(p.size for p in todo), unit="sample", desc=f"build {request.dataset}", dynamic_ncols=True,
               disable=not request.progress or not todo)
    n_rejected = 0

    def done(task: ShardPlan, shard_stats: dict[str, Any]) -> None:
        nonlocal n_rejected
        stats[task.tar_path] = shard_stats
        n_rejected += len(shard_stats["rejects"])
        bar.update(len(task.jobs))
        bar.set_postfix(shards=f"{len(stats)}/{len(plans)}", rejects=n_rejected)

    if todo:
        tasks = (plan.materialise(p) for p in todo)  # each shard's jobs read back from the spools as it is submitted
        if request.executor == "ray":
            run_ray(tasks, env, done, request.workers)
        else:
            run_serial(tasks, env, done)
    bar.close()
    manifest = write_outputs(out, request.dataset, stats, plan_rejects, params, tokenizer.identity.to_dict())
    elapsed = time.perf_counter() - started
    built = sum(p.size for p in todo)
    log.info(f"{request.dataset}: {manifest.samples} samples in {len(manifest.shards)} shards "
             f"({', '.join(f'{k}={v}' for k, v in manifest.counts['stream'].items()) or 'none'}); "
             f"rejects {manifest.rejects.total} {manifest.rejects.by_reason}; "
             f"built {len(todo)} shards in {elapsed:.1f}s" + (f" ({built / elapsed:.1f} samples/s)" if built else ""))
    log.info(f"manifest: {manifest_path(out, request.dataset)}")
    verdict = _verdict(manifest, out, request.dataset, max_fraction)
    if verdict:
        raise BuildFailed(verdict, manifest.to_dict())
    return manifest.to_dict()


# ------------------------------------------------------------------------------------------------- command line
def request_from_args(args: argparse.Namespace) -> BuildRequest:
    config = BuildConfig(
        image=ImageConfig(max_images=args.max_images),
        text=TextConfig(max_length=args.max_length),
        shard=ShardConfig(samples_per_shard_2d=args.samples_per_shard_2d, samples_per_shard_3d=args.samples_per_shard_3d,
                          zstd_level=args.zstd_level),
        seed=args.seed,
    )
    return BuildRequest(
        dataset=args.dataset, raw=Path(args.raw), out=args.out if storage.is_remote(args.out) else Path(args.out), mode=args.mode,
        radfm_dir=Path(args.radfm_dir) if args.radfm_dir else None, path_maps=tuple(parse_path_maps(args.path_map)),
        stores=parse_stores(args.store),
        splits=tuple(args.split) if args.split else None, tokenizer=args.tokenizer, keywords=args.keywords,
        config=config, executor=args.executor, workers=args.workers, progress=not args.quiet, channels=args.channels,
        follow_symlinks_outside=args.follow_symlinks_outside, input_identity=args.input_identity,
        max_reject_fraction=args.max_reject_fraction, plan_dir=Path(args.plan_dir) if args.plan_dir else None,
    )


class _RequestParser(argparse.ArgumentParser):
    """The command line as one way of writing a :class:`BuildRequest`: ``parse_args`` returns the request."""

    def parse_args(self, args=None, namespace=None) -> BuildRequest:  # type: ignore[override]
        parsed = super().parse_args(args, namespace)
        try:
            return request_from_args(parsed)
        except ValueError as exc:  # e.g. a --path-map without "="
            self.error(str(exc))


def parser() -> argparse.ArgumentParser:
    d = BuildConfig()
    p = _RequestParser(prog="python -m pipelines.build", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, choices=sorted(REGISTRY))
    p.add_argument("--raw", required=True, help="the dataset's raw root (native layout)")
    p.add_argument("--out", required=True, help="output root, a folder or an object-store URL (s3://bucket/prefix, gs://…, "
                   "any fsspec URL); shards go to <out>/<dataset>/<stream>/<split>/")
    p.add_argument("--mode", help="radfm (RadFM split files) or native (the dataset's own label/split files)")
    p.add_argument("--radfm-dir", "--radfm-csv", dest="radfm_dir",
                   help="directory of RadFM's split files, CSV and JSON (default: <raw>/radfm)")
    p.add_argument("--path-map", action="append", metavar="OLD=NEW", help="map a path prefix of RadFM's files onto the raw root")
    p.add_argument("--store", action="append", metavar="NAME=DIR",
                   help="where a store the dataset reads is (PMC-Figures: --store pmc_figures=DIR; default: beside --raw)")
    p.add_argument("--split", action="append", help="build only these splits (repeatable)")
    p.add_argument("--tokenizer", default=DEFAULT_TOKENIZER, help="LLaMA-style SentencePiece tokenizer: a folder with tokenizer.model (e.g. RadFM's Language_files) "
                   "or the file (default: mistral-common's 32k LLaMA-style model)")
    p.add_argument("--keywords", default="lexicon", help="lexicon | lexicon+spacy:MODEL | none")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--max-length", type=int, default=d.text.max_length)
    p.add_argument("--max-images", type=int, default=d.image.max_images)
    p.add_argument("--samples-per-shard-2d", type=int, default=d.shard.samples_per_shard_2d)
    p.add_argument("--samples-per-shard-3d", type=int, default=d.shard.samples_per_shard_3d)
    p.add_argument("--zstd-level", type=int, default=d.shard.zstd_level,
                   help="zstd level of the image member (default %(default)s); 0 writes it uncompressed as vision.npy "
                        "(SPEC §3: read in place, fastest for CPU-bound 2D loaders, about the raw size on disk)")
    p.add_argument("--channels", choices=CHANNELS, default="auto",
                   help="auto: colour kept where the planes differ, grey otherwise (default); grey; rgb")
    p.add_argument("--follow-symlinks-outside", action="store_true",
                   help="read through symbolic links that lead outside the raw root (refused by default: outside_root)")
    p.add_argument("--input-identity", choices=INPUT_IDENTITIES, default="stat",
                   help="how a rebuild sees changed input files: stat (size + mtime, default) or content (a hash)")
    p.add_argument("--max-reject-fraction", type=float, metavar="F",
                   help="fail (after writing everything) when more than this share of the inputs is rejected "
                        "(default: the dataset's, 0.25 unless it declares another)")
    p.add_argument("--plan-dir", metavar="DIR", help="local folder for the plan's spool files while the build runs "
                   "(about the pickled size of the dataset's records; default: the system's temporary directory)")
    p.add_argument("--executor", choices=("ray", "serial"), default="ray")
    p.add_argument("--workers", type=int, help="local Ray CPUs (default: all); with RAY_ADDRESS, at most this many shard "
                   "tasks at once on the cluster")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[build] %(message)s"))
    logging.getLogger("pipelines").addHandler(handler)
    logging.getLogger("pipelines").setLevel(logging.INFO)
    try:
        build(parser().parse_args(argv))
    except BuildFailed as exc:
        print(f"error: build failed: {exc}", file=sys.stderr)
        return 1
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
