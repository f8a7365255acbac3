"""What the twelve X-ray classification sources share: label table -> findings -> open / yes-no samples, written once.

A classification source (VinDr-CXR, ChestX-ray14, CheXpert …) subclasses :class:`DiagnosisSource` and declares its
label set (``findings``, ``normal``), its prompt kind, which RadFM files hold its rows and how its rows are recognised
there (``radfm_path``), and implements ``native_records``: the publisher's files -> one :class:`DiagnosisFields` record
per image (or study) with the finding names present. Everything after that is here:

* **Label tables as polars frames.** :func:`label_frame` reads a table through the shared reader
  (:mod:`pipelines.sources.tables`: every line a row or a ``bad_row`` reject) into a polars frame of strings with the
  row's line (``LINE``), so a source's label logic is column arithmetic (flags, group-bys, joins) over hundreds of
  thousands of rows. :func:`flag_labels` turns one-hot label columns (``1``/``0``/``-1``/blank, as ints or floats)
  into per-image findings with a documented merge rule for several readers per image (:func:`vote`).
* **RadFM split mode** (:meth:`DiagnosisSource.radfm_records`): RadFM's open files (``image_path,label``) and balance
  files (``image_path,disease,label``); a shared file (the ``chestxray_*`` files cover nine datasets) gives each
  dataset the rows whose path has its shape, the others are not its rejects. Cluster paths are remapped onto the raw
  root by ``ctx.resolver``; RadFM's paths to PNG copies of DICOMs fall back to the DICOM (``converted_suffixes``).
* **Dataset-wide pass** (:meth:`DiagnosisSource.vocabulary`): the label set in the dataset's order, and the yes/no
  questions: per split and per finding as many "no" images (drawn, seeded, from the images known not to show it)
  as "yes" images (:func:`balanced_questions`).
* **Samples** (:meth:`DiagnosisSource.samples`): ``diagnosis_open`` (the finding names, or the normal label) and the
  image's ``diagnosis_yesno`` questions, through the registered tasks.

Splits where the publisher has none are :func:`hashed_split`: a fixed fraction by a hash of the item's id,
independent of ``--seed`` (builds with different seeds share their splits).
"""

from __future__ import annotations

import random
import re
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import polars as pl

from pipelines.hygiene import decode
from pipelines.paths import UnresolvedPath
from pipelines.records import FileReject, ImageRef, Record, RecordFields, Reject, SampleSpec
from pipelines.sources.base import BuildContext, Source, Vocabulary
from pipelines.sources.tables import FileProblem, _lines, file_reject, read_bytes, table_rows
from pipelines.tasks import DiagnosisOpenInputs, DiagnosisYesNoInputs
from pipelines.tasks.diagnosis_open import answer_for
from shards_spec.hashing import BUILD_SEP, seed_from, unit_hash

#: The frame column holding each row's line number in its file.
LINE = "_line"
#: Reasons of item-level rejects (SPEC §6).
NO_LABEL = "no_label"
NO_SPLIT = "no_split"
#: Share of items put in ``test`` by :func:`hashed_split`.
TEST_FRACTION = 0.2

# --------------------------------------------------------------------------------------------- records and vocabulary


@dataclass(frozen=True)
class DiagnosisFields(RecordFields):
    """One image (or study) read from the publisher's label files."""

    findings: tuple[str, ...]  # finding names present, in label-set order (empty: the image is normal)
    uncertain: tuple[str, ...] = ()  # findings marked uncertain: asked neither as yes nor as no
    labelled: bool = True  # False: no diagnosis label (OpenI studies that are only reported)
    view: str = ""  # PA / AP / L-CC / Frontal+Lateral … (informational)
    report: str = ""  # OpenI: "Findings: … Impression: …"


@dataclass(frozen=True)
class RadfmOpenFields(RecordFields):
    """A row of RadFM's open files (``chestxray_new.csv`` …): the ``label`` text is the answer, verbatim."""

    answer: str
    findings: tuple[str, ...]  # the names the answer lists, the normal label left out


@dataclass(frozen=True)
class RadfmYesNoFields(RecordFields):
    """A row of RadFM's balance files (``chestxray_balance_train_new.csv`` …)."""

    disease: str
    present: bool


Question = tuple[str, bool]  # (finding name, present)


