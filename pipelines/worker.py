"""Build one shard: preprocess each job's images, encode its text, write it.

This is the unit of work a Ray task (or the serial executor) runs. Each sample is isolated: whatever turning it
into bytes raises becomes a reject and the shard goes on. A bad input gets its specific reason (``undecodable``,
``outside_root``, ``too_long`` …); anything else is a bug of ours and becomes ``internal_error`` with the exception
type, message and project frame (``pipelines.failures``), which makes the build fail after it has written
everything. Nothing is substituted for a bad image.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines import imaging
from pipelines.config import BuildConfig
from pipelines.failures import describe
from pipelines.keywords import KeywordMatcher, make_matcher
from pipelines.paths import UnresolvedPath, confine_tree, store_root
from pipelines.records import Job, Reject
from pipelines.text import Tokenizer, TooLong, encode_text, load_tokenizer
from pipelines.writer import SampleSummary, open_writer
from shards_spec.codec import encode_sample
from shards_spec.layout import SPEC_VERSION
from shards_spec.schema import ImageEntry, ImageSpan, SampleMeta


@dataclass(frozen=True)
class ShardId:
    """Which shard, where it goes, and the fingerprint that decides whether it is (re)built."""

    dataset: str
    split: str
    stream: str
    index: int
    tar_path: str
    fingerprint: str


@dataclass(frozen=True)
class ShardPlan(ShardId):
    """A shard with its jobs, as a build task receives it."""

    jobs: tuple[Job, ...]


@dataclass(frozen=True)
class WorkerEnv:
    """Everything a shard task needs besides its plan (the same for every shard of a build)."""

    raw: str
    config: BuildConfig
    tokenizer: str
    keywords: str
    extra_terms: tuple[str, ...] = ()
    channels: str = "auto"  # grey | rgb | auto (pipelines.imaging.intensity.select_channels)
    follow_symlinks_outside: bool = False
    environment: str = ""  # digest of the build environment, recorded in each completion marker
    #: (registry id, root) of every figure store the dataset's images may come from (``ImageRef.store``)
    stores: tuple[tuple[str, str], ...] = ()


#: Test hook, read by the shard task: sleep this many seconds after each sample (lets a test kill a build midway).
DELAY_ENV = "RADFM_TEST_SAMPLE_DELAY_S"


_CACHE: dict[tuple, Any] = {}


def _tokenizer(env: WorkerEnv) -> Tokenizer:
    key = ("tok", env.tokenizer, env.config.image.max_images)
    if key not in _CACHE:
        _CACHE[key] = load_tokenizer(env.tokenizer, env.config.image.max_images)
    return _CACHE[key]


def _matcher(env: WorkerEnv) -> KeywordMatcher:
    key = ("kw", env.keywords, env.extra_terms)
    if key not in _CACHE:
        _CACHE[key] = make_matcher(env.keywords, env.extra_terms)
    return _CACHE[key]


def load_images(job: Job, env: WorkerEnv) -> np.ndarray:
    """The job's images as one uint8 ``[S, C, H, W, D]`` array (raises ImageError, or OutsideRoot for a path
    that leads outside the raw root, a slice folder's files included)."""
    refs = [job.record.images[i] for i in job.spec.image_indices]
    stores = {name: Path(root) for name, root in env.stores}
    for ref in refs:
        confine_tree(store_root(Path(env.raw), ref.store, stores), ref.path, follow_symlinks_outside=env.follow_symlinks_outside)
    arrays = imaging.load_images(Path(env.raw), refs, env.config.image, job.record.stream, env.channels, stores)
    return imaging.stack_sample(arrays, env.config.image, job.record.stream)


class _Stage:
    """Which step of a sample is running, for the reject's ``stage``."""

    def __init__(self) -> None:
        self.name = "preprocess"


