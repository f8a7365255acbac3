"""PMC-VQA (Zhang et al. 2023): ``vqa``, 2D stream, multiple choice.

Layout (the publisher's download, version 1)::

    <raw>/train.csv, <raw>/test.csv     Figure_path,Question,Answer,Choice A,Choice B,Choice C,Choice D,Answer_label
                                        (choices written "A:Diffuse uptake pattern")
    <raw>/images/<Figure_path>          (images.zip; PMC1064097_F1.jpg)
    <radfm>/pmcvqa_{train,test}.csv     RadFM split files: img_root_dir,Figure_path,Question,Answer

Modes:
* ``radfm``: one sample per row of RadFM's files; each row takes its four choices from the publisher's CSVs when
  they are present.
* ``native``: one sample per row of the publisher's ``train.csv`` / ``test.csv`` (``test_clean.csv`` is a subset
  of ``test.csv`` and not read).

RadFM asked the question alone and learned the answer's text; so does this build. The choices (their letters
removed) are kept in the sample for evaluation (``meta.json`` ``choices``, ``answer_type`` ``closed``). A row whose
``Answer`` is empty takes the text of the choice its ``Answer_label`` names; a label that names no choice, with no
answer either, is a ``bad_row``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from pipelines.records import Record, Reject, SampleSpec
from pipelines.sources import radfm_vqa
from pipelines.sources.base import BuildContext, Source, Vocabulary
from pipelines.sources.images import resolve_image
from pipelines.sources.radfm_vqa import Extra, VqaFields, text
from pipelines.sources.tables import Row, table_rows

NATIVE_FILES = {"train": "train.csv", "test": "test.csv"}
RADFM_FILES = {"train": "pmcvqa_train.csv", "test": "pmcvqa_test.csv"}
IMAGE_FOLDER = "images"
LETTERS = ("A", "B", "C", "D")
CHOICE_COLUMNS = tuple(f"Choice {letter}" for letter in LETTERS)
REQUIRED = ("Figure_path", "Question", "Answer", *CHOICE_COLUMNS, "Answer_label")
_LETTER_PREFIX = re.compile(r"^\s*([A-D])\s*[:.)]\s*")


def choice_text(value: str) -> str:
    """A choice without its letter: ``" A:Diffuse uptake"`` -> ``"Diffuse uptake"``."""
    return text(_LETTER_PREFIX.sub("", value, count=1))


class PmcVqa(Source):
    name = "pmc_vqa"
    modes = ("radfm", "native")
    default_mode = "radfm"

    def records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        if ctx.mode == "native":
            for split, name in NATIVE_FILES.items():
                for row in table_rows(self.name, ctx.raw / name, REQUIRED, "PMC-VQA's question file", multiline=True):
                    yield row if isinstance(row, Reject) else self._row(ctx, name, split, row)
            return
        extras = self._extras(ctx)
        for split, name in RADFM_FILES.items():
            yield from radfm_vqa.radfm_rows(self, ctx, name, split, (IMAGE_FOLDER,), extras)

    def samples(self, record: Record[VqaFields], vocab: Vocabulary, ctx: BuildContext) -> list[SampleSpec]:
        return radfm_vqa.samples(ctx, record)

    def _extras(self, ctx: BuildContext) -> dict:
        """The choices of the publisher's rows, for RadFM's (a missing or broken file gives none: its rows are not
        the build's input in this mode)."""
        extras = {}
        for name in NATIVE_FILES.values():
            if not (ctx.raw / name).exists():
                continue
            for row in table_rows(self.name, ctx.raw / name, REQUIRED, "PMC-VQA's question file", multiline=True):
                if not isinstance(row, Reject):
                    choices = tuple(choice_text(row.values[c]) for c in CHOICE_COLUMNS)
                    extras[radfm_vqa.key(row.values["Figure_path"], text(row.values["Question"]))] = Extra("closed", choices)
        return extras

    def _row(self, ctx: BuildContext, name: str, split: str, row: Row) -> Record | Reject:
        where = f"{name}:line{row.line}"
        v = row.values
        question = text(v["Question"])
        choices = tuple(choice_text(v[c]) for c in CHOICE_COLUMNS)
        answer = text(v["Answer"])
        label = text(v["Answer_label"]).upper()
        if not answer and label in LETTERS:
            answer = choices[LETTERS.index(label)]
        if not question or not answer:
            why = "empty Question" if not question else f"empty Answer, and Answer_label {label!r} names no choice"
            return self.reject(where, name, "bad_row", f"{where}: {why}")
        image = resolve_image(ctx, self.name, v["Figure_path"], where, folders=(IMAGE_FOLDER,))
        if isinstance(image, Reject):
            return image
        fields = VqaFields(question, answer, "closed", tuple(c for c in choices if c))
        return radfm_vqa.record(self, f"{image.path}|{question}", split, image, fields)


SOURCE = PmcVqa()
