"""Rad3D (Radiopaedia cases): ``report``, ``rationale``, ``vqa`` and ``modality``, 3D stream.

Inputs are RadFM's files (``<radfm>/``, default ``<raw>/radfm``)::

    radiology_article_npy_{train,test}.json  [{pre, pat, npy_path, finding, impression,
                                               radiographic_features, articles, title}]
    radiology_vqa_{train,test}.csv           image_path,question,answer
    radio_modality_{train,test}.csv          image_path,answer
    modality_set.json                        {"modality": [...]}   (optional)
    articles_resave.json                     {title: article}       (optional negatives)

Every image path (absolute on the authors' cluster) is remapped onto the raw root and may
name a RadFM ``.npy`` (``[S,3,H,W,D]``: S series), a NIfTI file, a folder of JPEG/PNG
slices (one series: ``<case>/<image_no>/<Modality>_<k>/``) or a folder of such series
folders (``<case>/<image_no>/``). ``npy_path`` may also be a list of paths.

Dataset-wide (the vocabulary): every article title (the accepted entries' titles and those of
``articles_resave.json``) is a negative for the rationale's yes/no questions, every modality (the modality
rows' answers and ``modality_set.json``) a negative for the modality task; both join the keyword lexicon.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pipelines.records import Record, RecordFields, Reject, SampleSpec
from pipelines.sources.base import BuildContext, Source, Vocabulary
from pipelines.sources.images import resolve_volumes
from pipelines.sources.tables import Item, Row, file_reject, json_items, optional_json, table_rows
from pipelines.tasks import ModalityInputs, RationaleInputs, ReportInputs, VqaInputs
from pipelines.tasks.common import join_text

SPLITS = ("train", "test")
ARTICLE_FILE = "radiology_article_npy_{split}.json"
VQA_FILE = "radiology_vqa_{split}.csv"
MODALITY_FILE = "radio_modality_{split}.csv"
MODALITY_SET = "modality_set.json"
ARTICLES = "articles_resave.json"
ARTICLE_KEYS = ("npy_path", "finding", "impression", "title")


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(_text(v) for v in value)
    return " ".join(str(value).split())


def _texts(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    values = value if isinstance(value, list) else [value]
    return tuple(t for t in (_text(v) for v in values) if t)


@dataclass(frozen=True)
class ArticleFields(RecordFields):
    """An entry of ``radiology_article_npy_*.json``: the case report and its Radiopaedia article."""

    pat: str  # patient ("45 years old, female")
    pre: str  # presentation
    finding: str
    impression: str
    features: tuple[str, ...]  # radiographic_features
    articles: tuple[str, ...]
    title: str  # the diagnosis


@dataclass(frozen=True)
class VqaFields(RecordFields):
    question: str
    answer: str


@dataclass(frozen=True)
class ModalityFields(RecordFields):
    """A row of ``radio_modality_*.csv``; the answer is the record's ``modality``."""


@dataclass(frozen=True)
class Rad3DVocabulary(Vocabulary):
    titles: tuple[str, ...] = ()  # every article title (diagnosis), sorted
    modalities: tuple[str, ...] = ()  # every modality name, sorted

    def label_terms(self) -> tuple[str, ...]:
        return tuple(sorted({*self.titles, *self.modalities}))


