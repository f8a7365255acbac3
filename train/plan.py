"""Planning of the streams: the global sequence of batches, as pure functions of the seed, the global batch size,
the number of lanes and the shards' index sidecars -- never of the world size or the DataLoader workers.

A stream is planned as ``lanes`` canonical partitions (*lanes*, MosaicML Streaming's "canonical nodes"). Each
lane reads its own shards, epoch by epoch (steps 1-5 in ``train.stream``), cut into *lane batches* of
``batch_size // lanes`` samples. Global batch ``b`` is lane batch ``b`` of lane 0, then of lane 1, ...; rank
``r`` of ``W`` takes positions ``[r*G/W, (r+1)*G/W)`` of it (:func:`rank_pieces`), and DataLoader worker ``w``
of ``N`` produces the rank's batches ``b = start + w, start + w + N, ...``. Reading is ``train.read``, batching
and bad-sample handling ``train.stream``."""

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
    #: global batch size G: samples of this stream per micro-step over all ranks (each rank takes G / W)
    batch_size: int
    block_size: int = 256
    interleave: int = 4
    length_grouping: bool = True
    seed: int = 0
    collate: CollateConfig = CollateConfig()
    #: canonical partitions L of the stream (must divide G); fixed for the life of a run
    lanes: int = 1

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.lanes < 1 or self.batch_size % self.lanes:
            raise ValueError(f"stream {self.name}: the global batch size ({self.batch_size}) must be a positive "
                             f"multiple of the number of lanes ({self.lanes})")

    @property
    def lane_batch(self) -> int:
        """Samples each lane contributes to a global batch."""
        return self.batch_size // self.lanes

    @property
    def effective_block(self) -> int:
        """K rounded up to a multiple of the lane batch when grouping, so grouped batches align with blocks."""
        g = self.lane_batch
        if self.length_grouping and g > 1:
            return int(math.ceil(self.block_size / g) * g)
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


def _length(entry: dict) -> int:
    """The entry's token count for length grouping; 0 when it is not an int (such an entry is a bad sample when
    read: ``train.read.entry_span``)."""
    n = entry.get("n_tokens")
    return n if type(n) is int else 0


# ============================================================================ lanes and ranks
def check_world(cfg: StreamConfig, world_size: int) -> None:
    """Raise (one line, what to do) unless ``world_size`` ranks can share the stream's global batches."""
    if world_size < 1 or cfg.batch_size % world_size:
        raise ValueError(f"stream {cfg.name}: the global batch size {cfg.batch_size} is not divisible by the world "
                         f"size {world_size}; set global_batch_size_{cfg.name} to a multiple of {world_size}")


