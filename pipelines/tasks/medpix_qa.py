"""``medpix_qa`` (MedPix questions): the row's question; the answer followed by its explanation; the image at the
start or the end of the question."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from pipelines.records import Record, SampleSpec
from pipelines.tasks.base import Task, TaskInputs
from pipelines.tasks.common import place_images, select_images


def qa_answer(answer: str, explanation: str) -> str:
    """RadFM's ``answer + '. ' + explanation``, without a doubled full stop when the answer already ends one."""
    answer, explanation = answer.strip(), explanation.strip()
    if not explanation:
        return answer
    if not answer.endswith((".", "!", "?")):
        answer += "."
    return f"{answer} {explanation}"


@dataclass(frozen=True)
class MedpixQaInputs(TaskInputs):
    task: ClassVar[str] = "medpix_qa"
    question: str
    answer: str
    explanation: str = ""

    @classmethod
    def example(cls) -> MedpixQaInputs:
        return cls("What is the most likely diagnosis?", "Vestibular schwannoma",
                   "An enhancing mass extends into the internal auditory canal.")


def build(rng: random.Random, record: Record, inputs: MedpixQaInputs, *, max_images: int) -> SampleSpec:
    images = select_images(rng, len(record.images), max_images)
    question = inputs.question.strip()
    placements = place_images(rng, len(images), question, "random")
    return SampleSpec("medpix_qa", "qa", question, qa_answer(inputs.answer, inputs.explanation), placements, None, images)


TASK = Task("medpix_qa", MedpixQaInputs, build, ())
