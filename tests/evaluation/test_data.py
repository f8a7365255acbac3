"""Planning, batching and rank dealing (evaluation.data)."""

from __future__ import annotations

import pytest

from evaluation.data import (
    BadSample,
    PlanItem,
    eval_collate_config,
    make_batches,
    plan,
    rank_batches,
    read_sample,
    resolve_shards,
)
from shards_spec.schema import IndexEntry
from train.collate import CollateConfig
from train.sources import ShardRef


def _item(key: str, stream: str = "2d", geometry=(512, 4), n_tokens: int = 10) -> PlanItem:
    entry = IndexEntry(key, 0, 0, {}, "report", n_tokens, 1, 1)
    return PlanItem(key, ShardRef("x.tar", stream, "test", "d", 1, 1.0, 0), entry, geometry)


def test_batches_share_a_geometry_and_do_not_depend_on_the_number_of_ranks():
    items = [_item(f"k{i}", "2d", (512, 4), n_tokens=i % 3) for i in range(7)]
    items += [_item(f"v{i}", "3d", (256, 8 if i % 2 else 16)) for i in range(5)]
    batches = make_batches(items, 3)
    assert all(len({(x.stream, x.geometry) for x in b}) == 1 for b in batches)
    assert sorted(x.key for b in batches for x in b) == sorted(x.key for x in items)
    assert make_batches(list(reversed(items)), 3) == batches  # a function of the set, not of the input order
    for world in (1, 2, 3, 5):
        dealt = [rank_batches(batches, r, world) for r in range(world)]
        assert sorted(i for part in dealt for i, _ in part) == list(range(len(batches)))
        assert all(b == batches[i] for part in dealt for i, b in part)
    with pytest.raises(ValueError):
        make_batches(items, 0)
    split = make_batches(items, 3, 1)
    assert all(len(b) == 1 for b in split if b[0].stream == "3d") and max(len(b) for b in split) == 3


def test_plan_lists_the_test_split_in_key_order_with_filters_and_limit(demo_shards):
    shards = resolve_shards([str(demo_shards)])
    assert {s.split for s in shards} == {"test"}
    cfg = eval_collate_config(CollateConfig())
    items = plan(shards, cfg)
    keys = [i.key for i in items]
    assert keys == sorted(keys) and len(keys) == len(set(keys))
    assert {i.geometry for i in items if i.stream == "2d"} == {(512, 4)}  # 2D: 512^2, depth 4
    assert all(i.geometry[0] == 256 for i in items if i.stream == "3d" and i.geometry[1] > 4)
    assert {i.task for i in plan(shards, cfg, tasks=["vqa"])} == {"vqa"}
    assert {i.dataset for i in plan(shards, cfg, datasets=["mimic"])} == {"mimic"}
    limited = plan(shards, cfg, limit=1)
    assert len(limited) == len({(i.dataset, i.task) for i in items})
    sample = read_sample(items[0])
    assert sample.key == items[0].key and sample.prompt_ids[0] == 1
    assert len(sample.prompt_ids) == sample.meta.n_question_tokens
    assert all(sample.labels[: sample.meta.n_question_tokens] == -100)


def test_a_sample_that_cannot_be_read_is_a_bad_sample(demo_shards, tmp_path):
    import dataclasses
    import shutil

    shard = resolve_shards([str(demo_shards)])[0]
    copy = tmp_path / shard.path.rsplit("/", 1)[-1]
    shutil.copy(shard.path, copy)
    item = plan([shard], eval_collate_config())[-1]
    copy.write_bytes(copy.read_bytes()[: item.entry.offset + 600])  # truncated shard
    moved = PlanItem(item.key, dataclasses.replace(item.ref, path=str(copy)), item.entry, item.geometry)
    with pytest.raises(BadSample, match="truncated"):
        read_sample(moved)
