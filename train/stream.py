"""One endless, exactly resumable stream of collated batches per modality (2D or 3D).

Design
------
The global sequence of batches of a stream is a pure function of ``(seed, stream, global batch size G, lanes L)``
and the shards' index sidecars (SPEC §4); it does not depend on the world size ``W`` or the number of DataLoader
workers ``N`` (elastic determinism, as MosaicML Streaming's). The stream is split into ``L`` *lanes*
(canonical partitions, by default the world size of the run's first launch); each lane plans its samples
epoch by epoch:

1. **Shard list of an epoch.** Each shard appears ``floor(weight)`` times, plus once more with probability
   ``frac(weight)`` (a seeded draw per shard and epoch); the list is shuffled with the epoch's seed.
2. **Dealing to lanes.** Position ``t`` of that list goes to lane ``t % L``. With fewer shards than lanes the
   list wraps around (``t`` runs to ``L``, shard ``t % n_shards``) and the lanes that share a shard split its
   samples (part ``p`` of ``n`` takes samples ``p, p+n, ...``; a part beyond the samples takes sample
   ``p % n_samples``), so every lane always has data, whatever the shard count.
3. **Interleave.** A lane reads its shards ``M`` (``interleave``) at a time, one sample from each in turn;
   an exhausted shard is replaced by the lane's next one. Within a shard, samples are read in tar order.
4. **Block shuffle.** The read order is cut into blocks of ``K`` samples; each block is permuted with a
   seeded RNG. With ``length_grouping`` the permuted block is then sorted by token count, cut into lane
   batches, and the batch order shuffled (a partial batch stays last), so batches hold similar lengths.
5. **Whole batches per epoch.** A lane's epoch is completed to whole lane batches (``G / L`` samples) with
   repeats of its own samples (with grouping the nearest lengths), so batches never straddle epochs.
6. **Global batches.** Global batch ``b`` is lane batch ``b`` of lane 0, then lane 1, ... (``G`` samples). Rank
   ``r`` takes positions ``[r*G/W, (r+1)*G/W)`` of it (``W`` must divide ``G``), so with ``W = L`` a rank reads
   exactly one lane, and with ``W != L`` it reads several lanes or a share of one. Worker ``w`` of a rank
   produces the rank's batches ``start + w, start + w + N, ...``; PyTorch's DataLoader polls workers round-robin,
   so batches arrive in order. Every worker reads only its own batches' samples (one positioned read of each
   sample's member span, ``train.read``), moving forward through the lane's shards.

Epochs and equal step counts ("repeating with a fixed step count")
------------------------------------------------------------------
An *epoch* is per lane: one pass over the shard parts dealt to that lane for that epoch number. When a lane
has exhausted its epoch it continues with the next epoch (a new shuffle and a new dealing), so every stream
is endless and the run length is set in optimizer steps, identical on all ranks. Nothing can hang on uneven
data (webdataset #188/#225, litData #233). The price: lanes with fewer samples revisit their data sooner;
within one epoch number lanes see disjoint samples (except in the wrap-around case above).

Resumption (elastic)
--------------------
The position of a stream is one number, the global batches consumed ``B`` (the step schedule knows it too),
plus per lane the marker ``(epoch, first batch of that epoch)`` so that a resumed worker plans one epoch
rather than all since the start. Every rank's markers are merged into the checkpoint (:func:`merge_states`);
a run resumed on any world size and worker count starts at global batch ``B`` and sees exactly the batches
the uninterrupted run would have seen. ``G`` and ``L`` are part of the order and are kept from the checkpoint
(changing them is refused). Collation is per rank, so RadFM's batch-of-one rules (256^2 for a lone 3D volume)
follow the per-rank batch ``G / W``: the samples are exact, their pixel geometry can differ across world sizes.

Bad samples
-----------
An index entry without all five members, a member span past the end of the tar (truncated shard), a member
that fails to decode (``shards_spec.codec``: bounded, no pickle, the image's zstd checksum), or inconsistent
arrays (lengths, image-token ids beyond the sample's images, key mismatch) make the sample *bad*. Its place in
the batch is taken by the next good sample of its lane's epoch order (wrapping to the epoch's start), which
also keeps its own place: batch boundaries never move, so a bad sample changes nothing for other batches, other
ranks or other world sizes. It is reported once, by the rank whose share holds its position (shard, key,
reason), and counted. A shard whose index sidecar is missing or unreadable is indexed by walking its tar
headers instead (with a warning). A lane epoch without one good sample raises (the shards need fixing).
"""

