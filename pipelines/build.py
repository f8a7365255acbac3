"""Build WebDataset shards for one source dataset.

    python -m pipelines.build --dataset mimic --raw DIR --out DIR [--mode radfm|native]
        [--radfm-dir DIR] [--split train ...] [--executor ray|serial] [--workers N]

As a library: ``build(BuildRequest(dataset="mimic", raw=..., out=...))`` returns the manifest.

Steps: read the source's files into records (rejects for bad rows and unresolvable paths) -> the dataset-wide
vocabulary -> samples from the source's tasks -> group by (split, stream), order by key and cut into shards ->
build every shard whose completion marker is missing or stale (one Ray task each) -> write ``rejects.jsonl`` and
``manifest.json``.

A rerun builds nothing when nothing changed; an interrupted build resumes where it
stopped; the same inputs and seed give byte-identical tars.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from tqdm import tqdm

from pipelines.config import BuildConfig, ImageConfig, ShardConfig, TextConfig
from pipelines.distributor import run_ray, run_serial
from pipelines.keywords import make_matcher
from pipelines.paths import PathResolver, parse_path_maps
from pipelines.records import Job, Record, Reject
from pipelines.sources import REGISTRY, BuildContext, Source, Store, Vocabulary, get_source, users_of
from pipelines.text import DEFAULT_TOKENIZER, TokenizerError, load_tokenizer
from pipelines.worker import ShardPlan, WorkerEnv
from shards_spec.hashing import sample_key
from shards_spec.jsonio import read_json, write_json
from shards_spec.layout import (
    INDEX_SUFFIX,
    SPEC_VERSION,
    STATS_SUFFIX,
    manifest_path,
    rejects_path,
    shard_path,
    stats_path,
)
from shards_spec.schema import Manifest, ManifestShard, RejectSummary
from shards_spec.tario import atomic_write_bytes

log = logging.getLogger("pipelines.build")  # not __name__: that is "__main__" under python -m


class BuildError(RuntimeError):
    """A request that cannot be built at all; the message says why in one line."""


@dataclass(frozen=True)
class BuildRequest:
    """One build: which dataset, where its files are, where the shards go, and how to build them."""

    dataset: str  # a registry id (pipelines.sources.REGISTRY)
    raw: Path  # the dataset's raw root
    out: Path  # output root; shards go to <out>/<dataset>/<stream>/<split>/
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


# ------------------------------------------------------------------------------------------------- planning
def read_dataset(source: Source, ctx: BuildContext) -> tuple[list[Record], Vocabulary, list[Reject]]:
    """The dataset-wide pass: every record and reject of the source, then its vocabulary over all records."""
    records, rejects = [], []
    for item in source.records(ctx):
        (rejects if isinstance(item, Reject) else records).append(item)
    vocab = source.vocabulary(records, ctx)
    return records, vocab, rejects + list(vocab.rejects)


def derive_jobs(source: Source, ctx: BuildContext, records: Sequence[Record], vocab: Vocabulary,
                splits: set[str] | None) -> tuple[list[Job], list[Reject]]:
    """Records -> samples -> jobs ordered by key; a second sample with the same key is a ``duplicate`` reject."""
    jobs: dict[str, Job] = {}
    rejects = []
    for record in records:
        for spec in source.samples(record, vocab, ctx):
            key = sample_key(record.dataset, record.source_id, spec.task, spec.variant)
            if key in jobs:
                rejects.append(Reject(record.dataset, record.source_id, record.images[0].path if record.images else "",
                                      "duplicate", f"same source and task as an earlier row ({key})", "plan", spec.task))
                continue
            jobs[key] = Job(key, record, spec)
    selected = [j for j in jobs.values() if splits is None or j.record.split in splits]
    return sorted(selected, key=lambda j: j.key), rejects


def plan_jobs(source: Source, ctx: BuildContext, splits: set[str] | None) -> tuple[list[Job], list[Reject]]:
    """Records -> samples -> jobs, with every record or sample that fell out as a reject."""
    records, vocab, rejects = read_dataset(source, ctx)
    jobs, duplicates = derive_jobs(source, ctx, records, vocab, splits)
    return jobs, rejects + duplicates


def plan_shards(jobs: list[Job], out: Path, dataset: str, cfg: BuildConfig, env_fingerprint: str) -> list[ShardPlan]:
    groups: dict[tuple[str, str], list[Job]] = defaultdict(list)
    for job in jobs:
        groups[(job.record.split, job.record.stream)].append(job)
    plans = []
    for (split, stream), group in sorted(groups.items()):
        per_shard = cfg.shard.samples_per_shard_2d if stream == "2d" else cfg.shard.samples_per_shard_3d
        for index, start in enumerate(range(0, len(group), per_shard)):
            chunk = tuple(group[start : start + per_shard])
            digest = hashlib.sha256(env_fingerprint.encode())
            for job in chunk:
                digest.update(json.dumps(asdict(job), sort_keys=True, default=str).encode())
            path = shard_path(out, dataset, stream, split, index)
            plans.append(ShardPlan(dataset, split, stream, index, str(path), digest.hexdigest(), chunk))
    return plans


def is_complete(plan: ShardPlan) -> dict[str, Any] | None:
    """The stats of a finished shard built from exactly this plan, else None."""
    marker = stats_path(plan.tar_path)
    tar = Path(plan.tar_path)
    if not (marker.exists() and tar.exists()):
        return None
    try:
        stats = read_json(marker)
    except (OSError, json.JSONDecodeError):
        return None
    if stats.get("fingerprint") != plan.fingerprint or stats.get("bytes") != tar.stat().st_size:
        return None
    return stats


def remove_stale(out: Path, dataset: str, plans: list[ShardPlan]) -> list[str]:
    """Delete shard files of this dataset that the current plan no longer contains."""
    wanted = {Path(p.tar_path).name[: -len(".tar")] for p in plans}
    removed = []
    root = out / dataset
    for path in sorted(root.glob("*/*/*")):
        name = path.name
        for suffix in (".tar", INDEX_SUFFIX, STATS_SUFFIX):
            if name.endswith(suffix) and name[: -len(suffix)] not in wanted and name.startswith(f"{dataset}-"):
                path.unlink()
                removed.append(str(path.relative_to(out)))
    return removed


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
                 config: BuildConfig | None = None) -> BuildContext:
    """What ``source`` is given for a build of ``raw`` (its stores found and checked, :func:`find_stores`)."""
    cfg = config or BuildConfig()
    raw = Path(raw).resolve()
    radfm = Path(radfm_dir).resolve() if radfm_dir else raw / "radfm"
    return BuildContext(raw, mode or source.default_mode, radfm, PathResolver(raw, list(path_maps)), cfg.seed, cfg.image,
                        find_stores(source, raw, stores))


# ------------------------------------------------------------------------------------------------- outputs
def write_outputs(out: Path, dataset: str, plans: list[ShardPlan], stats: dict[str, dict], plan_rejects: list[Reject],
                  params: dict[str, Any], tokenizer: dict[str, Any]) -> Manifest:
    rejects = [r.to_dict() for r in plan_rejects]
    shards = []
    per_task, per_split, per_stream = Counter(), Counter(), Counter()
    for plan in plans:
        s = stats[plan.tar_path]
        rejects.extend(s["rejects"])
        shards.append(ManifestShard(
            path=str(Path(plan.tar_path).relative_to(out / dataset)), split=plan.split, stream=plan.stream,
            samples=s["samples"], bytes=s["bytes"], sha256=s["sha256"], tasks=s["tasks"]))
        for task, n in s["tasks"].items():
            per_task[f"{plan.stream}/{plan.split}/{task}"] += n
        per_split[plan.split] += s["samples"]
        per_stream[plan.stream] += s["samples"]
    rejects.sort(key=lambda r: (r["stage"], r["source_id"], r["task"], r["reason"]))
    atomic_write_bytes(rejects_path(out, dataset), "".join(json.dumps(r, sort_keys=True) + "\n" for r in rejects).encode())
    manifest = Manifest(
        spec_version=SPEC_VERSION,
        dataset=dataset,
        tokenizer=tokenizer,
        build=params,
        samples=sum(per_stream.values()),
        counts={"task": dict(sorted(per_task.items())), "split": dict(sorted(per_split.items())),
                "stream": dict(sorted(per_stream.items()))},
        rejects=RejectSummary(len(rejects), dict(sorted(Counter(r["reason"] for r in rejects).items())),
                              rejects_path(out, dataset).name),
        shards=tuple(shards),
    )
    write_json(manifest_path(out, dataset), manifest.to_dict())
    return manifest


# ------------------------------------------------------------------------------------------------- the build
def build(request: BuildRequest) -> dict[str, Any]:
    """Build (or bring up to date) the shards of ``request.dataset`` and return its manifest (SPEC §5).

    Raises :class:`BuildError` when the request cannot be built at all (unknown mode, no raw root)."""
    source = get_source(request.dataset)
    mode = request.mode or source.default_mode
    if mode not in source.modes:
        raise BuildError(f"{request.dataset}: mode {mode!r} not supported (modes: {', '.join(source.modes)})")
    raw, out = Path(request.raw).resolve(), Path(request.out).resolve()
    if not raw.is_dir():
        raise BuildError(f"raw root {raw} is not a directory")
    if isinstance(source, Store):
        return describe_store(source, raw)
    cfg = request.config
    ctx = make_context(source, raw, mode, request.radfm_dir, request.path_maps, request.stores, cfg)
    stores = ctx.stores
    started = time.perf_counter()
    records, vocab, plan_rejects = read_dataset(source, ctx)
    jobs, duplicates = derive_jobs(source, ctx, records, vocab, set(request.splits) if request.splits else None)
    plan_rejects += duplicates

    try:
        tokenizer = load_tokenizer(request.tokenizer, cfg.image.max_images)
    except TokenizerError as exc:
        raise BuildError(str(exc)) from None
    label_terms = source.label_terms(vocab)
    matcher = make_matcher(request.keywords, label_terms)
    env = WorkerEnv(str(raw), cfg, tokenizer.name, request.keywords, label_terms,
                    stores=tuple((name, str(root)) for name, root in stores))
    params = {"mode": mode, "splits": sorted(request.splits) if request.splits else "all", "config": cfg.to_dict(),
              "keywords": matcher.description, "tokenizer_name": tokenizer.name}
    env_fp = json.dumps({"spec": SPEC_VERSION, "tokenizer": tokenizer.fingerprint, **params}, sort_keys=True, default=str)
    plans = plan_shards(jobs, out, request.dataset, cfg, env_fp)
    removed = remove_stale(out, request.dataset, plans)

    stats: dict[str, dict] = {}
    todo = []
    for plan in plans:
        done_stats = is_complete(plan)
        if done_stats is None:
            todo.append(plan)
        else:
            stats[plan.tar_path] = done_stats
    log.info(f"{request.dataset} ({mode}): {len(jobs)} samples planned in {len(plans)} shards, "
             f"{len(plans) - len(todo)} already complete, {len(todo)} to build; {len(plan_rejects)} rejected while planning"
             + (f"; removed {len(removed)} stale files" if removed else ""))

    bar = tqdm(total=sum(len(p.jobs) for p in todo), unit="sample", desc=f"build {request.dataset}", dynamic_ncols=True,
               disable=not request.progress or not todo)
    n_rejected = 0

    def done(plan: ShardPlan, shard_stats: dict[str, Any]) -> None:
        nonlocal n_rejected
        stats[plan.tar_path] = shard_stats
        n_rejected += len(shard_stats["rejects"])
        bar.update(len(plan.jobs))
        bar.set_postfix(shards=f"{len(stats)}/{len(plans)}", rejects=n_rejected)

    if todo:
        if request.executor == "ray":
            run_ray(todo, env, done, request.workers)
        else:
            run_serial(todo, env, done)
    bar.close()
    manifest = write_outputs(out, request.dataset, plans, stats, plan_rejects, params, tokenizer.identity.to_dict())
    elapsed = time.perf_counter() - started
    built = sum(len(p.jobs) for p in todo)
    log.info(f"{request.dataset}: {manifest.samples} samples in {len(plans)} shards "
             f"({', '.join(f'{k}={v}' for k, v in manifest.counts['stream'].items()) or 'none'}); "
             f"rejects {manifest.rejects.total} {manifest.rejects.by_reason}; "
             f"built {len(todo)} shards in {elapsed:.1f}s" + (f" ({built / elapsed:.1f} samples/s)" if built else ""))
    log.info(f"manifest: {manifest_path(out, request.dataset)}")
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
        dataset=args.dataset, raw=Path(args.raw), out=Path(args.out), mode=args.mode,
        radfm_dir=Path(args.radfm_dir) if args.radfm_dir else None, path_maps=tuple(parse_path_maps(args.path_map)),
        stores=parse_stores(args.store),
        splits=tuple(args.split) if args.split else None, tokenizer=args.tokenizer, keywords=args.keywords,
        config=config, executor=args.executor, workers=args.workers, progress=not args.quiet,
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
    p.add_argument("--out", required=True, help="output root; shards go to <out>/<dataset>/<stream>/<split>/")
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
    p.add_argument("--zstd-level", type=int, default=d.shard.zstd_level)
    p.add_argument("--executor", choices=("ray", "serial"), default="ray")
    p.add_argument("--workers", type=int, help="local Ray CPUs (default: all)")
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
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