def build_sample(job: Job, env: WorkerEnv, stage: _Stage | None = None) -> tuple[dict[str, bytes], SampleSummary]:
    """Members and index summary of one sample. Raises ImageError, OutsideRoot or TooLong on a bad input."""
    stage = stage or _Stage()
    tok, matcher = _tokenizer(env), _matcher(env)
    vision = load_images(job, env)
    stage.name = "encode"
    spec, record = job.spec, job.record
    enc = encode_text(tok, matcher, spec.question, spec.answer, list(spec.placements), env.config.text)
    used = [record.images[i] for i in spec.image_indices]
    meta = SampleMeta(
        spec_version=SPEC_VERSION,
        key=job.key,
        dataset=record.dataset,
        split=record.split,
        stream=record.stream,
        task=spec.task,
        variant=spec.variant,
        prompt_id=spec.prompt_id,
        question=enc.question,
        answer=enc.answer,
        truncated=enc.truncated,
        modality=record.modality,
        source_id=record.source_id,
        source_paths=tuple(sorted({r.path for r in used})),
        images=tuple(ImageEntry(r.path, r.load_as, r.series, r.store) for r in used),
        image_spans=tuple(ImageSpan(**span) for span in enc.image_spans),
        vision_shape=tuple(vision.shape),
        n_tokens=int(enc.input_ids.size),
        n_question_tokens=enc.n_question_tokens,
        keywords=tuple(enc.keywords),
        tokenizer=tok.fingerprint,
        special_ids=tok.special_ids(),
        text_fixes={"control_chars": record.text_fixes.control_chars, "non_utf8": record.text_fixes.non_utf8},
        findings=spec.findings,
        label_set=spec.label_set,
        answer_type=spec.answer_type,
        choices=spec.choices,
    )
    members = encode_sample(
        input_ids=enc.input_ids,
        labels=enc.labels,
        loss_weight=enc.loss_weight,
        meta=meta.to_dict(),
        vision=vision,
        zstd_level=env.config.shard.zstd_level,
        slices=job.record.stream == "3d",  # spec 1.4: 3D images stored slices-contiguous
    )
    return members, SampleSummary(spec.task, int(enc.input_ids.size), int(vision.shape[0]), int(vision.shape[-1]))


def build_shard(plan: ShardPlan, env: WorkerEnv) -> dict[str, Any]:
    """Write ``plan``'s shard and return its stats (also written as the completion marker)."""
    started = time.perf_counter()
    writer = open_writer(plan.tar_path, env.config.shard.mtime)
    delay_s = float(os.environ.get(DELAY_ENV) or 0)
    rejects: list[dict] = []
    tasks: Counter[str] = Counter()
    try:
        for job in plan.jobs:
            stage = _Stage()
            try:
                members, summary = build_sample(job, env, stage)
            except (imaging.ImageError, TooLong, UnresolvedPath) as exc:  # the input's fault: its own reason
                rejects.append(_reject(job, exc.reason, str(exc), stage.name, _failing_file(job, exc)))
                continue
            except Exception as exc:  # anything else is ours: reported, counted, and the build fails at the end
                rejects.append(_reject(job, "internal_error", describe(exc), stage.name, _failing_file(job, exc)))
                continue
            writer.write(job.key, members, summary)
            tasks[job.spec.task] += 1
            if delay_s:
                time.sleep(delay_s)
        return writer.commit(
            {
                "dataset": plan.dataset,
                "split": plan.split,
                "stream": plan.stream,
                "fingerprint": plan.fingerprint,
                "environment": env.environment,
                "tokenizer": _tokenizer(env).fingerprint,
                "jobs": len(plan.jobs),
                "tasks": dict(sorted(tasks.items())),
                "rejects": rejects,
                "duration_s": round(time.perf_counter() - started, 3),
            }
        )
    except BaseException:
        writer.abort()
        raise


def _reject(job: Job, reason: str, message: str, stage: str, file: str) -> dict[str, str]:
    return Reject(job.record.dataset, job.record.source_id, file, reason, message, stage, job.spec.task).to_dict()


def failed_shard(plan: ShardPlan, exc: BaseException) -> dict[str, Any]:
    """Stats of a shard whose task failed as a whole (a write error, a crashed worker process): no tar, and every
    job an ``internal_error`` reject, so the build reports it and fails after writing everything else."""
    cause = getattr(exc, "cause", None)  # Ray wraps a task's exception (RayTaskError.cause): report the original
    message = f"shard {plan.tar_path.rsplit('/', 1)[-1]} failed: {describe(cause if isinstance(cause, BaseException) else exc)}"
    files = [_failing_file(job, exc) for job in plan.jobs]
    return {
        "failed": True,
        "dataset": plan.dataset,
        "split": plan.split,
        "stream": plan.stream,
        "samples": 0,
        "tasks": {},
        "rejects": [_reject(job, "internal_error", message, "write", file) for job, file in zip(plan.jobs, files)],
    }


def _failing_file(job: Job, exc: Exception) -> str:
    """The job's image path named in the error message, else its first image."""
    message = str(exc)
    paths = [job.record.images[i].path for i in job.spec.image_indices]
    for p in paths:
        if p in message:
            return p
    return paths[0] if paths else ""
