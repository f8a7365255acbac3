"""The build's plan, streamed through local spool files: what the driver holds for a plan of millions of samples.

A plan is every sample a build writes, grouped by (split, stream) and partitioned into shards by key
(:func:`pipelines.incremental.partition_sorted`). Held as ``Job`` objects it costs about 1.3 GiB per million
MIMIC-shaped samples (``bench/memory.py``), ~21 GiB for RadFM's 16M. Here records and sample specs are appended to
two spool files as they are made (:class:`Spool`: pickled entries, one per record / per sample), and memory holds
per sample only its 80-bit key, its (split, stream) group and its spool position (:class:`Plan`), then per kept sample
its position in key order: a few tens of bytes. A shard's jobs are read back from the spools when its fingerprint is
computed (:func:`plan_shards`) and again when its task is submitted (:meth:`Plan.materialise`, a few shards at a
time: ``pipelines.distributor``), so the driver's memory is bounded by the shards in flight, not by the plan.

The result is exactly the in-memory plan: the same jobs (equal records and specs), the same duplicates rejected (the
first sample of a key in record order wins), the same shard membership, order and fingerprints, hence byte-identical
shards and manifests.

The spools are private to the build process: a folder made by :func:`tempfile.mkdtemp` (mode 0700) under
``--plan-dir`` (default: the system's temporary directory, ``TMPDIR``), written and read back only by the process
that made it, never published, and removed when the build ends. They take about the pickled size of the records
and specs on disk (``bench/memory.py`` prints it per million records): put ``--plan-dir`` on a disk, not on a
memory-backed ``/tmp``.
"""

from __future__ import annotations

import os
import pickle
from array import array
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import numpy as np

from pipelines.failures import describe
from pipelines.incremental import LOW_BITS, input_identities, key_bits, partition_sorted, shard_fingerprint
from pipelines.records import Job, Record, Reject
from pipelines.sources import BuildContext, Source, Vocabulary
from pipelines.worker import ShardId, ShardPlan
from shards_spec.hashing import sample_key
from shards_spec.layout import SPLITS, STREAMS, shard_path

#: The (split, stream) groups in the order shards are planned (sorted, as the build always planned them).
GROUPS: tuple[tuple[str, str], ...] = tuple(sorted((split, stream) for split in SPLITS for stream in STREAMS))
_GROUP = {group: i for i, group in enumerate(GROUPS)}