@dataclass(frozen=True)
class DiagnosisVocabulary(Vocabulary):
    label_set: tuple[str, ...] = ()  # every finding name in the dataset's order, then the normal label
    normal: str = ""
    #: source id -> the yes/no questions of that image (native mode), see :func:`balanced_questions`
    questions: Mapping[str, tuple[Question, ...]] = field(default_factory=dict)

    def label_terms(self) -> tuple[str, ...]:
        return self.label_set


# --------------------------------------------------------------------------------------------- label tables (polars)


def label_frame(dataset: str, path: Path, required: tuple[str, ...], what: str, *,
                multiline: bool = False) -> tuple[pl.DataFrame | None, list[Reject]]:
    """The table at ``path`` as a polars frame of strings (column names stripped, first of equal names kept) with
    each row's line in ``LINE``, and the rejects of reading it (``bad_row`` lines; a missing or unreadable file is
    one reject and the frame is None). ``multiline``: values may span lines (report text), see ``tables.read_table``."""
    rows, rejects = [], []
    for item in table_rows(dataset, path, required, what, multiline=multiline):
        (rejects if isinstance(item, Reject) else rows).append(item)
    if any(isinstance(r, FileReject) for r in rejects):
        return None, rejects
    names = list(rows[0].values) if rows else list(required)
    data: dict[str, list] = {LINE: [r.line for r in rows]}
    for name in names:
        if name.strip() not in data:
            data[name.strip()] = [r.values.get(name, "").strip() for r in rows]
    schema = {k: (pl.Int64 if k == LINE else pl.String) for k in data}
    return pl.DataFrame(data, schema=schema), rejects


FLAGS = {"1": 1, "1.0": 1, "0": 0, "0.0": 0, "-1": -1, "-1.0": -1, "": None}


@dataclass(frozen=True)
class ImageLabels:
    """The labels of one item of a label table, merged over its rows."""

    key: str  # the item's id in the table
    lines: tuple[int, ...]  # the rows it was read from
    findings: tuple[str, ...] = ()
    uncertain: tuple[str, ...] = ()
    problem: str = ""  # not empty: no usable label (a ``no_label`` reject with this message)


def flag_labels(frame: pl.DataFrame, key: str, columns: Sequence[str], normal: str, *, uncertain: bool,
                dataset: str, file: str) -> tuple[list[ImageLabels], list[Reject]]:
    """One-hot label columns -> findings per item, merged over the item's rows (readers) by :func:`vote`.

    Values: ``1``/``1.0`` marked, ``0``/``0.0`` not marked, blank not mentioned (not marked), ``-1``/``-1.0``
    uncertain where ``uncertain`` (CheXpert) and a ``bad_row`` reject otherwise; any other value or an empty
    ``key`` rejects its row."""
    allowed = [k for k, v in FLAGS.items() if uncertain or v != -1]
    checks = [pl.col(c).is_in(allowed) for c in columns]
    frame = frame.with_columns(pl.all_horizontal(checks + [pl.col(key) != ""]).alias("_ok"))
    rejects = []
    for row in frame.filter(~pl.col("_ok")).iter_rows(named=True):
        bad = [f"{c}={row[c]!r}" for c in columns if row[c] not in allowed]
        problem = f"unknown label value(s) {', '.join(bad)}" if bad else f"empty {key}"
        rejects.append(Reject(dataset, f"{file}:line{row[LINE]}", file, "bad_row",
                              f"{file} line {row[LINE]} ({row[key] or 'no ' + key}): {problem}", "plan"))
    flags = frame.filter(pl.col("_ok")).with_columns(
        [pl.col(c).replace_strict(FLAGS, default=None, return_dtype=pl.Int8).alias(c) for c in columns])
    grouped = flags.group_by(key, maintain_order=True).agg(
        pl.col(LINE).alias("_lines"),
        pl.len().alias("_readers"),
        *[(pl.col(c) == 1).sum().alias(f"_yes_{c}") for c in columns],
        *[(pl.col(c) == -1).sum().alias(f"_unc_{c}") for c in columns],
    )
    out = []
    for row in grouped.iter_rows(named=True):
        yes = {c: row[f"_yes_{c}"] for c in columns}
        unsure = {c: row[f"_unc_{c}"] for c in columns}
        out.append(vote(str(row[key]), tuple(row["_lines"]), row["_readers"], yes, unsure, normal))
    return out, rejects


