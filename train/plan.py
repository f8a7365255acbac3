"""Planning of the streams: which samples each (rank, DataLoader worker) slot reads, in which order, epoch by
epoch. Pure functions of the seed, the slot and the shards' index sidecars; the design is described in
``train.stream`` (steps 1-5 there). Reading is ``train.read``, batching ``train.stream``."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from .collate import CollateConfig
from .read import IndexCache
from .schedule import seed_from, unit_hash
from .sources import ShardRef


@dataclass(frozen=True)
class StreamConfig:
    name: str  # "2d" / "3d"
    batch_size: int
    block_size: int = 256
    interleave: int = 4
    length_grouping: bool = True
    seed: int = 0
    collate: CollateConfig = CollateConfig()

    @property
    def effective_block(self) -> int:
        """K rounded up to a multiple of the batch size when grouping, so grouped batches align with blocks."""
        if self.length_grouping and self.batch_size > 1:
            return int(math.ceil(self.block_size / self.batch_size) * self.batch_size)
        return self.block_size


# ============================================================================ pure planning functions
def epoch_shard_order(shards: list[ShardRef], seed: int, stream: str, epoch: int) -> list[int]:
    """Indices into ``shards`` for one epoch: weight copies, then a seeded shuffle."""
    order: list[int] = []
    for i, s in enumerate(shards):
        copies = int(math.floor(s.weight))
        frac = s.weight - copies
        if frac > 0 and unit_hash("weight", seed, stream, epoch, s.path) < frac:
            copies += 1
        order.extend([i] * copies)
    random.Random(seed_from("shards", seed, stream, epoch)).shuffle(order)
    return order


def deal(n_items: int, world_size: int, num_workers: int, rank: int, worker: int) -> list[tuple[int, int, int]]:
    """``(position, part, nparts)`` of the epoch list dealt to slot ``(rank, worker)`` (see module docstring)."""
    if n_items <= 0:
        return []
    slots = world_size * num_workers
    total = max(n_items, slots)
    out = []
    for t in range(total):
        if t % world_size == rank and (t // world_size) % num_workers == worker:
            i = t % n_items
            nparts = (total - 1 - i) // n_items + 1
            out.append((i, t // n_items, nparts))
    return out


def part_indices(n_samples: int, part: int, nparts: int) -> list[int]:
    if n_samples <= 0:
        return []
    if part < n_samples:
        return list(range(part, n_samples, nparts))
    return [part % n_samples]


def interleave(lists: list[list[Any]], m: int) -> list[tuple[int, Any]]:
    """Round-robin over at most ``m`` lists at a time; yields ``(list index, item)``."""
    out: list[tuple[int, Any]] = []
    active: list[list] = []  # [list index, position]
    nxt = 0
    while nxt < len(lists) and len(active) < m:
        if lists[nxt]:
            active.append([nxt, 0])
        nxt += 1
    pos = 0
    while active:
        a = active[pos]
        out.append((a[0], lists[a[0]][a[1]]))
        a[1] += 1
        if a[1] == len(lists[a[0]]):
            while nxt < len(lists) and not lists[nxt]:
                nxt += 1
            if nxt < len(lists):
                active[pos] = [nxt, 0]
                nxt += 1
                pos += 1
            else:
                del active[pos]
        else:
            pos += 1
        if pos >= len(active):
            pos = 0
    return out


def block_order(
    lengths: list[int],
    block_size: int,
    batch_size: int,
    length_grouping: bool,
    seed_parts: tuple,
) -> list[int]:
    """Emitted order (a permutation of ``range(len(lengths))``), block by block."""
    out: list[int] = []
    for b0 in range(0, len(lengths), block_size):
        idx = list(range(b0, min(b0 + block_size, len(lengths))))
        rng = random.Random(seed_from("block", *seed_parts, b0))
        rng.shuffle(idx)
        if length_grouping and batch_size > 1:
            idx.sort(key=lambda p: lengths[p])  # stable: equal lengths keep their shuffled order
            groups = [idx[i:i + batch_size] for i in range(0, len(idx), batch_size)]
            tail = [groups.pop()] if groups and len(groups[-1]) < batch_size else []
            rng.shuffle(groups)
            idx = [p for g in groups + tail for p in g]
        out.extend(idx)
    return out


def pad_to_batches(order: list[int], batch_size: int, length_grouping: bool) -> list[int]:
    """Append repeats so that an epoch is whole batches (fewer than ``batch_size`` of them).

    With length grouping the short last group is completed with the samples just before it in the order
    (the nearest lengths); otherwise with the epoch's first samples. Batches then never straddle two epochs,
    so every epoch starts aligned with its length groups.
    """
    n = len(order)
    short = (-n) % batch_size
    if n == 0 or short == 0:
        return order
    rem = n % batch_size
    if length_grouping:
        before = order[max(0, n - rem - short):n - rem]
    else:
        before = order[:short]
    fill = (before + [order[i % n] for i in range(short)])[:short]
    return order + fill


# ============================================================================ per-slot plan
@dataclass
class EpochPlan:
    epoch: int
    order: list[tuple[int, dict]]  # (shard index, index entry) in emitted order


class SlotPlan:
    """The emitted sample order of one (rank, worker) slot, epoch by epoch."""

    def __init__(self, shards: list[ShardRef], cfg: StreamConfig, rank: int, world_size: int, worker: int,
                 num_workers: int, index: IndexCache | None = None):
        self.shards, self.cfg = shards, cfg
        self.rank, self.world_size, self.worker, self.num_workers = rank, world_size, worker, num_workers
        self.index = index or IndexCache()

    def epoch(self, epoch: int) -> EpochPlan:
        cfg = self.cfg
        order = epoch_shard_order(self.shards, cfg.seed, cfg.name, epoch)
        assigned = deal(len(order), self.world_size, self.num_workers, self.rank, self.worker)
        lists = []
        for pos, part, nparts in assigned:
            sid = order[pos]
            entries = self.index.get(self.shards[sid])
            lists.append([(sid, entries[j]) for j in part_indices(len(entries), part, nparts)])
        read = [item for _, item in interleave(lists, cfg.interleave)]
        lengths = [int(e.get("n_tokens") or 0) for _, e in read]
        seed_parts = (cfg.seed, cfg.name, epoch, self.rank, self.world_size, self.worker, self.num_workers)
        emitted = block_order(lengths, cfg.effective_block, cfg.batch_size, cfg.length_grouping, seed_parts)
        emitted = pad_to_batches(emitted, cfg.batch_size, cfg.length_grouping)
        return EpochPlan(epoch, [read[p] for p in emitted])

    def keys(self, epoch: int) -> list[str]:
        return [e["key"] for _, e in self.epoch(epoch).order]
