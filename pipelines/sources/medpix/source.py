"""MedPix (the NLM teaching file, as RadFM's MPx-series): ``medpix_case``, ``medpix_image``, ``medpix_qa``; 2D.

MedPix is a website, not a download: RadFM's split files are the only tables, with the images by file name in one
folder (RadFM joined ``img_root + name``)::

    <raw>/images/<name>                       (synpicNNNNN.jpg …)
    <radfm>/MedPix_multi_{train,test}.csv     name,context,type,history   (name: comma-separated image names)
    <radfm>/MedPix_single_{train,test}.csv    name,context,type           (type: caption | modality | plane)
    <radfm>/MedPix_questions_{train,test}.csv name,question,answer,explanation

Samples (RadFM's ``MedPix_*_Dataset`` rules, ``pipelines.tasks.medpix_*``):
* a ``multi`` row: one case question of its ``type`` (``txFollowup``, ``ddx``, ``dxHow``, ``diagnosis``,
  ``findings``, ``exam``, ``discussion``) about all the case's images (at most 10, in order), the history before
  the question half of the time. An image missing from the folder is reported (``missing_file``) and the case
  keeps its other images, as RadFM skipped it; a row with none of its images is rejected.
* a ``single`` row: a caption, modality or plane question with yes/no variants; the "no" questions draw from
  MedPix's categories (``categories.json``) and every value the files use (the vocabulary).
* a ``questions`` row: the question, the answer followed by its explanation.

A ``type`` outside these lists is a ``bad_row`` (RadFM raised ``KeyError``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources

from pipelines.records import ImageRef, Record, RecordFields, Reject, SampleSpec
from pipelines.sources.base import BuildContext, Source, Vocabulary
from pipelines.sources.images import resolve_image
from pipelines.sources.radfm_vqa import text
from pipelines.sources.tables import Row, table_rows
from pipelines.tasks import MedpixCaseInputs, MedpixImageInputs, MedpixQaInputs
from pipelines.tasks.medpix_case import CASE_KINDS
from pipelines.tasks.medpix_image import IMAGE_KINDS

SPLITS = ("train", "test")
MULTI_FILE = "MedPix_multi_{split}.csv"
SINGLE_FILE = "MedPix_single_{split}.csv"
QUESTIONS_FILE = "MedPix_questions_{split}.csv"
IMAGE_FOLDER = "images"

#: MedPix's image categories (``modality``, ``plane``): the negatives of the yes/no questions.
CATEGORIES: dict[str, list[str]] = json.loads(resources.files(__package__).joinpath("categories.json").read_text("utf-8"))


@dataclass(frozen=True)
class CaseFields(RecordFields):
    kind: str  # a CASE_KINDS key
    context: str
    history: str = ""


@dataclass(frozen=True)
class ImageFields(RecordFields):
    kind: str  # caption | modality | plane
    value: str


@dataclass(frozen=True)
class QaFields(RecordFields):
    question: str
    answer: str
    explanation: str = ""


@dataclass(frozen=True)
class MedpixVocabulary(Vocabulary):
    modalities: tuple[str, ...] = ()
    planes: tuple[str, ...] = ()

    def candidates(self, kind: str) -> tuple[str, ...]:
        return self.modalities if kind == "modality" else self.planes if kind == "plane" else ()

    def label_terms(self) -> tuple[str, ...]:
        return ()  # category names ("XR - Plain Film") are not words a report uses


class MedPix(Source):
    name = "medpix"
    modes = ("radfm",)
    default_mode = "radfm"

    def records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        for split in SPLITS:
            name = MULTI_FILE.format(split=split)
            for row in table_rows(self.name, ctx.radfm_dir / name, ("name", "context", "type", "history"), "RadFM file",
                                  multiline=True):
                yield from [row] if isinstance(row, Reject) else self._case(ctx, name, split, row)
            name = SINGLE_FILE.format(split=split)
            for row in table_rows(self.name, ctx.radfm_dir / name, ("name", "context", "type"), "RadFM file",
                                  multiline=True):
                yield row if isinstance(row, Reject) else self._single(ctx, name, split, row)
            name = QUESTIONS_FILE.format(split=split)
            for row in table_rows(self.name, ctx.radfm_dir / name, ("name", "question", "answer", "explanation"),
                                  "RadFM file", multiline=True):
                yield row if isinstance(row, Reject) else self._question(ctx, name, split, row)

    def vocabulary(self, records: Sequence[Record], ctx: BuildContext) -> MedpixVocabulary:
        values: dict[str, set[str]] = {kind: set(CATEGORIES[kind]) for kind in ("modality", "plane")}
        for r in records:
            if isinstance(r.fields, ImageFields) and r.fields.kind in values:
                values[r.fields.kind].add(r.fields.value)
        return MedpixVocabulary((), tuple(sorted(values["modality"])), tuple(sorted(values["plane"])))

    def samples(self, record: Record, vocab: MedpixVocabulary, ctx: BuildContext) -> list[SampleSpec]:
        f = record.fields
        if isinstance(f, CaseFields):
            return [ctx.sample(record, MedpixCaseInputs(f.kind, f.context, f.history))]
        if isinstance(f, ImageFields):
            return [ctx.sample(record, MedpixImageInputs(f.kind, f.value, vocab.candidates(f.kind)))]
        return [ctx.sample(record, MedpixQaInputs(f.question, f.answer, f.explanation))]

    # -- readers -------------------------------------------------------------------------

    def _record(self, source_id: str, split: str, images: tuple[ImageRef, ...], fields: RecordFields) -> Record:
        return Record(dataset=self.name, source_id=source_id, split=split, stream="2d", images=images, fields=fields)

    def _image(self, ctx: BuildContext, name: str, where: str) -> ImageRef | Reject:
        return resolve_image(ctx, self.name, name, where, folders=(IMAGE_FOLDER,))

    def _case(self, ctx: BuildContext, name: str, split: str, row: Row) -> list[Record | Reject]:
        where = f"{name}:line{row.line}"
        v = row.values
        kind, context = v["type"].strip(), text(v["context"])
        if kind not in CASE_KINDS:
            return [self.reject(where, name, "bad_row", f"{where}: type {kind!r} is not one of {', '.join(CASE_KINDS)}")]
        names = [n.strip() for n in v["name"].split(",") if n.strip()]
        if not names or not context:
            return [self.reject(where, name, "bad_row", f"{where}: empty {'name' if not names else 'context'}")]
        out: list[Record | Reject] = []
        images = []
        for image_name in names:
            ref = self._image(ctx, image_name, f"{where}:{image_name}")
            (out if isinstance(ref, Reject) else images).append(ref)
        if not images:
            return [self.reject(where, name, "missing_file", f"{where}: none of its images was found ({', '.join(names)})")]
        # RadFM removed '• ' bullets from the context; the history keeps its text (RadFM skipped a NaN one)
        fields = CaseFields(kind, v["context"].strip(), text(v["history"]))
        out.append(self._record(f"case:{','.join(names)}:{kind}", split, tuple(images), fields))
        return out

    def _single(self, ctx: BuildContext, name: str, split: str, row: Row) -> Record | Reject:
        where = f"{name}:line{row.line}"
        v = row.values
        kind, value = v["type"].strip(), text(v["context"])
        if kind not in IMAGE_KINDS:
            return self.reject(where, name, "bad_row", f"{where}: type {kind!r} is not one of {', '.join(IMAGE_KINDS)}")
        if not value:
            return self.reject(where, name, "bad_row", f"{where}: empty context")
        image = self._image(ctx, v["name"], where)
        if isinstance(image, Reject):
            return image
        return self._record(f"single:{image.path}:{kind}", split, (image,), ImageFields(kind, value))

    def _question(self, ctx: BuildContext, name: str, split: str, row: Row) -> Record | Reject:
        where = f"{name}:line{row.line}"
        v = row.values
        question, answer = text(v["question"]), text(v["answer"])
        if not question or not answer:
            return self.reject(where, name, "bad_row", f"{where}: empty {'question' if not question else 'answer'}")
        image = self._image(ctx, v["name"], where)
        if isinstance(image, Reject):
            return image
        return self._record(f"qa:{image.path}:{question}", split, (image,), QaFields(question, answer, text(v["explanation"])))


SOURCE = MedPix()
