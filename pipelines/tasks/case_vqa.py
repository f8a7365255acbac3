"""``case_vqa`` (PMC-CaseReport): a case's context, then a question about it; its figures at the end of the
context or of the whole question.

The context keeps its first sentence and its last four when it has more than five (RadFM meant this; its
``split('.')`` kept three, split decimals and doubled spaces). The question is ``context + "\\n" + question`` with
the ``Q:`` / ``A:`` labels removed. Each figure independently (50/50) goes to ``len(question)`` or
``len(context)`` (RadFM's positions: before the last character of the whole question or of the context).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import ClassVar

from pipelines.records import ImagePlacement, Record, SampleSpec
from pipelines.tasks.base import Task, TaskInputs
from pipelines.tasks.common import select_images

#: a sentence ends at ``.``, ``!`` or ``?`` followed by whitespace (or the end), not inside ``3.5``
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
MAX_SENTENCES = 5
KEEP_LAST = 4


def sentences(text: str) -> list[str]:
    return [s for s in (p.strip() for p in _SENTENCE_END.split(text.strip())) if s]


def truncate_context(context: str) -> str:
    """The first sentence and the last four, when the context has more than five sentences."""
    parts = sentences(context)
    if len(parts) > MAX_SENTENCES:
        parts = [parts[0], *parts[-KEEP_LAST:]]
    return " ".join(parts)


def strip_label(text: str, label: str) -> str:
    return text.replace(label, "").strip()


@dataclass(frozen=True)
class CaseVqaInputs(TaskInputs):
    task: ClassVar[str] = "case_vqa"
    context: str
    question: str
    answer: str

    @classmethod
    def example(cls) -> CaseVqaInputs:
        return cls("A 64-year-old man presented with cough. Chest radiography was performed.",
                   "Q: What did the radiograph show?", "A: A right upper lobe opacity.")


def build(rng: random.Random, record: Record, inputs: CaseVqaInputs, *, max_images: int) -> SampleSpec:
    images = select_images(rng, len(record.images), max_images)
    context = truncate_context(inputs.context)
    question = f"{context}\n{strip_label(inputs.question, 'Q:')}" if context else strip_label(inputs.question, "Q:")
    placements = tuple(ImagePlacement("question", len(question) if rng.random() > 0.5 else len(context))
                       for _ in images)
    return SampleSpec("case_vqa", "qa", question, strip_label(inputs.answer, "A:"), placements, None, images)


TASK = Task("case_vqa", CaseVqaInputs, build, ())
