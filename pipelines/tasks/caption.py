"""``caption``: a figure's own caption (PMC-OA): a caption prompt, the image at the start or the end (50/50)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from pipelines.records import Record, SampleSpec
from pipelines.tasks.base import Task, TaskInputs
from pipelines.tasks.common import pick_prompt, place_images, select_images


@dataclass(frozen=True)
class CaptionInputs(TaskInputs):
    task: ClassVar[str] = "caption"
    caption: str

    @classmethod
    def example(cls) -> CaptionInputs:
        return cls("Axial contrast-enhanced CT shows a hypodense lesion in the right hepatic lobe (arrow).")


def build(rng: random.Random, record: Record, inputs: CaptionInputs, *, max_images: int) -> SampleSpec:
    images = select_images(rng, len(record.images), max_images)
    question, prompt_id = pick_prompt(rng, "caption")
    placements = place_images(rng, len(images), question, "random")
    return SampleSpec("caption", "caption", question, inputs.caption.strip(), placements, prompt_id, images)


TASK = Task("caption", CaptionInputs, build, ("caption",))
