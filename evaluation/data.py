"""Test-split samples: which samples an evaluation covers, in which batches, and reading one by its index entry.

* **Which.** ``--shards`` entries take the trainer's source forms (a dataset directory, a directory of them, a
  ``manifest.json``: their ``--split`` shards, default ``test``; or tar paths / brace patterns, used as given),
  resolved by ``train.sources.resolve_source``. Samples are listed from the shards' index sidecars (SPEC §4), so
  planning reads no tar; ``--tasks`` / ``--datasets`` filter them, ``limit`` keeps the first N keys per
  (dataset, task).
* **Batches.** Every sample gets its own test-time geometry, the trainer's rule for a batch of one sample
  (``train.collate.target_geometry``: 2D images 512x512 at depth 4, volumes 256x256 at their closest allowed depth),
  so a sample's input never depends on which samples share its batch. Samples are ordered by (stream, geometry,
  length, key) and cut into batches (``batch_size``; ``batch_size_3d`` for volumes); batch ``i`` goes to rank
  ``i % world``. The batches are the
  same for any number of ranks, so one process and several give the same predictions.
* **Reading.** A sample is read through its index entry by the trainer's reader (``train.read.read_sample``: one
  seek, ``shards_spec.codec`` decoding, bounded, no pickle, arrays checked); ``meta.json`` is parsed by
  ``shards_spec.schema.SampleMeta``. A sample that fails raises ``BadSample`` (the evaluation records it and goes
  on).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from shards_spec.jsonio import read_json
from shards_spec.layout import index_path
from shards_spec.schema import IndexEntry, SampleMeta, SchemaError, ShardIndex
from train.collate import CollateConfig, Sample, collate, target_geometry
from train.config import SourceConfig
from train.read import BadSample, FileCache
from train.read import read_sample as read_stream_sample
from train.sources import ShardRef, SourceError, resolve_source

DEFAULT_SPLITS = ("test",)


@dataclass(frozen=True)
class PlanItem:
    """One sample to evaluate, as its shard's index sidecar describes it."""

    key: str
    ref: ShardRef  # its shard
    entry: IndexEntry
    geometry: tuple[int, int]  # (H = W, D) at test time

    @property
    def shard(self) -> str:
        return self.ref.path

    @property
    def dataset(self) -> str:
        return self.ref.dataset

    @property
    def split(self) -> str:
        return self.ref.split

    @property
    def stream(self) -> str:
        return self.ref.stream

    @property
    def task(self) -> str:
        return self.entry.task

    @property
    def n_tokens(self) -> int:
        return self.entry.n_tokens


@dataclass
class EvalSample:
    """A decoded sample: its meta, the prompt (BOS + question with image spans) and its images."""

    item: PlanItem
    meta: SampleMeta
    input_ids: np.ndarray  # int32 [L], the whole sample
    labels: np.ndarray  # int32 [L], -100 where not learned
    vision: np.ndarray  # uint8 [S, C, H, W, D]

    @property
    def key(self) -> str:
        return self.meta.key

    @property
    def prompt_ids(self) -> np.ndarray:
        return self.input_ids[: self.meta.n_question_tokens]


def resolve_shards(paths: Sequence[str], splits: Sequence[str] = DEFAULT_SPLITS) -> list[ShardRef]:
    """The shards named by ``paths`` (see the module docstring), sorted by path, without duplicates."""
    shards: dict[str, ShardRef] = {}
    for i, path in enumerate(paths):
        explicit = path.endswith(".tar") or "{" in path
        for shard in resolve_source(SourceConfig(path, splits=None if explicit else list(splits)), i):
            shards.setdefault(shard.path, shard)
    if not shards:
        raise SourceError(f"no {'/'.join(splits)} shards in {', '.join(paths)} (build them first, e.g. `make demo`)")
    return sorted(shards.values(), key=lambda s: s.path)


def load_index(shard: ShardRef) -> ShardIndex:
    path = index_path(shard.path)
    try:
        return ShardIndex.from_dict(read_json(path))
    except (OSError, ValueError, SchemaError) as exc:
        raise SourceError(f"{path}: no readable index sidecar ({exc}); rebuild the shard or check it with "
                          f"python -m shards_spec.validate {shard.path}") from None


