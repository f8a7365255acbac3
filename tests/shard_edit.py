"""Editing built shards for the readers' tests: copy a dataset directory, change its samples, and rewrite every
file the change touches (tars through the build's own ``ShardWriter``, index sidecars, completion markers, the
manifest's shard entries and counts), so that exactly the intended change is left for a reader to meet.

``edit_dataset(src, dst, mutate)``: ``mutate(key, members) -> members | None`` sees each sample's member bytes
(field -> bytes) and returns the new ones (``None`` drops the sample). ``to_colour`` turns a sample's grey images
into colour ones (C = 3 with three different channels), as a colour source builds them.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pipelines.config import ShardConfig
from pipelines.writer import SampleSummary, ShardWriter
from shards_spec import codec
from shards_spec.jsonio import read_json, write_json
from shards_spec.layout import FIELD_META, FIELD_SLICES, FIELD_SLICES_RAW, MANIFEST_NAME, image_field, index_path
from shards_spec.reader import iter_raw_samples

Mutate = Callable[[str, dict[str, bytes]], "dict[str, bytes] | None"]


def edit_dataset(src: Path, dst: Path, mutate: Mutate) -> Path:
    """A copy of dataset directory ``src`` at ``dst`` with every sample passed through ``mutate``; returns
    ``dst``. Index summaries (task, token, image counts, depth) are the original sample's."""
    shutil.copytree(src, dst)
    manifest = read_json(dst / MANIFEST_NAME)
    per_split, per_stream, per_task = Counter(), Counter(), Counter()
    for entry in manifest["shards"]:
        tar = dst / entry["path"]
        old = {e["key"]: e for e in read_json(index_path(tar))["samples"]}
        samples = [(raw.key, {f: m.data for f, m in raw.members.items()}) for raw in iter_raw_samples(tar)]
        writer = ShardWriter(tar, ShardConfig().mtime)
        tasks: Counter[str] = Counter()
        for key, members in samples:
            changed = mutate(key, dict(members))
            if changed is None:
                continue
            e = old[key]
            writer.write(key, changed, SampleSummary(e["task"], e["n_tokens"], e["n_images"], e["depth"]))
            tasks[e["task"]] += 1
        stats = writer.commit({})
        entry.update(sha256=stats["sha256"], bytes=stats["bytes"], samples=stats["samples"], tasks=dict(tasks))
        per_split[entry["split"]] += stats["samples"]
        per_stream[entry["stream"]] += stats["samples"]
        for task, n in tasks.items():
            per_task[f"{entry['stream']}/{entry['split']}/{task}"] += n
    manifest["counts"] = {"split": dict(per_split), "stream": dict(per_stream), "task": dict(per_task)}
    manifest["samples"] = sum(per_stream.values())
    write_json(dst / MANIFEST_NAME, manifest)
    return dst


def colour_of(grey: np.ndarray) -> np.ndarray:
    """uint8 ``[S, 1, H, W, D]`` -> ``[S, 3, H, W, D]`` with three different channels (red = grey, green =
    its negative, blue = half of it)."""
    g = grey[:, :1]
    return np.concatenate([g, 255 - g, g // 2], axis=1)


def to_colour(key: str, members: dict[str, bytes]) -> dict[str, bytes]:
    """A sample whose images are stored in colour (C = 3), meta ``vision_shape`` to match."""
    field = image_field(members)
    vision = colour_of(codec.decode_image(field, members[field]))
    meta = codec.decode_meta(members[FIELD_META])
    meta["vision_shape"] = list(vision.shape)
    image = codec.encode_image(vision, 3, slices=field in (FIELD_SLICES, FIELD_SLICES_RAW))
    return {**{f: b for f, b in members.items() if f != field}, **image, FIELD_META: codec.encode_meta(meta)}


def edit_index(tar: Path, change: Callable[[list[dict]], None]) -> None:
    """Change a shard's index sidecar entries in place (``change(entries)``), leaving the tar as it is."""
    path = index_path(tar)
    index = json.loads(path.read_text())
    change(index["samples"])
    path.write_text(json.dumps(index))