class Spool(Sequence):
    """An append-only file of pickled objects, read back by position (``spool[i]``) or in order (``iter``).

    Memory: 8 bytes per entry (its end offset). Entries are written and read by this process only (see the module
    docstring): the file is never an input of the build."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self._file = open(self.path, "x+b")  # noqa: SIM115 (closed by close())
        self._ends = array("Q")
        self._size = 0
        self._pending = False

    def append(self, item: Any) -> int:
        """Write ``item``; returns its position."""
        data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)
        self._file.write(data)
        self._size += len(data)
        self._ends.append(self._size)
        self._pending = True
        return len(self._ends) - 1

    @property
    def nbytes(self) -> int:
        return self._size

    def __len__(self) -> int:
        return len(self._ends)

    def _flush(self) -> None:
        if self._pending:
            self._file.flush()
            self._pending = False

    @overload
    def __getitem__(self, i: int) -> Any: ...

    @overload
    def __getitem__(self, i: slice) -> list[Any]: ...

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(f"spool position {i} out of range ({len(self)} entries)")
        self._flush()
        start = self._ends[i - 1] if i else 0
        return pickle.loads(os.pread(self._file.fileno(), self._ends[i] - start, start))

    def __iter__(self) -> Iterator[Any]:
        self._flush()
        n = len(self)
        with open(self.path, "rb") as fh:
            for _ in range(n):
                yield pickle.load(fh)

    def close(self) -> None:
        self._file.close()


@dataclass(frozen=True)
class PlannedShard(ShardId):
    """One shard of a plan without its jobs: what decides whether it is built (``tar_path``, ``fingerprint``) and
    where its jobs are (``members``: spool positions of its samples, in key order)."""

    members: np.ndarray = field(repr=False, compare=False)

    @property
    def size(self) -> int:
        return len(self.members)


class Plan:
    """Every sample of a build as keys and spool positions (see the module docstring); made by :func:`derive_plan`.

    ``records`` is where the records are (a :class:`Spool`, or any sequence), ``specs`` a spool of
    ``(key, record position, SampleSpec)`` per derived sample, ``rejects`` what fell out while deriving samples."""

    def __init__(self, records: Sequence[Record], specs: Spool, hi: np.ndarray, lo: np.ndarray, groups: np.ndarray,
                 splits: set[str] | None, rejects: list[Reject]):
        self.records = records
        self.specs = specs
        self.rejects = rejects
        # key order; among samples of one key, record order first (the first one is kept, the others are duplicates)
        order = np.lexsort((np.arange(len(hi), dtype=np.int64), lo, hi))
        hi, lo = hi[order], lo[order]
        repeat = np.zeros(len(order), dtype=bool)
        repeat[1:] = (hi[1:] == hi[:-1]) & (lo[1:] == lo[:-1])
        for position in order[repeat]:
            key, index, spec = specs[int(position)]
            record = records[index]
            first = record.images[0].path if record.images else ""
            rejects.append(Reject(record.dataset, record.source_id, first, "duplicate",
                                  f"same source and task as an earlier row ({key})", "plan", spec.task))
        keep = ~repeat
        if splits is not None:
            wanted = np.array([split in splits for split, _ in GROUPS])
            keep &= wanted[groups[order]]
        #: spool positions of the planned samples, in key order
        self.order = order[keep]
        self._hi, self._lo, self._groups = hi[keep], lo[keep], groups[order[keep]]

    def __len__(self) -> int:
        return len(self.order)

    def job(self, position: int) -> Job:
        key, index, spec = self.specs[int(position)]
        return Job(key, self.records[index], spec)

    def jobs(self, positions: Iterable[int] | None = None) -> Iterator[Job]:
        """The jobs at ``positions`` (default: every planned job, in key order)."""
        for position in self.order if positions is None else positions:
            yield self.job(position)

    def partition(self, per_shard_2d: int, per_shard_3d: int) -> Iterator[tuple[str, str, int, np.ndarray]]:
        """``(split, stream, shard number, members)`` of every shard: each group's samples partitioned by key
        (:func:`pipelines.incremental.partition_sorted`), groups in :data:`GROUPS` order."""
        for g, (split, stream) in enumerate(GROUPS):
            where = np.flatnonzero(self._groups == g)
            if not len(where):
                continue
            per_shard = per_shard_2d if stream == "2d" else per_shard_3d
            members = self.order[where]
            for number, low, high in partition_sorted(self._hi[where], self._lo[where], per_shard):
                yield split, stream, number, members[low:high]

    def materialise(self, shard: PlannedShard) -> ShardPlan:
        """The shard with its jobs read back from the spools (what a shard task is given)."""
        return ShardPlan(shard.dataset, shard.split, shard.stream, shard.index, shard.tar_path, shard.fingerprint,
                         tuple(self.jobs(shard.members)))

    def close(self) -> None:
        self.specs.close()
        if isinstance(self.records, Spool):
            self.records.close()


def derive_plan(source: Source, ctx: BuildContext, records: Sequence[Record], vocab: Vocabulary, splits: set[str] | None,
                folder: Path | str) -> Plan:
    """Records -> samples, spooled to ``<folder>/samples.spool``.

    A second sample with the same key is a ``duplicate`` reject, a record without samples a ``no_sample`` one, an
    exception of the source an ``internal_error``; only samples of ``splits`` (None: all) are planned."""
    specs = Spool(Path(folder) / "samples.spool")
    hi, lo, groups = array("Q"), array("H"), array("B")
    rejects: list[Reject] = []
    low_mask = (1 << LOW_BITS) - 1
    for index, record in enumerate(records):
        first = record.images[0].path if record.images else ""
        try:
            made = source.samples(record, vocab, ctx)
        except Exception as exc:
            rejects.append(Reject(record.dataset, record.source_id, first, "internal_error", describe(exc), "plan"))
            continue
        if not made:
            rejects.append(Reject(record.dataset, record.source_id, first, "no_sample",
                                  "no task applies to this record (its fields leave every task without input)", "plan"))
        group = _GROUP[(record.split, record.stream)]  # checked by pipelines.build.check_record
        for spec in made:
            key = sample_key(record.dataset, record.source_id, spec.task, spec.variant)
            specs.append((key, index, spec))
            bits = key_bits(key)
            hi.append(bits >> LOW_BITS)
            lo.append(bits & low_mask)
            groups.append(group)
    as_numpy = [np.frombuffer(a, dtype=t) if len(a) else np.zeros(0, dtype=t)
                for a, t in ((hi, np.uint64), (lo, np.uint16), (groups, np.uint8))]
    return Plan(records, specs, *as_numpy, splits, rejects)


def plan_shards(plan: Plan, out: Path | str, dataset: str, per_shard_2d: int, per_shard_3d: int, environment: str,
                raw: Path, input_identity: str, stores: dict[str, Path] | None = None) -> list[PlannedShard]:
    """Every shard of ``plan`` with its path and fingerprint (:func:`pipelines.incremental.shard_fingerprint`), one
    shard's jobs in memory at a time; the identities of a shard's input files are read with it."""
    shards = []
    with ThreadPoolExecutor(max_workers=8) as pool:  # one pool for every shard (see input_identities)
        for split, stream, number, members in plan.partition(per_shard_2d, per_shard_3d):
            jobs = tuple(plan.jobs(members))
            identities = input_identities(raw, (ref for job in jobs for ref in job.record.images), input_identity,
                                          stores=stores, pool=pool)
            shards.append(PlannedShard(dataset, split, stream, number,
                                       str(shard_path(out, dataset, stream, split, number)),
                                       shard_fingerprint(environment, jobs, identities), members))
    return shards