def vote(key: str, lines: tuple[int, ...], readers: int, yes: Mapping[str, int], unsure: Mapping[str, int],
         normal: str) -> ImageLabels:
    """The merge rule for one item read by ``readers`` readers (rows): a finding is present when **more than half**
    of them mark it (one reader: that reader; VinDr-CXR's three: two of three); a finding not present that some
    reader marks uncertain is uncertain. With no finding present the item is normal when more than half mark the
    normal label; otherwise it has no usable label (readers disagree, or only uncertain mentions)."""
    findings = tuple(c for c in yes if c != normal and 2 * yes[c] > readers)
    uncertain = tuple(c for c in yes if c != normal and c not in findings and unsure[c] > 0)
    if findings or (normal in yes and 2 * yes[normal] > readers):
        return ImageLabels(key, lines, findings, uncertain)
    if uncertain:
        problem = f"only uncertain observations ({', '.join(uncertain)}) and {normal!r} not marked"
    elif readers > 1:
        problem = f"no finding and not {normal!r} by a majority of its {readers} readers"
    else:
        problem = f"no finding marked and {normal!r} not marked"
    return ImageLabels(key, lines, (), uncertain, problem)


def row_rejects(dataset: str, file: str, frame: pl.DataFrame, key: str, column: str = "_problem") -> list[Reject]:
    """A ``bad_row`` reject for every row of ``frame`` whose ``column`` (a problem computed by the source) is not
    empty; the message names the row's line and its ``key`` value (the item it was about)."""
    return [Reject(dataset, f"{file}:line{line}", file, "bad_row", f"{file} line {line} ({item or 'no ' + key}): {problem}", "plan")
            for line, item, problem in frame.filter(pl.col(column) != "").select(LINE, key, column).iter_rows()]


def listed_labels(frame: pl.DataFrame, key: str, name: str, normal: str, order: Sequence[str], *,
                  conflict: bool = False) -> list[ImageLabels]:
    """Rows that each name one finding (or the normal label) of an item -> findings per item: the item's names
    but the normal label, in ``order`` (names not in it after, sorted). An item whose rows name only the normal label
    is normal. ``conflict``: an item whose rows name both findings and the normal label has no usable label (RSNA's
    ``Target`` 0 and 1, SIIM's ``-1`` beside a mask); otherwise its findings win (a reader's "No finding" row beside
    another's lesion)."""
    grouped = frame.group_by(key, maintain_order=True).agg(pl.col(LINE), pl.col(name).unique(maintain_order=True))
    out = []
    for row in grouped.iter_rows(named=True):
        names = set(row[name])
        findings = tuple(n for n in order if n in names) + tuple(sorted(names - set(order) - {normal}))
        lines = tuple(row[LINE])
        if findings and normal in names and conflict:
            out.append(ImageLabels(str(row[key]), lines, problem=f"rows disagree: {', '.join(findings)} and {normal!r}"))
        else:
            out.append(ImageLabels(str(row[key]), lines, findings))
    return out


def split_names(text: str) -> tuple[str, ...]:
    """Finding names of a label text (RadFM's ``label`` column, OpenI's ``Problems``): split at ``,`` ``;`` ``|``."""
    return tuple(dict.fromkeys(p.strip() for p in re.split(r"[,;|]", text) if p.strip()))


def text_lines(dataset: str, path: Path, what: str) -> Iterator[tuple[int, str] | Reject]:
    """The non-blank lines of a plain list file (COVIDx's ``train.txt``, ChestX-ray14's ``test_list.txt``) with their
    1-based line numbers, or one ``FileReject`` for a missing or unreadable file (read as the shared tables are)."""
    name = path.name
    if not path.exists():
        yield file_reject(dataset, name, "missing_file", f"{what} {path} not found")
        return
    try:
        text = decode(read_bytes(path))
    except FileProblem as exc:
        yield file_reject(dataset, name, "bad_file", f"{what}: {exc}")
        return
    for number, line in enumerate(_lines(text), start=1):
        if line.strip():
            yield number, line.strip()


def first_existing(raw: Path, candidates: Sequence[str]) -> Path:
    """The first of ``candidates`` (paths under ``raw``, the layouts a publisher has used) that exists, else the
    first (whose absence the reader then reports)."""
    return next((raw / c for c in candidates if (raw / c).exists()), raw / candidates[0])


def hashed_split(dataset: str, key: str, test_fraction: float = TEST_FRACTION) -> str:
    """``test`` for a fixed ``test_fraction`` of the keys (by a stable hash of dataset and key), else ``train``."""
    return "test" if unit_hash(dataset, "split", key, sep=BUILD_SEP) < test_fraction else "train"


# --------------------------------------------------------------------------------------------- yes/no questions


