"""One endless, exactly resumable stream of collated batches per modality (2D or 3D).

Design
------
The order of samples seen by every (rank, DataLoader worker) *slot* is a pure function of
``(seed, stream, epoch, rank, world_size, worker, num_workers)`` and the shards' index sidecars (SPEC §4):

1. **Shard list of an epoch.** Each shard appears ``floor(weight)`` times, plus once more with probability
   ``frac(weight)`` (a seeded draw per shard and epoch); the list is shuffled with the epoch's seed.
2. **Dealing.** Position ``t`` of that list goes to rank ``t % W`` and, within the rank, to worker
   ``(t // W) % N`` (round-robin to ranks, then to workers). With fewer shards than the ``W*N`` slots the
   list wraps around (``t`` runs to ``W*N``, shard ``t % n_shards``) and the slots that share a shard split its
   samples (slot ``part`` of ``nparts`` takes samples ``part, part+nparts, ...``; a slot whose part would be
   empty takes sample ``part % n_samples``). So every slot always has data, whatever the shard count.
3. **Interleave.** A slot reads its shards ``M`` (``interleave``) at a time, one sample from each in turn;
   an exhausted shard is replaced by the slot's next one. Within a shard, samples are read in tar order.
4. **Block shuffle.** The read order is cut into blocks of ``K`` samples; each block is permuted with a
   seeded RNG. With ``length_grouping`` the permuted block is then sorted by token count, cut into batches,
   and the batch order shuffled (a partial batch stays last), so batches hold similar lengths and padding stays
   small. The emitted order is still a permutation of each block, i.e. a function of the position.
5. **Whole batches per epoch.** If a slot's epoch is not a whole number of batches, it is completed with
   repeats of its own samples (fewer than ``batch_size``; with grouping the nearest lengths), so batches never
   straddle epochs and each epoch starts aligned with its length groups.
6. **Batches.** The worker decodes samples in emitted order (one positioned read of the sample's member span,
   no tar walking; ``train.read``) and collates every ``batch_size`` *good* samples into a batch. Workers yield whole batches, so
   PyTorch's DataLoader, which polls workers round-robin, delivers batch ``i`` from worker ``i % N``.

Epochs and equal step counts ("repeating with a fixed step count")
------------------------------------------------------------------
An *epoch* is per slot: one pass over the shard parts dealt to that slot for that epoch number. When a slot
has exhausted its epoch it continues with the next epoch (a new shuffle and a new dealing), so every stream
is endless on every rank and the run length is set in optimizer steps, identical on all ranks. Nothing can
hang on uneven data (webdataset #188/#225, litData #233). The price: slots with fewer samples revisit their
data sooner; within one epoch number slots see disjoint samples (except in the wrap-around case above, where
a shard with fewer samples than the slots sharing it repeats one of them).

Resumption
----------
A worker's position is ``(epoch, pos)``: the index of the next sample to examine in its emitted order. Every
batch carries the cursor of its worker after the batch, and the trainer keeps, per stream, the number of
batches consumed and the cursor of each worker's last consumed batch (``StreamLoader.state_dict``). A
resumed loader starts every worker at its cursor and rotates worker ids by ``batches % N``, so that the next
batch comes from the same worker, with the same samples, as in the uninterrupted run. Bad samples are
skipped deterministically (the same bytes fail the same way), so resumption stays exact with them.
Changing ``world_size`` or ``num_workers`` changes the dealing; such a resume starts every slot at the
next epoch (reported, not exact).

Bad samples
-----------
An index entry without all five members, a member span past the end of the tar (truncated shard), a member
that fails ``shards_spec.codec.decode_member`` (bounded, no pickle), or inconsistent arrays (lengths,
image-token ids beyond the sample's images, key mismatch) make the sample *bad*: it is reported with the
batch it was skipped in (shard, key, reason), counted, and the batch is completed with the following good
samples (a batch left short at the end of an epoch takes the epoch's first good samples instead, which
keeps the next epoch aligned). A shard whose index sidecar is missing or unreadable is indexed by walking its tar headers instead
(with a warning). A slot that finds no good sample in a whole epoch raises (the run would otherwise spin).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from .collate import CollateConfig, Sample, collate
from .read import DEFAULT_BASE_VOCAB, BadSample, FileCache, IndexCache, _warn, read_sample
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


# ============================================================================ the dataset (runs in workers)
class StreamDataset(IterableDataset):
    """Endless collated batches of one stream for one rank; see the module docstring."""

    def __init__(self, shards: list[ShardRef], cfg: StreamConfig, rank: int = 0, world_size: int = 1,
                 start: dict[int, tuple[int, int]] | None = None, worker_offset: int = 0):
        super().__init__()
        if not shards:
            raise ValueError(f"stream {cfg.name}: no shards")
        self.shards, self.cfg = shards, cfg
        self.rank, self.world_size = rank, world_size
        self.start = dict(start or {})
        self.worker_offset = worker_offset

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        if info is None:
            worker_id, num_workers = 0, 1
        else:
            worker_id, num_workers = info.id, info.num_workers
            torch.set_num_threads(1)
        worker = (worker_id + self.worker_offset) % num_workers
        return self.batches(worker, num_workers)

    def batches(self, worker: int, num_workers: int) -> Iterator[dict]:
        cfg = self.cfg
        plan = SlotPlan(self.shards, cfg, self.rank, self.world_size, worker, num_workers)
        files = FileCache(cfg.interleave + 2)
        epoch, pos = self.start.get(worker, (0, 0))
        pending: list[Sample] = []
        bad: list[dict] = []
        barren_epochs = 0
        try:
            while True:
                ep = plan.epoch(epoch)
                full_epoch, good = pos == 0, 0
                while pos < len(ep.order):
                    sid, entry = ep.order[pos]
                    pos += 1
                    shard = self.shards[sid]
                    try:
                        smp = read_sample(files, shard, entry, epoch, plan.index)
                    except BadSample as exc:
                        bad.append({"stream": cfg.name, "shard": shard.path, "key": entry.get("key", "?"),
                                    "reason": str(exc)})
                        continue
                    good += 1
                    pending.append(smp)
                    if len(pending) == cfg.batch_size:
                        batch = collate(pending, cfg.collate, cfg.name)
                        batch.update(worker=worker, cursor=(epoch, pos), bad=bad, epoch=epoch)
                        pending, bad = [], []
                        yield batch
                if pending and good > 0:
                    # bad samples left the epoch's last batch short: complete it with the epoch's first good
                    # samples, so that the next epoch starts aligned with its batches
                    for sid, entry in ep.order:
                        if len(pending) == cfg.batch_size:
                            break
                        try:
                            pending.append(read_sample(files, self.shards[sid], entry, epoch, plan.index))
                        except BadSample:
                            continue
                    if len(pending) == cfg.batch_size:
                        batch = collate(pending, cfg.collate, cfg.name)
                        batch.update(worker=worker, cursor=(epoch + 1, 0), bad=bad, epoch=epoch)
                        pending, bad = [], []
                        yield batch
                if full_epoch and good == 0:
                    barren_epochs += 1
                    if barren_epochs >= 2:
                        raise RuntimeError(
                            f"stream {cfg.name}: rank {self.rank} worker {worker} found no readable sample in "
                            f"two whole epochs ({len(bad)} bad); check the shards")
                else:
                    barren_epochs = 0
                epoch, pos = epoch + 1, 0
        finally:
            files.close()


# ============================================================================ main-process side
class StreamLoader:
    """The trainer's handle on one stream: a DataLoader over :class:`StreamDataset` plus the position
    bookkeeping (batches consumed, each worker's cursor, bad-sample count) that goes into checkpoints."""

    def __init__(self, shards: list[ShardRef], cfg: StreamConfig, rank: int, world_size: int,
                 num_workers: int, prefetch_factor: int = 2, state: dict | None = None):
        self.cfg = cfg
        self.num_workers = num_workers
        self.world_size = world_size
        self.batches = 0
        self.bad = 0
        self.cursors: dict[int, tuple[int, int]] = {}
        slots = max(num_workers, 1)
        if state:
            self.batches = int(state["batches"])
            self.bad = int(state.get("bad", 0))
            cursors = {int(k): (int(v[0]), int(v[1])) for k, v in (state.get("cursors") or {}).items()}
            if int(state.get("num_workers", num_workers)) != num_workers or int(
                    state.get("world_size", world_size)) != world_size:
                nxt = max([e for e, _ in cursors.values()], default=0) + 1
                _warn(f"stream {cfg.name}: checkpoint had world_size {state.get('world_size')} x "
                      f"num_workers {state.get('num_workers')}, now {world_size} x {num_workers}; "
                      f"every slot restarts at epoch {nxt} (data order not exact)")
                cursors = {w: (nxt, 0) for w in range(slots)}
            self.cursors = cursors
        self.dataset = StreamDataset(shards, cfg, rank, world_size, start=self.cursors,
                                     worker_offset=self.batches % slots)
        kwargs: dict[str, Any] = {}
        if num_workers > 0:
            kwargs.update(prefetch_factor=prefetch_factor, persistent_workers=False)
        self.loader = DataLoader(self.dataset, batch_size=None, num_workers=num_workers, **kwargs)
        self._it: Iterator | None = None

    def start(self) -> None:
        if self._it is None:
            self._it = iter(self.loader)

    def next(self) -> dict:
        self.start()
        batch = next(self._it)
        worker = int(batch.pop("worker"))
        epoch, pos = batch.pop("cursor")
        self.cursors[worker] = (int(epoch), int(pos))
        self.batches += 1
        self.bad += len(batch["bad"])
        return batch

    def state_dict(self) -> dict:
        return {"batches": self.batches, "bad": self.bad, "num_workers": self.num_workers,
                "world_size": self.world_size, "cursors": {str(k): list(v) for k, v in sorted(self.cursors.items())}}

    def close(self) -> None:
        self._it = None


__all__ = ["BadSample", "DEFAULT_BASE_VOCAB", "EpochPlan", "FileCache", "IndexCache", "SlotPlan", "StreamConfig",
           "StreamDataset", "StreamLoader", "block_order", "deal", "epoch_shard_order", "interleave", "pad_to_batches",
           "part_indices", "read_sample"]
