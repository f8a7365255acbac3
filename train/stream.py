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
that fails to decode (``shards_spec.codec``: bounded, no pickle, the image's zstd checksum), or inconsistent arrays (lengths,
image-token ids beyond the sample's images, key mismatch) make the sample *bad*: it is reported with the
batch it was skipped in (shard, key, reason), counted, and the batch is completed with the following good
samples (a batch left short at the end of an epoch takes the epoch's first good samples instead, which
keeps the next epoch aligned). A shard whose index sidecar is missing or unreadable is indexed by walking its tar headers instead
(with a warning). A slot that finds no good sample in a whole epoch raises (the run would otherwise spin).
"""

from __future__ import annotations

import gc
from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from .collate import Sample, collate
from .plan import (
    EpochPlan,
    SlotPlan,
    StreamConfig,
    block_order,
    deal,
    epoch_shard_order,
    interleave,
    pad_to_batches,
    part_indices,
)
from .read import DEFAULT_BASE_VOCAB, BadSample, FileCache, IndexCache, _warn, read_sample
from .sources import ShardRef


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
            # the objects inherited from the trainer (torch's, the model's) are never garbage here: keep Python's
            # full collections from walking them (~0.1 s each, and copy-on-write of their pages)
            gc.freeze()
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
def _as_is(batch: dict) -> dict:
    return batch



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
        # collate_fn: batches arrive collated; DataLoader's default (default_convert) would walk every batch dict
        self.loader = DataLoader(self.dataset, batch_size=None, num_workers=num_workers, collate_fn=_as_is, **kwargs)
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