def balanced_questions(records: Iterable[Record], findings: Sequence[str], seed: int, dataset: str
                       ) -> dict[str, tuple[Question, ...]]:
    """The yes/no questions of every labelled image: in each split, for each finding, ``n`` images that show it
    ("yes") and ``n`` that are known not to show it ("no": neither present nor uncertain), ``n`` the smaller of the
    two counts, the larger side drawn with a generator seeded by (seed, dataset, split, finding). Negatives come from
    the dataset's own images and its own finding set; the normal label is not asked about."""
    by_split: dict[str, list[Record]] = {}
    for record in records:
        if isinstance(record.fields, DiagnosisFields) and record.fields.labelled:
            by_split.setdefault(record.split, []).append(record)
    asked: dict[str, list[Question]] = {}
    for split in sorted(by_split):
        group = by_split[split]
        for finding in findings:
            yes = [r.source_id for r in group if finding in r.fields.findings]
            no = [r.source_id for r in group if finding not in r.fields.findings and finding not in r.fields.uncertain]
            n = min(len(yes), len(no))
            if n == 0:
                continue
            rng = random.Random(seed_from(seed, dataset, split, finding, sep=BUILD_SEP))
            for ids, present in ((yes, True), (no, False)):
                chosen = ids if len(ids) == n else rng.sample(ids, n)
                for source_id in chosen:
                    asked.setdefault(source_id, []).append((finding, present))
    return {k: tuple(v) for k, v in asked.items()}


# --------------------------------------------------------------------------------------------- the source base


@dataclass(frozen=True)
class RadfmFiles:
    """RadFM's classification files of a dataset family: per split, the open file and the balance (yes/no) file."""

    open: Mapping[str, str]
    yes_no: Mapping[str, str]
    shared: bool = False  # several datasets' rows in one file (the chest files)


CHEST_FILES = RadfmFiles({"train": "chestxray_new.csv", "test": "chestxray_test.csv"},
                         {"train": "chestxray_balance_train_new.csv", "test": "chestxray_balance_test.csv"}, shared=True)
PCXR_FILES = RadfmFiles({"train": "pcxr_train_new.csv", "test": "pcxr_test.csv"},
                        {"train": "pcxr_balance_train.csv", "test": "pcxr_balance_test.csv"})
MAMMO_FILES = RadfmFiles({"train": "mammo_train_new.csv", "test": "mammo_test.csv"},
                         {"train": "mammo_balance_train.csv", "test": "mammo_balance_test.csv"})
SPINEXR_FILES = RadfmFiles({"train": "spinexr_train_new.csv", "test": "spinexr_test.csv"},
                           {"train": "spinexr_balance_train.csv", "test": "spinexr_balance_test.csv"})

YES_NO_LABELS = {"1": True, "1.0": True, "0": False, "0.0": False}