def plan(shards: Iterable[ShardRef], collate_cfg: CollateConfig, tasks: Sequence[str] | None = None,
         datasets: Sequence[str] | None = None, limit: int | None = None) -> list[PlanItem]:
    """Every selected sample, in key order (keys are unique: a key names its dataset)."""
    items: dict[str, PlanItem] = {}
    for shard in shards:
        for entry in load_index(shard).samples:
            if (tasks and entry.task not in tasks) or (datasets and shard.dataset not in datasets):
                continue
            geometry = target_geometry([entry.depth], [entry.n_images], collate_cfg)
            items.setdefault(entry.key, PlanItem(entry.key, shard, entry, geometry))
    ordered = [items[k] for k in sorted(items)]
    if limit is not None:
        kept, seen = [], {}
        for item in ordered:
            group = (item.dataset, item.task)
            seen[group] = seen.get(group, 0) + 1
            if seen[group] <= limit:
                kept.append(item)
        ordered = kept
    return ordered


def make_batches(items: Sequence[PlanItem], batch_size: int, batch_size_3d: int | None = None) -> list[list[PlanItem]]:
    """Batches of samples that share stream and geometry, in a fixed order (see the module docstring); 3D batches
    hold ``batch_size_3d`` samples (default ``batch_size``)."""
    sizes = {"2d": batch_size, "3d": batch_size if batch_size_3d is None else batch_size_3d}
    if min(sizes.values()) < 1:
        raise ValueError("batch sizes must be >= 1")
    groups: dict[tuple, list[PlanItem]] = {}
    for item in sorted(items, key=lambda x: (x.stream, x.geometry, x.n_tokens, x.key)):
        groups.setdefault((item.stream, item.geometry), []).append(item)
    return [group[i:i + sizes[stream]] for (stream, _), group in groups.items()
            for i in range(0, len(group), sizes[stream])]


def rank_batches(batches: Sequence[list[PlanItem]], rank: int, world: int) -> list[tuple[int, list[PlanItem]]]:
    """``(batch index, batch)`` of the batches dealt to ``rank``: batch ``i`` goes to rank ``i % world``."""
    return [(i, b) for i, b in enumerate(batches) if i % world == rank]


def read_sample(item: PlanItem, files: FileCache | None = None) -> EvalSample:
    """Read and decode one sample by its index entry with the trainer's reader (``train.read.read_sample``: one
    seek, bounded decoding, the sample's arrays checked against each other); raises :class:`BadSample`."""
    own = files is None
    files = files or FileCache(1)
    try:
        sample = read_stream_sample(files, item.ref, item.entry.to_dict())
    finally:
        if own:
            files.close()
    try:
        meta = SampleMeta.from_dict(sample.meta)
    except SchemaError as exc:
        raise BadSample(f"meta.json: {exc}") from None
    if not 1 <= meta.n_question_tokens <= len(sample.input_ids):
        raise BadSample(f"n_question_tokens {meta.n_question_tokens} outside [1, {len(sample.input_ids)}]")
    return EvalSample(item, meta, sample.input_ids, sample.labels, sample.vision)


def sample_vision(sample, collate_cfg: CollateConfig):
    """``vision_x [1, S, 3, H, W, D]`` of one sample (anything with ``key``, ``prompt_ids`` and uint8 ``vision``
    ``[S, C, H, W, D]``) at its own test-time geometry (no augmentation)."""
    ids = sample.prompt_ids
    one = Sample(key=sample.key, input_ids=ids, labels=ids, loss_weight=np.zeros(len(ids), np.float32),
                 vision=sample.vision)
    return collate([one], collate_cfg)["vision_x"]


def eval_collate_config(base: CollateConfig | None = None) -> CollateConfig:
    """The collation settings at test time: the given (training) ones without augmentation, dense tensors."""
    from dataclasses import replace

    return replace(base or CollateConfig(), augment=False, dense_vision=False)