class Rad3D(Source):
    name = "rad3d"
    modes = ("radfm",)
    default_mode = "radfm"

    def records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        for split in SPLITS:
            yield from self._articles(ctx, split)
            yield from self._vqa(ctx, split)
            yield from self._modality(ctx, split)

    def vocabulary(self, records: Sequence[Record], ctx: BuildContext) -> Rad3DVocabulary:
        titles = {r.fields.title for r in records if isinstance(r.fields, ArticleFields)}
        modalities = {r.modality for r in records if isinstance(r.fields, ModalityFields)}
        resave, bad_resave = optional_json(self.name, ctx.radfm_dir / ARTICLES, dict)
        titles |= {_text(k) for k in resave or {}}
        modality_set, bad_set = optional_json(self.name, ctx.radfm_dir / MODALITY_SET, (dict, list))
        values = modality_set.get("modality") if isinstance(modality_set, dict) else modality_set
        if modality_set is not None and not isinstance(values, list):
            values, bad_set = [], file_reject(self.name, MODALITY_SET, "bad_file", f"optional file {ctx.radfm_dir / MODALITY_SET}: "
                                              "expected a list of modalities or {\"modality\": [...]} (skipped)")
        modalities |= {_text(v) for v in values or []}
        rejects = tuple(r for r in (bad_resave, bad_set) if r is not None)
        return Rad3DVocabulary(rejects, tuple(sorted(titles - {""})), tuple(sorted(modalities - {""})))

    def samples(self, record: Record, vocab: Rad3DVocabulary, ctx: BuildContext) -> list[SampleSpec]:
        f = record.fields
        if isinstance(f, ArticleFields):
            context = join_text(f.pat, f.pre)
            out = []
            if f.finding or f.impression:
                answer = join_text(f"Finding: {f.finding}" if f.finding else "", f"Impression: {f.impression}" if f.impression else "")
                out.append(ctx.sample(record, ReportInputs(answer, prompt_kind="caption", context=context, position="random")))
            if f.title and (f.articles or f.features):
                out.append(ctx.sample(record, RationaleInputs(context, f.title, f.articles, f.features, vocab.titles)))
            return out
        if isinstance(f, VqaFields):
            return [ctx.sample(record, VqaInputs(f.question, f.answer))]
        return [ctx.sample(record, ModalityInputs(record.modality, vocab.modalities))]

    # -- readers -------------------------------------------------------------------------

    def _record(self, source_id: str, split: str, images: tuple, fields: RecordFields, modality: str = "") -> Record:
        return Record(dataset=self.name, source_id=source_id, split=split, stream="3d", images=images, fields=fields,
                      modality=modality)

    def _articles(self, ctx: BuildContext, split: str) -> Iterator[Record | Reject]:
        name = ARTICLE_FILE.format(split=split)
        for item in json_items(self.name, ctx.radfm_dir / name, "RadFM file"):
            yield item if isinstance(item, Reject) else self._article(ctx, name, split, item)

    def _article(self, ctx: BuildContext, name: str, split: str, item: Item) -> Record | Reject:
        where, entry = f"{name}[{item.index}]", item.value
        if not isinstance(entry, dict) or any(k not in entry for k in ARTICLE_KEYS):
            return self.reject(where, name, "bad_row", f"{where}: expected an object with keys {', '.join(ARTICLE_KEYS)}")
        paths = entry["npy_path"] if isinstance(entry["npy_path"], list) else [entry["npy_path"]]
        images = resolve_volumes(ctx, self.name, [str(p) for p in paths], where)
        if isinstance(images, Reject):
            return images
        fields = ArticleFields(
            pat=_text(entry.get("pat")),
            pre=_text(entry.get("pre")),
            finding=_text(entry.get("finding")),
            impression=_text(entry.get("impression")),
            features=_texts(entry.get("radiographic_features")),
            articles=_texts(entry.get("articles")),
            title=_text(entry.get("title")),
        )
        if not (fields.finding or fields.impression) and not (fields.title and (fields.articles or fields.features)):
            return self.reject(where, name, "bad_row", f"{where}: neither a finding or impression (for a report) nor a "
                               "title with articles or radiographic features (for a rationale)")
        source_id = "article:" + "|".join(r.path + (f"#{r.series}" if r.load_as == "npy" else "") for r in images)
        return self._record(source_id, split, images, fields)

    def _vqa(self, ctx: BuildContext, split: str) -> Iterator[Record | Reject]:
        name = VQA_FILE.format(split=split)
        for row in table_rows(self.name, ctx.radfm_dir / name, ("image_path", "question", "answer"), "RadFM file"):
            yield row if isinstance(row, Reject) else self._vqa_row(ctx, name, split, row)

    def _vqa_row(self, ctx: BuildContext, name: str, split: str, row: Row) -> Record | Reject:
        where = f"{name}:line{row.line}"
        question, answer = _text(row.values["question"]), _text(row.values["answer"])
        if not question or not answer:
            return self.reject(where, name, "bad_row", f"{where}: empty {'question' if not question else 'answer'}")
        images = resolve_volumes(ctx, self.name, [row.values["image_path"]], where)
        if isinstance(images, Reject):
            return images
        return self._record(f"vqa:{images[0].path}:{question}", split, images, VqaFields(question, answer))

    def _modality(self, ctx: BuildContext, split: str) -> Iterator[Record | Reject]:
        name = MODALITY_FILE.format(split=split)
        for row in table_rows(self.name, ctx.radfm_dir / name, ("image_path", "answer"), "RadFM file"):
            yield row if isinstance(row, Reject) else self._modality_row(ctx, name, split, row)

    def _modality_row(self, ctx: BuildContext, name: str, split: str, row: Row) -> Record | Reject:
        where = f"{name}:line{row.line}"
        modality = _text(row.values["answer"])
        if not modality:
            return self.reject(where, name, "bad_row", f"{where}: empty answer")
        images = resolve_volumes(ctx, self.name, [row.values["image_path"]], where)
        if isinstance(images, Reject):
            return images
        return self._record(f"modality:{images[0].path}", split, images, ModalityFields(), modality)


SOURCE = Rad3D()
