"""``vqa``: the dataset's own question and answer; each image at the start or the end of the question (50/50)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from pipelines.records import Record, SampleSpec
from pipelines.tasks.base import Task, TaskInputs
from pipelines.tasks.common import place_images, select_images


@dataclass(frozen=True)
class VqaInputs(TaskInputs):
    task: ClassVar[str] = "vqa"
    question: str
    answer: str

    @classmethod
    def example(cls) -> VqaInputs:
        return cls("Which imaging modality is shown?", "MRI")


def build(rng: random.Random, record: Record, inputs: VqaInputs, *, max_images: int) -> SampleSpec:
    images = select_images(rng, len(record.images), max_images)
    question, answer = inputs.question.strip(), inputs.answer.strip()
    return SampleSpec("vqa", "qa", question, answer, place_images(rng, len(images), question, "random"), None, images)


TASK = Task("vqa", VqaInputs, build, ())
