"""Elastic determinism (train.plan, train.stream): the global sequence of batches is a function of the seed, the
global batch size, the lanes and the data -- not of the world size or the DataLoader workers -- and a run
checkpointed on W ranks resumes on W' ranks with exactly the batches of the uninterrupted run."""

from __future__ import annotations

import json

import pytest

from train import checkpoint as ckpt
from train.collate import CollateConfig
from train.config import SourceConfig, TrainConfig
from train.sources import resolve_sources
from train.stream import (
    StreamConfig,
    StreamLoader,
    check_world,
    global_batch_keys,
    merge_states,
    rank_pieces,
)


def _shards(demo_shards):
    return resolve_sources([SourceConfig(str(demo_shards))])


def _cfg(name: str, g: int, lanes: int, block: int = 6) -> StreamConfig:
    return StreamConfig(name=name, batch_size=g, block_size=block, interleave=2, seed=5, lanes=lanes,
                        collate=CollateConfig(image_size=32))


def _flat(batches: list[list[list[str]]]) -> list[list[str]]:
    return [[k for rank in b for k in rank] for b in batches]


def test_rank_pieces_split_global_batches():
    cfg = StreamConfig("2d", 8, lanes=2)  # lane batches of 4
    assert rank_pieces(cfg, 1, 0) == [(0, 0, 4), (1, 0, 4)]  # one rank reads both lanes
    assert rank_pieces(cfg, 2, 1) == [(1, 0, 4)]  # W = L: one lane per rank
    assert rank_pieces(cfg, 4, 1) == [(0, 2, 4)]  # W > L: ranks share a lane's batch
    assert rank_pieces(cfg, 8, 5) == [(1, 1, 2)]
    every = [p for r in range(4) for p in rank_pieces(cfg, 4, r)]
    assert sum(hi - lo for _, lo, hi in every) == 8
    with pytest.raises(ValueError, match="not divisible by the world size 3"):
        check_world(cfg, 3)
    with pytest.raises(ValueError, match="multiple of the number of lanes"):
        StreamConfig("3d", 3, lanes=2)


@pytest.mark.parametrize("stream,g,lanes", [("2d", 4, 2), ("2d", 8, 4), ("3d", 4, 4), ("3d", 4, 1)])
def test_planned_order_is_the_same_on_1_2_and_4_ranks(demo_shards, stream, g, lanes):
    shards = _shards(demo_shards)[stream]
    cfg = _cfg(stream, g, lanes)
    n = 3 * sum(s.samples for s in shards) // g  # about three epochs
    orders = {w: global_batch_keys(shards, cfg, w, n) for w in (1, 2, 4)}
    assert _flat(orders[1]) == _flat(orders[2]) == _flat(orders[4])
    assert all(len(rank) == g // 4 for b in orders[4] for rank in b)  # each of 4 ranks takes G / 4
    keys = [k for b in _flat(orders[1]) for k in b]
    assert len(set(keys)) == sum(s.samples for s in shards)  # every sample comes round
    assert _flat(global_batch_keys(shards, _cfg(stream, g, lanes, block=4), 1, n)) != _flat(orders[1])


def _run(loaders: list[StreamLoader], n: int) -> list[list[str]]:
    """``n`` global batches from one loader per rank: keys of rank 0, then rank 1, ..."""
    return [[k for loader in loaders for k in loader.next()["keys"]] for _ in range(n)]


def test_delivered_batches_are_the_same_for_any_world_size_and_workers(demo_shards):
    """Reading for real (DataLoader workers in processes): W x N = 1 x 0, 2 x 2 and 4 x 1 deliver the planned
    global batches."""
    shards = _shards(demo_shards)["2d"]
    cfg = _cfg("2d", 4, 2)
    n = 9
    planned = _flat(global_batch_keys(shards, cfg, 1, n))
    for world, workers in ((1, 0), (2, 2), (4, 1)):
        loaders = [StreamLoader(shards, cfg, r, world, workers) for r in range(world)]
        assert _run(loaders, n) == planned, f"world {world} x {workers} workers"
        for loader in loaders:
            loader.close()


def _save(loaders: list[StreamLoader]) -> dict:
    """What the trainer's checkpoint keeps: every rank's state merged (through JSON, as a file would)."""
    return json.loads(json.dumps(merge_states([loader.state_dict() for loader in loaders])))


@pytest.mark.parametrize("stream,g", [("2d", 4), ("3d", 2)])
def test_resume_2_to_1_to_2_ranks_sees_the_uninterrupted_batches(demo_shards, stream, g):
    shards = _shards(demo_shards)[stream]
    cfg = _cfg(stream, g, 2)
    n = 2 * sum(s.samples for s in shards) // g // 3  # segments cross epoch boundaries
    reference = _run([StreamLoader(shards, cfg, r, 2, 0) for r in range(2)], 3 * n)
    first = [StreamLoader(shards, cfg, r, 2, 1) for r in range(2)]
    got = _run(first, n)
    state = _save(first)
    assert state["batches"] == n and state["global_batch"] == g and sorted(state["cursors"]) == ["0", "1"]
    single = StreamLoader(shards, cfg, 0, 1, 2, state=state)  # one rank, two workers: G per rank
    got += _run([single], n)
    state = _save([single])
    again = [StreamLoader(shards, cfg, r, 2, 0, state=state) for r in range(2)]
    got += _run(again, n)
    assert got == reference
    assert max(e for e, _ in again[0].cursors.values()) >= 1, "the test should cross an epoch boundary"


def test_merge_states_and_refusals(demo_shards):
    shards = _shards(demo_shards)["2d"]
    cfg = _cfg("2d", 4, 2)
    a, b = (StreamLoader(shards, cfg, r, 2, 0) for r in range(2))
    for _ in range(3):
        a.next()
    with pytest.raises(ValueError, match="disagree on batches"):
        merge_states([a.state_dict(), b.state_dict()])
    with pytest.raises(ValueError, match="global batch 4 and 2 lanes"):
        StreamLoader(shards, _cfg("2d", 8, 2), 0, 1, 0, state=a.state_dict())


def test_trainer_keeps_the_checkpoints_global_batch_and_lanes():
    from train.run import global_order

    cfg = TrainConfig(sources=[SourceConfig("x")], batch_size_2d=4, batch_size_3d=1)
    assert global_order(cfg, "2d", 2, None) == (8, 2)  # a first launch: per-rank batch x world, lanes = world
    assert global_order(cfg, "3d", 2, None) == (2, 2)
    saved = {"global_batch": 8, "lanes": 2, "batches": 5, "cursors": {}}
    assert global_order(cfg, "2d", 1, saved) == (8, 2)  # resumed on 1 rank: 8 per rank, same order
    assert global_order(cfg, "2d", 4, saved) == (8, 2)
    cfg.global_batch_size_2d = 16
    with pytest.raises(ckpt.ResumeError, match="global batch of 8 in 2 lanes, the config 16 in 2"):
        global_order(cfg, "2d", 2, saved)
    with pytest.raises(ckpt.ResumeError, match="older trainer"):
        global_order(TrainConfig(sources=[SourceConfig("x")]), "2d", 2, {"batches": 3, "cursors": {"0": [0, 4]}})
    with pytest.raises(ckpt.ResumeError, match="multiple of the lanes"):
        global_order(TrainConfig(sources=[SourceConfig("x")], global_batch_size_3d=2), "3d", 4, None)
