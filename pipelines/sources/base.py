"""The source contract: what a dataset module implements, what the build hands it, what it must never do.

A source turns one dataset's files into samples in three steps, which the build (``pipelines.build.plan_jobs``)
calls in this order, each exactly once per build:

1. ``records(ctx)`` reads the dataset's files (native layout, or RadFM's split files in ``ctx.radfm_dir``) and
   yields one :class:`~pipelines.records.Record` per usable item and one :class:`~pipelines.records.Reject` per
   row, entry or file that cannot be used, with a reason code (``missing_file``, ``bad_row``, ``bad_file`` …).
   Every data row of every input file ends up as records or rejects. Tables, JSON files and text files (reports)
   are read with :mod:`pipelines.sources.tables` (rows, items, text or rejects: a broken file is a ``bad_file``
   reject, a broken line a ``bad_row``), image paths resolved with :mod:`pipelines.sources.images` or
   ``ctx.resolver``.
2. ``vocabulary(records, ctx)`` is the dataset-wide pass: from all records (both splits) and the dataset's
   optional dataset-wide files it returns a frozen :class:`Vocabulary` (modality names, diagnoses, finding
   classes …) that tasks draw negatives from and the keyword lexicon adds to.
3. ``samples(record, vocab, ctx)`` turns one record into its samples by calling registered tasks
   (``ctx.sample(record, SomeTaskInputs(...))``); it sees the whole dataset only through ``vocab``.

What the build does for every source, so a source need not (and must not) do it again:

* **text hygiene** on every record (``pipelines.hygiene``): undecodable bytes, Unicode normalisation, control
  characters (``bad_text`` above a threshold), with the counts recorded in each sample's ``meta.json``;
* **confinement**: every image path of every record is normalised and must stay inside the raw root
  (``outside_root``); shard workers check again, symbolic links and slice-folder files included;
* **isolation**: an exception raised by ``records``, ``vocabulary`` or ``samples`` is a bug of ours, reported as
  ``internal_error`` (the build then fails after writing what it could); a record that gives no sample is a
  ``no_sample`` reject; a record with a split other than ``train``/``validate``/``test`` a ``bad_row``.

What a source must never do:

* raise on a bad row, entry or file: yield a ``Reject`` instead (an exception ends the reading of the dataset and
  fails the build);
* read image pixels: images are decoded by the shard workers (``pipelines.imaging``), which reject bad ones;
  ``records`` may read headers (a ``.npy`` shape) to expand references;
* keep state between calls or communicate through anything but its return values: ``samples`` must give the
  same samples for the same record and vocabulary, in any order and in any process;
* read a path outside the raw root: paths from split files go through ``ctx.resolver.resolve``, paths built from
  row values through ``ctx.resolver.confine``, text files through ``tables.text_file``.

A source module is a package ``pipelines/sources/<name>/`` whose ``__init__`` exposes ``SOURCE`` (an instance of
its ``Source`` subclass); its demo fixture (``fixture.py``, used only by ``pipelines.demo``) sits beside it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from pipelines import tasks
from pipelines.config import ImageConfig, TextConfig
from pipelines.paths import PathResolver
from pipelines.records import Record, Reject, SampleSpec


@dataclass(frozen=True)
class BuildContext:
    """What a source is given: where the dataset is, how to read it, and the build parameters tasks need."""

    raw: Path  # the dataset's raw root
    mode: str  # one of the source's ``modes``
    radfm_dir: Path  # where RadFM's split files are
    resolver: PathResolver  # maps RadFM's absolute cluster paths onto ``raw``
    seed: int = 0
    image: ImageConfig = field(default_factory=ImageConfig)
    text: TextConfig = field(default_factory=TextConfig)

    def sample(self, record: Record, inputs: tasks.TaskInputs) -> SampleSpec:
        """One sample of ``record`` from the registered task that ``inputs`` belongs to (seeded by this build)."""
        return tasks.sample(self.seed, record, inputs, max_images=self.image.max_images)


@dataclass(frozen=True)
class Vocabulary:
    """The dataset-wide facts a source's ``samples`` may use, computed once after ``records``.

    A source with dataset-wide sets subclasses this (frozen, tuples); ``label_terms`` is what joins the keyword
    lexicon. ``rejects`` reports dataset-wide files that were present but unusable (they are skipped).
    """

    rejects: tuple[Reject, ...] = ()

    def label_terms(self) -> tuple[str, ...]:
        return ()


class Source(ABC):
    """Base class of a source module's ``SOURCE`` object; see the module docstring for the contract."""

    #: Registry id: the ``--dataset`` value, the shard-name prefix and the output folder.
    name: ClassVar[str]
    #: Supported ``--mode`` values (``radfm``: RadFM's split files; ``native``: the publisher's own files).
    modes: ClassVar[tuple[str, ...]]
    default_mode: ClassVar[str]
    #: Label names the dataset always has (finding classes …), added to the keyword lexicon.
    keyword_terms: ClassVar[tuple[str, ...]] = ()
    #: Default ``--max-reject-fraction``: a build that rejects a larger share of its inputs fails (after writing
    #: everything). A source whose files are known to hold many unusable rows declares a larger value.
    max_reject_fraction: ClassVar[float] = 0.25

    @abstractmethod
    def records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        """Every usable item of the dataset as a record, everything else as a reject (never raise)."""

    def vocabulary(self, records: Sequence[Record], ctx: BuildContext) -> Vocabulary:
        """The dataset-wide pass over all records (default: nothing dataset-wide)."""
        return Vocabulary()

    @abstractmethod
    def samples(self, record: Record, vocab: Vocabulary, ctx: BuildContext) -> list[SampleSpec]:
        """The samples of one record (possibly none), built by registered tasks."""

    def label_terms(self, vocab: Vocabulary) -> tuple[str, ...]:
        """The dataset's own label names for the keyword lexicon: ``keyword_terms`` plus the vocabulary's."""
        return tuple(self.keyword_terms) + vocab.label_terms()

    def reject(self, source_id: str, file: str, reason: str, message: str, task: str = "") -> Reject:
        """A planning-stage reject of this dataset."""
        return Reject(self.name, source_id, file, reason, message, "plan", task)
