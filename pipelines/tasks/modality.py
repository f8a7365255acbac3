"""``modality``: which modality is shown.

A direct question (50 %), a yes/no question naming the true modality (25 %) or a *different* modality from the
dataset's modality set (25 %; RadFM built this question with the true modality and answered "no", see
docs/deviations.md). All images go to the start or all to the end of the question.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from pipelines.records import Record, SampleSpec
from pipelines.tasks.base import Task, TaskInputs
from pipelines.tasks.common import fill, pick_prompt, place_images, select_images


@dataclass(frozen=True)
class ModalityInputs(TaskInputs):
    task: ClassVar[str] = "modality"
    modality: str  # the true modality
    modality_set: tuple[str, ...]  # every modality of the dataset (the negatives are drawn from it)

    @classmethod
    def example(cls) -> ModalityInputs:
        return cls("CT", ("CT", "MRI", "X-ray"))


def build(rng: random.Random, record: Record, inputs: ModalityInputs, *, max_images: int) -> SampleSpec:
    images = select_images(rng, len(record.images), max_images)
    truth = inputs.modality
    others = sorted({m for m in inputs.modality_set if m.strip().lower() != truth.strip().lower()})
    draw = rng.random()
    if draw < 0.5 or not others:
        question, prompt_id = pick_prompt(rng, "modality")
        variant, answer = "direct", truth
    else:
        template, prompt_id = pick_prompt(rng, "modality_yes_no")
        if draw < 0.75:
            question, variant, answer = fill(template, modality=truth), "yes", "yes"
        else:
            question, variant, answer = fill(template, modality=rng.choice(others)), "no", "no"
    placements = place_images(rng, len(images), question, "random_all")
    return SampleSpec("modality", variant, question, answer, placements, prompt_id, images)


TASK = Task("modality", ModalityInputs, build, ("modality", "modality_yes_no"))
