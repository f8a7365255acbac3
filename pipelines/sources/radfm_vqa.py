"""What the three VQA sources share (PMC-VQA, VQA-RAD, SLAKE): RadFM's VQA split files, the record fields, and
the join that brings the publisher's answer types, choices and languages to RadFM's rows.

RadFM read all three with one class (``VQA_Dataset``) from CSVs with the columns
``img_root_dir,Figure_path,Question,Answer``: the image is ``img_root_dir`` joined with ``Figure_path``, the
question and answer are the row's. Those files lack what evaluation needs (PMC-VQA's options, VQA-RAD's and
SLAKE's closed/open answer types) and SLAKE's language; when the publisher's own files are in the raw root, each
RadFM row is matched to its row there by (image file name, question) and takes them from it.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from pipelines.records import ImageRef, Record, RecordFields, Reject, SampleSpec
from pipelines.sources.base import BuildContext, Source
from pipelines.sources.images import resolve_image
from pipelines.sources.tables import Row, table_rows
from pipelines.tasks import VqaInputs

COLUMNS = ("img_root_dir", "Figure_path", "Question", "Answer")
#: Han, kana and hangul: a question written in one of these is not English (SLAKE's other language is Chinese).
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def text(value: object) -> str:
    """A cell or JSON value as one line of text ("" for null)."""
    return "" if value is None else " ".join(str(value).split())


def is_english(question: str) -> bool:
    return not _CJK.search(question)


def answer_type(value: object) -> str:
    """A publisher's answer type (``CLOSED``, ``OPEN``, ``closed `` …) as ``closed`` / ``open`` ("" otherwise)."""
    value = text(value).lower()
    return value if value in ("closed", "open") else ""


@dataclass(frozen=True)
class VqaFields(RecordFields):
    question: str
    answer: str
    answer_type: str = ""  # closed | open | "" (VqaInputs)
    choices: tuple[str, ...] = ()  # PMC-VQA's options A-D
    language: str = "en"


@dataclass(frozen=True)
class Extra:
    """What a publisher's row adds to a RadFM row."""

    answer_type: str = ""
    choices: tuple[str, ...] = ()
    language: str = "en"
    modality: str = ""


def key(image: str, question: str, parts: int = 1) -> tuple[str, str]:
    """The join key: the last ``parts`` components of the image's path (its file name; SLAKE names every image
    ``source.jpg`` in its own folder) and the question, case and spacing ignored."""
    tail = "/".join(image.replace("\\", "/").strip("/").split("/")[-parts:])
    return tail.lower(), " ".join(question.split()).casefold()


def radfm_rows(source: Source, ctx: BuildContext, name: str, split: str, folders: tuple[str, ...],
               extras: Mapping[tuple[str, str], Extra], key_parts: int = 1) -> Iterator[Record | Reject]:
    """The records of RadFM's VQA split file ``name``: one per row, or a reject (an empty question or answer, an
    image that does not resolve, a non-English question). ``extras`` are the publisher's rows by :func:`key`."""
    for row in table_rows(source.name, ctx.radfm_dir / name, COLUMNS, "RadFM split file"):
        yield row if isinstance(row, Reject) else radfm_row(source, ctx, name, split, row, folders, extras, key_parts)


def radfm_row(source: Source, ctx: BuildContext, name: str, split: str, row: Row, folders: tuple[str, ...],
              extras: Mapping[tuple[str, str], Extra], key_parts: int = 1) -> Record | Reject:
    where = f"{name}:line{row.line}"
    v = row.values
    question, answer = text(v["Question"]), text(v["Answer"])
    if not question or not answer:
        return source.reject(where, name, "bad_row", f"{where}: empty {'Question' if not question else 'Answer'}")
    figure = v["Figure_path"].strip()
    path = posixpath.join(v["img_root_dir"].strip(), figure) if v["img_root_dir"].strip() else figure
    image = resolve_image(ctx, source.name, path, where, folders=folders)
    if isinstance(image, Reject):
        return image
    extra = extras.get(key(figure, question, key_parts), Extra())
    if extra.language != "en" or not is_english(question):
        return source.reject(where, name, "not_english", f"{where}: question not in English ({question[:40]!r})")
    return record(source, f"{image.path}|{question}", split, image, VqaFields(question, answer, extra.answer_type,
                                                                             extra.choices, "en"), extra.modality)


@dataclass(frozen=True)
class PublisherJson:
    """How a publisher's VQA JSON names things (VQA-RAD, SLAKE): the keys an entry must have, the image's key, the
    image folder, and the optional language and modality keys."""

    required: tuple[str, ...]
    image_key: str
    folders: tuple[str, ...]
    language_key: str = ""  # an entry whose language is not ``en`` is skipped (``not_english``)
    modality_key: str = ""


def publisher_entry(source: Source, ctx: BuildContext, layout: PublisherJson, name: str, split: str, index: int,
                    entry: object, id_prefix: str = "") -> Record | Reject:
    """The record of entry ``index`` of the publisher's JSON file ``name``, or a reject naming it (``name[index]``):
    not an object with the required keys or an empty question or answer (``bad_row``), another language
    (``not_english``), an image that does not resolve. Its source id is the entry's ``qid`` when it has one."""
    where = f"{name}[{index}]"
    if not isinstance(entry, dict) or any(k not in entry for k in layout.required):
        return source.reject(where, name, "bad_row", f"{where}: expected an object with keys {', '.join(layout.required)}")
    if layout.language_key and (language := text(entry[layout.language_key]).lower()) != "en":
        return source.reject(where, name, "not_english", f"{where}: {layout.language_key} {language!r} (English rows only)")
    question, answer = text(entry["question"]), text(entry["answer"])
    if not question or not answer:
        return source.reject(where, name, "bad_row", f"{where}: empty {'question' if not question else 'answer'}")
    image = resolve_image(ctx, source.name, text(entry[layout.image_key]), where, folders=layout.folders)
    if isinstance(image, Reject):
        return image
    qid = text(entry.get("qid"))
    fields = VqaFields(question, answer, answer_type(entry.get("answer_type")))
    modality = text(entry.get(layout.modality_key)) if layout.modality_key else ""
    return record(source, f"{id_prefix}qid:{qid}" if qid else f"{image.path}|{question}", split, image, fields, modality)


def record(source: Source, source_id: str, split: str, image: ImageRef, fields: VqaFields, modality: str = "") -> Record:
    return Record(dataset=source.name, source_id=source_id, split=split, stream="2d", images=(image,), fields=fields,
                  modality=modality)


def samples(ctx: BuildContext, record: Record[VqaFields]) -> list[SampleSpec]:
    f = record.fields
    return [ctx.sample(record, VqaInputs(f.question, f.answer, f.answer_type, f.choices))]