class DiagnosisSource(Source):
    """Base of the classification sources; see the module docstring. A subclass sets the class attributes below
    and implements :meth:`native_records`."""

    modes = ("native", "radfm")
    default_mode = "native"
    #: the prompt file of ``diagnosis_open`` (``cls`` | ``mammo`` | ``spinexr``)
    prompt_kind: ClassVar[str] = "cls"
    #: the dataset's finding names in the publisher's order (the normal label excluded)
    findings: ClassVar[tuple[str, ...]] = ()
    #: the answer for an image without findings (``No Finding``, ``No finding``, ``No pneumothorax`` …)
    normal: ClassVar[str]
    radfm: ClassVar[RadfmFiles] = CHEST_FILES
    #: which rows of RadFM's files are this dataset's: a search on the (POSIX) image path
    radfm_path: ClassVar[re.Pattern[str]]
    #: RadFM read PNG copies of some DICOM datasets: when its path does not resolve, these suffixes are tried
    converted_suffixes: ClassVar[tuple[str, ...]] = ()
    #: the records' modality (meta.json)
    modality: ClassVar[str] = "X-ray"

    # -- reading -------------------------------------------------------------------------------------------------

    def records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        if ctx.mode == "radfm":
            yield from self.radfm_records(ctx)
            return
        seen: set[str] = set()
        for item in self.native_records(ctx):
            if isinstance(item, Record):
                if item.source_id in seen:  # one image listed twice: its labels were already taken
                    item = self.reject(item.source_id, item.images[0].path, "duplicate",
                                       f"{item.source_id}: listed again (split {item.split}); the first listing is used")
                seen.add(item.source_id)
            yield item

    @abstractmethod
    def native_records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        """The publisher's files -> one ``DiagnosisFields`` record per image (or study), or rejects."""

    def record(self, source_id: str, split: str, images: tuple[ImageRef, ...], fields: RecordFields) -> Record:
        return Record(dataset=self.name, source_id=source_id, split=split, stream="2d", images=images, fields=fields,
                      modality=self.modality)

    def local_image(self, ctx: BuildContext, rel: str, where: str) -> ImageRef | Reject:
        """A path built from the dataset's own files: a 2D image under the raw root, or a reject naming ``where``
        (a path leaving the root is ``outside_root``, a file that is not there ``missing_file``)."""
        try:
            posix = ctx.resolver.confine(rel)
        except UnresolvedPath as exc:
            return self.reject(str(rel), str(rel), exc.reason, f"{where}: {exc}")
        if not (ctx.raw / posix).is_file():
            return self.reject(str(posix), str(posix), "missing_file", f"{where}: image {posix} not found under {ctx.raw}")
        return ImageRef(str(posix), "image2d")

    def no_label(self, source_id: str, file: str, message: str) -> Reject:
        return self.reject(source_id, file, NO_LABEL, message)

    def labels_record(self, ctx: BuildContext, labels: ImageLabels, rel: str, split: str, file: str,
                      view: str = "") -> Record | Reject:
        """The record of one merged label-table item whose image is ``rel``, or its reject."""
        where = file if not labels.lines else \
            f"{file} line{'s' if len(labels.lines) > 1 else ''} {', '.join(map(str, labels.lines))}"
        if labels.problem:
            return self.no_label(rel, file, f"{where} ({labels.key}): {labels.problem}")
        image = self.local_image(ctx, rel, where)
        if isinstance(image, Reject):
            return image
        return self.record(image.path, split, (image,), DiagnosisFields(labels.findings, labels.uncertain, view=view))

    def one_hot_records(self, ctx: BuildContext, path: Path, split: str, key: str, image_of, *, uncertain: bool = False,
                        view_columns: tuple[str, ...] = ()) -> Iterator[Record | Reject]:
        """Records of a one-hot label table (one column per finding and one for the normal label, one or more rows
        per item: readers), merged by :func:`vote`; ``image_of(key)`` is the item's image path under the raw root,
        ``view_columns`` (when the table has them) the columns joined into the record's ``view``."""
        file = path.name
        frame, rejects = label_frame(self.name, path, (key, *self.findings, self.normal), "label table")
        yield from rejects
        if frame is None:
            return
        views = {}
        if view_columns and set(view_columns) <= set(frame.columns):
            views = {k: "/".join(v for v in vs if v) for k, *vs in frame.select(key, *view_columns).iter_rows()}
        labels, bad = flag_labels(frame, key, (*self.findings, self.normal), self.normal, uncertain=uncertain,
                                  dataset=self.name, file=file)
        yield from bad
        for item in labels:
            yield self.labels_record(ctx, item, image_of(item.key), split, file, views.get(item.key, ""))

    # -- RadFM's files ---------------------------------------------------------------------------------------------

    def radfm_records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        """Rows of RadFM's open and balance files that are this dataset's (by ``radfm_path``)."""
        for split, name in self.radfm.open.items():
            for row in table_rows(self.name, ctx.radfm_dir / name, ("image_path", "label"), "RadFM split file"):
                item = self._radfm_row(ctx, name, split, row, yes_no=False)
                if item is not None:
                    yield item
        for split, name in self.radfm.yes_no.items():
            for row in table_rows(self.name, ctx.radfm_dir / name, ("image_path", "disease", "label"), "RadFM split file"):
                item = self._radfm_row(ctx, name, split, row, yes_no=True)
                if item is not None:
                    yield item

    def owns(self, path: str) -> bool:
        """Whether a RadFM image path is one of this dataset's."""
        return bool(self.radfm_path.search(path.strip().replace("\\", "/")))

    def _radfm_row(self, ctx: BuildContext, name: str, split: str, row, *, yes_no: bool) -> Record | Reject | None:
        if isinstance(row, Reject):
            return row  # a line that is not a row: nobody can tell whose it was, so every reader reports it
        where = f"{name}:line{row.line}"
        path = row.values["image_path"].strip()
        if path and not self.owns(path):
            return None  # another dataset's row of a shared file
        label = row.values["label"].strip()
        disease = row.values["disease"].strip() if yes_no else ""
        problem = ("empty image_path" if not path else "empty label" if not label
                   else "empty disease" if yes_no and not disease
                   else f"label {label!r} is not 0 or 1" if yes_no and label not in YES_NO_LABELS else "")
        if problem:
            shared = " (a row of a shared file that no dataset can claim)" if not path and self.radfm.shared else ""
            return self.reject(where, name, "bad_row", f"{where}: {problem}{shared}")
        rel = self.resolve_radfm(ctx, path, where)
        if isinstance(rel, Reject):
            return rel
        if yes_no:
            fields: RecordFields = RadfmYesNoFields(disease, YES_NO_LABELS[label])
        else:
            fields = RadfmOpenFields(label, tuple(n for n in split_names(label) if n.lower() != self.normal.lower()))
        return self.record(rel, split, (ImageRef(rel, "image2d"),), fields)

    def resolve_radfm(self, ctx: BuildContext, path: str, where: str) -> str | Reject:
        """RadFM's cluster path on the raw root, checked to exist (a prefix the resolver learned maps without
        looking); a PNG copy of a DICOM falls back to the DICOM."""
        stem = re.sub(r"\.[A-Za-z0-9]+$", "", path.strip())
        first: UnresolvedPath | None = None
        for candidate in (path, *(stem + suffix for suffix in self.converted_suffixes)):
            try:
                rel = ctx.resolver.resolve(candidate)
            except UnresolvedPath as exc:
                first = first or exc
                continue
            if (ctx.raw / rel).is_file():
                return rel
            first = first or UnresolvedPath(f"{rel} (from {path!r}) is not a file under {ctx.raw}")
        return self.reject(path, path, first.reason, f"{where}: {first}")

    # -- the dataset-wide pass and the samples ---------------------------------------------------------------------

    def vocabulary(self, records: Sequence[Record], ctx: BuildContext) -> DiagnosisVocabulary:
        seen: set[str] = set()
        for record in records:
            f = record.fields
            if isinstance(f, (DiagnosisFields, RadfmOpenFields)):
                seen.update(f.findings)
            if isinstance(f, DiagnosisFields):
                seen.update(f.uncertain)
            elif isinstance(f, RadfmYesNoFields) and f.disease.lower() != self.normal.lower():
                seen.add(f.disease)
        extra = sorted(seen - set(self.findings))
        findings = (*self.findings, *extra)
        return DiagnosisVocabulary(label_set=(*findings, self.normal), normal=self.normal,
                                   questions=balanced_questions(records, findings, ctx.seed, self.name))

    def samples(self, record: Record, vocab: DiagnosisVocabulary, ctx: BuildContext) -> list[SampleSpec]:
        f, labels = record.fields, vocab.label_set
        if isinstance(f, RadfmOpenFields):
            return [ctx.sample(record, DiagnosisOpenInputs(f.answer, f.findings, labels, self.prompt_kind))]
        if isinstance(f, RadfmYesNoFields):
            present = (f.disease,) if f.present and f.disease.lower() != self.normal.lower() else ()
            return [ctx.sample(record, DiagnosisYesNoInputs(f.disease, f.present, present, labels))]
        out = []
        if f.labelled:
            answer = answer_for(f.findings, vocab.normal)
            out.append(ctx.sample(record, DiagnosisOpenInputs(answer, f.findings, labels, self.prompt_kind)))
            for disease, present in vocab.questions.get(record.source_id, ()):
                out.append(ctx.sample(record, DiagnosisYesNoInputs(disease, present, f.findings, labels)))
        return out + self.extra_samples(record, vocab, ctx)

    def extra_samples(self, record: Record, vocab: DiagnosisVocabulary, ctx: BuildContext) -> list[SampleSpec]:
        """Samples of other tasks from a native record (OpenI: its report)."""
        return []


class OneHotSource(DiagnosisSource):
    """A classification source whose labels are one-hot tables, one per split (VinDr-CXR, VinDr-PCXR): only
    declarations."""

    #: split -> where its table may be (paths under the raw root, first existing wins)
    label_tables: ClassVar[Mapping[str, tuple[str, ...]]]
    #: the id column and the image path of an id (``{split}``, ``{key}``)
    key: ClassVar[str] = "image_id"
    image_path: ClassVar[str] = "{split}/{key}.dicom"

    def native_records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        for split, candidates in self.label_tables.items():
            yield from self.one_hot_records(ctx, first_existing(ctx.raw, candidates), split, self.key,
                                            lambda key, s=split: self.image_path.format(split=s, key=key))