from __future__ import annotations

import gc
from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from .collate import Sample, collate
from .plan import (
    EpochPlan,
    LaneCursor,
    LanePlan,
    StreamConfig,
    block_order,
    check_world,
    deal,
    epoch_shard_order,
    global_batch_keys,
    interleave,
    pad_to_batches,
    part_indices,
    planned_batch,
    rank_pieces,
)
from .read import DEFAULT_BASE_VOCAB, BadSample, FileCache, IndexCache, read_sample
from .sources import ShardRef


# ============================================================================ the dataset (runs in workers)
class StreamDataset(IterableDataset):
    """Endless collated batches of one stream for one rank (its share of every global batch from ``start``
    on); ``lane_epochs`` are the lanes' ``(epoch, first batch)`` markers. See the module docstring."""

    def __init__(self, shards: list[ShardRef], cfg: StreamConfig, rank: int = 0, world_size: int = 1,
                 start: int = 0, lane_epochs: dict[int, tuple[int, int]] | None = None):
        super().__init__()
        if not shards:
            raise ValueError(f"stream {cfg.name}: no shards")
        check_world(cfg, world_size)
        self.shards, self.cfg = shards, cfg
        self.rank, self.world_size = rank, world_size
        self.start = int(start)
        self.lane_epochs = dict(lane_epochs or {})

    def __iter__(self) -> Iterator[dict]:
        info = get_worker_info()
        if info is None:
            worker, num_workers = 0, 1
        else:
            worker, num_workers = info.id, info.num_workers
            torch.set_num_threads(1)
            # the objects inherited from the trainer (torch's, the model's) are never garbage here: keep Python's
            # full collections from walking them (~0.1 s each, and copy-on-write of their pages)
            gc.freeze()
        return self.batches(worker, num_workers)

    def batches(self, worker: int, num_workers: int) -> Iterator[dict]:
        """The rank's batches ``start + worker + k * num_workers`` for k = 0, 1, ..."""
        cfg = self.cfg
        pieces = rank_pieces(cfg, self.world_size, self.rank)
        index = IndexCache()
        cursors = {lane: LaneCursor(LanePlan(self.shards, cfg, lane, index), *self.lane_epochs.get(lane, (0, 0)))
                   for lane, _, _ in pieces}
        files = FileCache(cfg.interleave * len(pieces) + 2)
        known_bad: dict[tuple[int, str], str] = {}  # (shard, key) -> reason: decoded once per worker

        def read(epoch: int, sid: int, entry: dict) -> Sample:
            k = (sid, str(entry.get("key", "?")))
            if k in known_bad:
                raise BadSample(known_bad[k])
            try:
                return read_sample(files, self.shards[sid], entry, epoch, index)
            except BadSample as exc:
                known_bad[k] = str(exc)
                raise

        b = self.start + worker
        try:
            while True:
                samples: list[Sample] = []
                bad: list[dict] = []
                for lane, ep, pos in planned_batch(cursors, pieces, b):
                    sid, entry = ep.order[pos]
                    try:
                        samples.append(read(ep.epoch, sid, entry))
                        continue
                    except BadSample as exc:
                        bad.append({"stream": cfg.name, "shard": self.shards[sid].path,
                                    "key": entry.get("key", "?"), "reason": str(exc)})
                    samples.append(self._substitute(ep, pos, lane, read))
                batch = collate(samples, cfg.collate, cfg.name)
                batch.update(index=b, bad=bad, lanes={lane: (cursors[lane].epoch, cursors[lane].first)
                                                      for lane, _, _ in pieces},
                             epoch=max(cursors[lane].epoch for lane, _, _ in pieces))
                yield batch
                b += num_workers
        finally:
            files.close()

    def _substitute(self, ep: EpochPlan, pos: int, lane: int, read) -> Sample:
        """The next good sample after ``pos`` in the lane's epoch order, wrapping to the epoch's start."""
        n = len(ep.order)
        for step in range(1, n):
            sid, entry = ep.order[(pos + step) % n]
            try:
                return read(ep.epoch, sid, entry)
            except BadSample:
                continue
        raise RuntimeError(f"stream {self.cfg.name}: lane {lane} found no readable sample in epoch {ep.epoch} "
                           f"({n} samples planned); check the shards")


