"""``vqa``: the dataset's own question and answer; each image at the start or the end of the question (50/50).

What evaluation needs travels with the sample (``meta.json`` ``answer_type``, ``choices``): the dataset's answer
type (VQA-RAD, SLAKE: ``closed`` / ``open``; PMC-VQA's multiple choice is ``closed``) and a multiple-choice
question's options. The variant is the answer type when the dataset gives one, else ``qa``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from pipelines.records import Record, SampleSpec
from pipelines.tasks.base import Task, TaskInputs
from pipelines.tasks.common import place_images, select_images

ANSWER_TYPES = ("", "closed", "open")


@dataclass(frozen=True)
class VqaInputs(TaskInputs):
    task: ClassVar[str] = "vqa"
    question: str
    answer: str
    answer_type: str = ""  # one of ANSWER_TYPES ("": the dataset does not say)
    choices: tuple[str, ...] = ()  # a multiple-choice question's options, in the dataset's order

    def __post_init__(self) -> None:
        if self.answer_type not in ANSWER_TYPES:
            raise ValueError(f"vqa: answer_type must be one of {ANSWER_TYPES}, not {self.answer_type!r}")

    @classmethod
    def example(cls) -> VqaInputs:
        return cls("Which imaging modality is shown?", "MRI")


def build(rng: random.Random, record: Record, inputs: VqaInputs, *, max_images: int) -> SampleSpec:
    images = select_images(rng, len(record.images), max_images)
    question, answer = inputs.question.strip(), inputs.answer.strip()
    return SampleSpec("vqa", inputs.answer_type or "qa", question, answer,
                      place_images(rng, len(images), question, "random"), None, images,
                      answer_type=inputs.answer_type, choices=inputs.choices)


TASK = Task("vqa", VqaInputs, build, ())
