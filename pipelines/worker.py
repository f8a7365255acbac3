"""Build one shard: preprocess each job's images, encode its text, write it.

This is the unit of work a Ray task (or the serial executor) runs. Failures of one
sample (a corrupt image, an over-long text) become rejects with a reason; they never stop
the shard, and nothing is substituted for a bad image.
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
from pipelines.keywords import KeywordMatcher, make_matcher
from pipelines.records import Job, Reject
from pipelines.text import Tokenizer, TooLong, encode_text, load_tokenizer
from pipelines.writer import SampleSummary, ShardWriter
from shards_spec.codec import encode_sample
from shards_spec.layout import SPEC_VERSION
from shards_spec.schema import ImageEntry, ImageSpan, SampleMeta


@dataclass(frozen=True)
class ShardPlan:
    dataset: str
    split: str
    stream: str
    index: int
    tar_path: str
    fingerprint: str
    jobs: tuple[Job, ...]


@dataclass(frozen=True)
class WorkerEnv:
    """Everything a shard task needs besides its plan (the same for every shard of a build)."""

    raw: str
    config: BuildConfig
    tokenizer: str
    keywords: str
    extra_terms: tuple[str, ...] = ()
    channels: str = "grey"
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
    """The job's images as one uint8 ``[S, C, H, W, D]`` array (raises ImageError)."""
    refs = [job.record.images[i] for i in job.spec.image_indices]
    stores = {name: Path(root) for name, root in env.stores}
    arrays = imaging.load_images(Path(env.raw), refs, env.config.image, job.record.stream, env.channels, stores)
    return imaging.stack_sample(arrays, env.config.image, job.record.stream)


def build_sample(job: Job, env: WorkerEnv) -> tuple[dict[str, bytes], SampleSummary]:
    """Members and index summary of one sample. Raises ImageError or TooLong."""
    tok, matcher = _tokenizer(env), _matcher(env)
    vision = load_images(job, env)
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
    )
    return members, SampleSummary(spec.task, int(enc.input_ids.size), int(vision.shape[0]), int(vision.shape[-1]))


def build_shard(plan: ShardPlan, env: WorkerEnv) -> dict[str, Any]:
    """Write ``plan``'s shard and return its stats (also written as the completion marker)."""
    started = time.perf_counter()
    writer = ShardWriter(Path(plan.tar_path), env.config.shard.mtime)
    delay_s = float(os.environ.get(DELAY_ENV) or 0)
    rejects: list[dict] = []
    tasks: Counter[str] = Counter()
    try:
        for job in plan.jobs:
            try:
                members, summary = build_sample(job, env)
            except (imaging.ImageError, TooLong) as exc:
                stage = "encode" if isinstance(exc, TooLong) else "preprocess"
                file = _failing_file(job, exc)
                rejects.append(Reject(job.record.dataset, job.record.source_id, file, exc.reason, str(exc), stage, job.spec.task).to_dict())
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
                "jobs": len(plan.jobs),
                "tasks": dict(sorted(tasks.items())),
                "rejects": rejects,
                "duration_s": round(time.perf_counter() - started, 3),
            }
        )
    except BaseException:
        writer.abort()
        raise


def _failing_file(job: Job, exc: Exception) -> str:
    """The job's image path named in the error message, else its first image."""
    message = str(exc)
    paths = [job.record.images[i].path for i in job.spec.image_indices]
    for p in paths:
        if p in message:
            return p
    return paths[0] if paths else ""