# ============================================================================ main-process side
def _as_is(batch: dict) -> dict:
    return batch


def merge_states(states: list[dict]) -> dict:
    """One stream state from every rank's :meth:`StreamLoader.state_dict` (the checkpoint's): the common batch
    count, each lane's newest epoch marker, bad samples summed over ranks."""
    if not states:
        raise ValueError("no stream states to merge")
    first = states[0]
    for st in states[1:]:
        for key in ("batches", "global_batch", "lanes"):
            if st[key] != first[key]:
                raise ValueError(f"stream states disagree on {key}: {first[key]} vs {st[key]}")
    cursors: dict[int, tuple[int, int]] = {}
    for st in states:
        for k, v in st["cursors"].items():
            mark = (int(v[0]), int(v[1]))
            cursors[int(k)] = max(cursors.get(int(k), mark), mark)
    return {**first, "bad": sum(int(st.get("bad", 0)) for st in states),
            "cursors": {str(k): list(v) for k, v in sorted(cursors.items())}}


class StreamLoader:
    """The trainer's handle on one stream: a DataLoader over :class:`StreamDataset` plus the position
    bookkeeping (global batches consumed, lane epoch markers, bad-sample count) that goes into checkpoints."""

    def __init__(self, shards: list[ShardRef], cfg: StreamConfig, rank: int, world_size: int,
                 num_workers: int, prefetch_factor: int = 2, state: dict | None = None):
        check_world(cfg, world_size)
        self.cfg = cfg
        self.num_workers = num_workers
        self.world_size = world_size
        self.batches = 0
        self.bad = 0
        self.cursors: dict[int, tuple[int, int]] = {}  # lane -> (epoch, first lane batch of that epoch)
        if state:
            if "global_batch" not in state:
                raise ValueError(f"stream {cfg.name}: the checkpoint holds per-worker stream cursors of an older "
                                 "trainer; resume it with that version, or start a new run")
            if int(state["global_batch"]) != cfg.batch_size or int(state["lanes"]) != cfg.lanes:
                raise ValueError(
                    f"stream {cfg.name}: the checkpoint's order uses global batch {state['global_batch']} and "
                    f"{state['lanes']} lanes, the config {cfg.batch_size} and {cfg.lanes}; drop the overrides "
                    f"(global_batch_size_{cfg.name}, lanes) to keep the checkpoint's, or start a new run")
            self.batches = int(state["batches"])
            self.bad = int(state.get("bad", 0))
            self.cursors = {int(k): (int(v[0]), int(v[1])) for k, v in (state.get("cursors") or {}).items()}
        self.dataset = StreamDataset(shards, cfg, rank, world_size, start=self.batches, lane_epochs=self.cursors)
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
        index = int(batch.pop("index"))
        if index != self.batches:  # workers must deliver in order; anything else is a bug of ours
            raise RuntimeError(f"stream {self.cfg.name}: expected global batch {self.batches}, got {index}")
        for lane, mark in batch.pop("lanes").items():
            self.cursors[int(lane)] = (int(mark[0]), int(mark[1]))
        self.batches += 1
        self.bad += len(batch["bad"])
        return batch

    def state_dict(self) -> dict:
        return {"batches": self.batches, "bad": self.bad, "global_batch": self.cfg.batch_size,
                "lanes": self.cfg.lanes, "num_workers": self.num_workers, "world_size": self.world_size,
                "cursors": {str(k): list(v) for k, v in sorted(self.cursors.items())}}

    def close(self) -> None:
        self._it = None


__all__ = ["BadSample", "DEFAULT_BASE_VOCAB", "EpochPlan", "FileCache", "IndexCache", "LaneCursor", "LanePlan",
           "StreamConfig", "StreamDataset", "StreamLoader", "block_order", "check_world", "deal", "epoch_shard_order",
           "global_batch_keys", "interleave", "merge_states", "pad_to_batches", "part_indices", "planned_batch",
           "rank_pieces", "read_sample"]
