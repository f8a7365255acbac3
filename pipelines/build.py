"""Build WebDataset shards for one source dataset.

    python -m pipelines.build --dataset mimic --raw DIR --out DIR [--mode radfm|native]
        [--radfm-csv DIR] [--split train ...] [--executor ray|serial] [--workers N]

Steps: read the source's files into records (rejects for bad rows and unresolvable
paths) -> derive samples with the source's tasks -> group by (split, stream), order by
key and cut into shards -> build every shard whose completion marker is missing or stale
(one Ray task each) -> write ``rejects.jsonl`` and ``manifest.json``.

A rerun builds nothing when nothing changed; an interrupted build resumes where it
stopped; the same inputs and seed give byte-identical tars.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tqdm import tqdm

from pipelines.config import BuildConfig, ImageConfig, ShardConfig, TextConfig
from pipelines.distributor import run_ray, run_serial
from pipelines.keywords import make_matcher
from pipelines.paths import PathResolver, parse_path_maps
from pipelines.records import Job, Reject, sample_key
from pipelines.sources import REGISTRY, BuildContext, get_source
from pipelines.text import DEFAULT_TOKENIZER, TokenizerError, load_tokenizer
from pipelines.worker import ShardPlan, WorkerEnv
from pipelines.writer import json_bytes
from shards_spec.layout import (
    INDEX_SUFFIX,
    SPEC_VERSION,
    STATS_SUFFIX,
    manifest_path,
    rejects_path,
    shard_path,
    stats_path,
)
from shards_spec.tario import atomic_write_bytes


def plan_jobs(source, ctx: BuildContext, splits: set[str] | None) -> tuple[list[Job], list[Reject]]:
    """Records -> samples -> jobs, with every record or sample that fell out as a reject."""
    records, rejects = [], []
    for item in source.records(ctx):
        (rejects if isinstance(item, Reject) else records).append(item)
    # samples() runs after records() is exhausted: tasks may use dataset-wide sets
    # (e.g. all modality names) that the reader collects.
    jobs: dict[str, Job] = {}
    for record in records:
        for spec in source.samples(record, ctx):
            key = sample_key(record.dataset, record.source_id, spec.task, spec.variant)
            if key in jobs:
                rejects.append(Reject(record.dataset, record.source_id, record.images[0].path if record.images else "",
                                      "duplicate", f"same source and task as an earlier row ({key})", "plan", spec.task))
                continue
            jobs[key] = Job(key, record, spec)
    selected = [j for j in jobs.values() if splits is None or j.record.split in splits]
    return sorted(selected, key=lambda j: j.key), rejects


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
        stats = json.loads(marker.read_text("utf-8"))
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


def write_outputs(out: Path, dataset: str, plans: list[ShardPlan], stats: dict[str, dict], plan_rejects: list[Reject],
                  params: dict[str, Any], tokenizer: dict[str, Any]) -> dict[str, Any]:
    rejects = [r.to_dict() for r in plan_rejects]
    shards = []
    per_task, per_split, per_stream = Counter(), Counter(), Counter()
    for plan in plans:
        s = stats[plan.tar_path]
        rejects.extend(s["rejects"])
        shards.append({
            "path": str(Path(plan.tar_path).relative_to(out / dataset)),
            "split": plan.split, "stream": plan.stream, "samples": s["samples"], "bytes": s["bytes"],
            "sha256": s["sha256"], "tasks": s["tasks"],
        })
        for task, n in s["tasks"].items():
            per_task[f"{plan.stream}/{plan.split}/{task}"] += n
        per_split[plan.split] += s["samples"]
        per_stream[plan.stream] += s["samples"]
    rejects.sort(key=lambda r: (r["stage"], r["source_id"], r["task"], r["reason"]))
    atomic_write_bytes(rejects_path(out, dataset), "".join(json.dumps(r, sort_keys=True) + "\n" for r in rejects).encode())
    manifest = {
        "spec_version": SPEC_VERSION,
        "dataset": dataset,
        "tokenizer": tokenizer,
        "build": params,
        "samples": sum(per_stream.values()),
        "counts": {"task": dict(sorted(per_task.items())), "split": dict(sorted(per_split.items())),
                   "stream": dict(sorted(per_stream.items()))},
        "rejects": {"total": len(rejects), "by_reason": dict(sorted(Counter(r["reason"] for r in rejects).items())),
                    "file": rejects_path(out, dataset).name},
        "shards": shards,
    }
    atomic_write_bytes(manifest_path(out, dataset), json_bytes(manifest))
    return manifest


def build(args: argparse.Namespace) -> dict[str, Any]:
    source = get_source(args.dataset)
    mode = args.mode or source.default_mode
    if mode not in source.modes:
        raise SystemExit(f"{args.dataset}: mode {mode!r} not supported (modes: {', '.join(source.modes)})")
    raw, out = Path(args.raw).resolve(), Path(args.out).resolve()
    if not raw.is_dir():
        raise SystemExit(f"raw root {raw} is not a directory")
    cfg = BuildConfig(
        image=ImageConfig(max_images=args.max_images),
        text=TextConfig(max_length=args.max_length),
        shard=ShardConfig(samples_per_shard_2d=args.samples_per_shard_2d, samples_per_shard_3d=args.samples_per_shard_3d,
                          zstd_level=args.zstd_level),
        seed=args.seed,
    )
    radfm_dir = Path(args.radfm_csv).resolve() if args.radfm_csv else raw / "radfm"
    ctx = BuildContext(raw, mode, radfm_dir, PathResolver(raw, parse_path_maps(args.path_map)), args.seed, cfg.image)
    started = time.perf_counter()
    jobs, plan_rejects = plan_jobs(source, ctx, set(args.split) if args.split else None)

    try:
        tokenizer = load_tokenizer(args.tokenizer, cfg.image.max_images)
    except TokenizerError as exc:
        raise SystemExit(f"error: {exc}") from None
    label_terms = source.label_terms(ctx)
    matcher = make_matcher(args.keywords, label_terms)
    env = WorkerEnv(str(raw), cfg, tokenizer.name, args.keywords, label_terms, delay_s=args.test_delay)
    params = {"mode": mode, "splits": sorted(args.split) if args.split else "all", "config": cfg.to_dict(),
              "keywords": matcher.description, "tokenizer_name": tokenizer.name}
    env_fp = json.dumps({"spec": SPEC_VERSION, "tokenizer": tokenizer.fingerprint, **params}, sort_keys=True, default=str)
    plans = plan_shards(jobs, out, args.dataset, cfg, env_fp)
    removed = remove_stale(out, args.dataset, plans)

    stats: dict[str, dict] = {}
    todo = []
    for plan in plans:
        done_stats = is_complete(plan)
        if done_stats is None:
            todo.append(plan)
        else:
            stats[plan.tar_path] = done_stats
    print(f"[build] {args.dataset} ({mode}): {len(jobs)} samples planned in {len(plans)} shards, "
          f"{len(plans) - len(todo)} already complete, {len(todo)} to build; {len(plan_rejects)} rejected while planning"
          + (f"; removed {len(removed)} stale files" if removed else ""), file=sys.stderr)

    bar = tqdm(total=sum(len(p.jobs) for p in todo), unit="sample", desc=f"build {args.dataset}", dynamic_ncols=True,
               disable=args.quiet or not todo)
    n_rejected = 0

    def done(plan: ShardPlan, shard_stats: dict[str, Any]) -> None:
        nonlocal n_rejected
        stats[plan.tar_path] = shard_stats
        n_rejected += len(shard_stats["rejects"])
        bar.update(len(plan.jobs))
        bar.set_postfix(shards=f"{len(stats)}/{len(plans)}", rejects=n_rejected)

    if todo:
        if args.executor == "ray":
            run_ray(todo, env, done, args.workers)
        else:
            run_serial(todo, env, done)
    bar.close()
    manifest = write_outputs(out, args.dataset, plans, stats, plan_rejects, params, tokenizer.identity.to_dict())
    elapsed = time.perf_counter() - started
    built = sum(len(p.jobs) for p in todo)
    print(f"[build] {args.dataset}: {manifest['samples']} samples in {len(plans)} shards "
          f"({', '.join(f'{k}={v}' for k, v in manifest['counts']['stream'].items()) or 'none'}); "
          f"rejects {manifest['rejects']['total']} {manifest['rejects']['by_reason']}; "
          f"built {len(todo)} shards in {elapsed:.1f}s" + (f" ({built / elapsed:.1f} samples/s)" if built else "") +
          f"\n[build] manifest: {manifest_path(out, args.dataset)}", file=sys.stderr)
    return manifest


def parser() -> argparse.ArgumentParser:
    d = BuildConfig()
    p = argparse.ArgumentParser(prog="python -m pipelines.build", description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", required=True, choices=sorted(REGISTRY))
    p.add_argument("--raw", required=True, help="the dataset's raw root (native layout)")
    p.add_argument("--out", required=True, help="output root; shards go to <out>/<dataset>/<stream>/<split>/")
    p.add_argument("--mode", help="radfm (RadFM split files) or native (the dataset's own label/split files)")
    p.add_argument("--radfm-csv", help="directory of RadFM's split files (default: <raw>/radfm)")
    p.add_argument("--path-map", action="append", metavar="OLD=NEW", help="map a path prefix of RadFM's files onto the raw root")
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
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--test-delay", type=float, default=0.0, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    build(parser().parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