def rank_pieces(cfg: StreamConfig, world_size: int, rank: int) -> list[tuple[int, int, int]]:
    """``(lane, lo, hi)``: the rank's share of every global batch, as offsets ``[lo, hi)`` into lane batches."""
    check_world(cfg, world_size)
    g, per = cfg.lane_batch, cfg.batch_size // world_size
    lo, hi = rank * per, (rank + 1) * per
    return [(lane, max(lo, lane * g) - lane * g, min(hi, (lane + 1) * g) - lane * g)
            for lane in range(lo // g, (hi - 1) // g + 1)]



@dataclass
class EpochPlan:
    epoch: int
    order: list[tuple[int, dict]]  # (shard index, index entry) in emitted order


class LanePlan:
    """The emitted sample order of one lane, epoch by epoch (whole lane batches per epoch)."""

    def __init__(self, shards: list[ShardRef], cfg: StreamConfig, lane: int, index: IndexCache | None = None):
        if not 0 <= lane < cfg.lanes:
            raise ValueError(f"lane {lane} out of range 0..{cfg.lanes - 1}")
        self.shards, self.cfg, self.lane = shards, cfg, lane
        self.index = index or IndexCache()

    def epoch(self, epoch: int) -> EpochPlan:
        cfg = self.cfg
        order = epoch_shard_order(self.shards, cfg.seed, cfg.name, epoch)
        lists = []
        for pos, part, nparts in deal(len(order), cfg.lanes, 1, self.lane, 0):
            sid = order[pos]
            entries = self.index.get(self.shards[sid])
            lists.append([(sid, entries[j]) for j in part_indices(len(entries), part, nparts)])
        read = [item for _, item in interleave(lists, cfg.interleave)]
        lengths = [_length(e) for _, e in read]
        seed_parts = (cfg.seed, cfg.name, epoch, self.lane, cfg.lanes)
        emitted = block_order(lengths, cfg.effective_block, cfg.lane_batch, cfg.length_grouping, seed_parts)
        emitted = pad_to_batches(emitted, cfg.lane_batch, cfg.length_grouping)
        return EpochPlan(epoch, [read[p] for p in emitted])

    def keys(self, epoch: int) -> list[str]:
        return [e["key"] for _, e in self.epoch(epoch).order]


#: consecutive empty lane epochs (all shards drawn away by fractional weights) before giving up
MAX_EMPTY_EPOCHS = 1000


class LaneCursor:
    """Lane batch number -> (epoch plan, position of the batch's first sample), moving forward only.

    ``(epoch, first)`` says that lane batch ``first`` is the first batch of ``epoch``; it is the marker a
    checkpoint stores, so a resumed worker plans one epoch instead of every epoch since the start."""

    def __init__(self, plan: LanePlan, epoch: int = 0, first: int = 0):
        self.plan, self.epoch, self.first = plan, int(epoch), int(first)
        self._ep: EpochPlan | None = None

    def at(self, batch: int) -> tuple[EpochPlan, int]:
        if batch < self.first:
            raise ValueError(f"lane {self.plan.lane}: batch {batch} lies before the cursor's epoch {self.epoch} "
                             f"(which starts at batch {self.first})")
        g, empty = self.plan.cfg.lane_batch, 0
        while True:
            if self._ep is None:
                self._ep = self.plan.epoch(self.epoch)
            n = len(self._ep.order) // g
            if batch < self.first + n:
                return self._ep, (batch - self.first) * g
            empty = empty + 1 if n == 0 else 0
            if empty > MAX_EMPTY_EPOCHS:
                raise RuntimeError(f"stream {self.plan.cfg.name}: lane {self.plan.lane} drew no shard in "
                                   f"{MAX_EMPTY_EPOCHS} epochs; raise the sources' weights")
            self.first += n
            self.epoch += 1
            self._ep = None


def planned_batch(cursors: dict[int, LaneCursor], pieces: list[tuple[int, int, int]], batch: int
                  ) -> list[tuple[int, EpochPlan, int]]:
    """``(lane, epoch plan, position)`` of every sample of one rank's share of global batch ``batch``."""
    out = []
    for lane, lo, hi in pieces:
        ep, first = cursors[lane].at(batch)
        out.extend((lane, ep, first + off) for off in range(lo, hi))
    return out


def global_batch_keys(shards: list[ShardRef], cfg: StreamConfig, world_size: int, batches: int,
                      index: IndexCache | None = None) -> list[list[list[str]]]:
    """Planned keys ``[batch][rank] -> keys`` of the first ``batches`` global batches on ``world_size`` ranks
    (before bad-sample substitution): the elastic contract, as a pure function."""
    index = index or IndexCache()
    out = []
    per_rank = []
    for rank in range(world_size):
        pieces = rank_pieces(cfg, world_size, rank)
        cursors = {lane: LaneCursor(LanePlan(shards, cfg, lane, index)) for lane, _, _ in pieces}
        per_rank.append((pieces, cursors))
    for b in range(batches):
        out.append([[ep.order[pos][1]["key"] for _, ep, pos in planned_batch(cursors, pieces, b)]
                    for pieces, cursors in per_rank])
    return out
