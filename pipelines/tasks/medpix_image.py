"""``medpix_image`` (MedPix, image level): caption, modality or plane of one image.

``caption``: a caption prompt, the answer the image's caption. ``modality`` / ``plane``: a direct question (50 %),
or a yes/no question naming the true value (25 %) or another value of the dataset's candidates (25 %). RadFM drew
the other value from a list it shrank permanently with every "no" question (its ``.remove`` on the shared list);
here the candidates are the same for every sample. The image goes to the start or the end of the question.
Variants: ``caption``, ``modality``, ``modality_yes``, ``modality_no``, ``plane``, ``plane_yes``, ``plane_no``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from pipelines.records import Record, SampleSpec
from pipelines.tasks.base import Task, TaskInputs
from pipelines.tasks.common import fill, pick_prompt, place_images, select_images

IMAGE_KINDS = ("caption", "modality", "plane")


@dataclass(frozen=True)
class MedpixImageInputs(TaskInputs):
    task: ClassVar[str] = "medpix_image"
    kind: str  # one of IMAGE_KINDS
    value: str  # the caption, modality or plane of the image
    candidates: tuple[str, ...] = ()  # every value of this kind (negatives for the "no" questions)

    def __post_init__(self) -> None:
        if self.kind not in IMAGE_KINDS:
            raise ValueError(f"medpix_image: kind must be one of {IMAGE_KINDS}, not {self.kind!r}")

    @classmethod
    def example(cls) -> MedpixImageInputs:
        return cls("modality", "CT - noncontrast", ("CT - noncontrast", "MR - FLAIR", "XR - Plain Film"))


def build(rng: random.Random, record: Record, inputs: MedpixImageInputs, *, max_images: int) -> SampleSpec:
    images = select_images(rng, len(record.images), max_images)
    kind, value = inputs.kind, inputs.value.strip()
    if kind == "caption":
        question, prompt_id = pick_prompt(rng, "medpix_caption")
        variant, answer = "caption", value
    else:
        others = sorted({c.strip() for c in inputs.candidates if c.strip() and c.strip().lower() != value.lower()})
        draw = rng.random()
        if draw < 0.5 or not others:
            question, prompt_id = pick_prompt(rng, f"medpix_{kind}")
            variant, answer = kind, value
        else:
            template, prompt_id = pick_prompt(rng, f"medpix_{kind}_yes_no")
            if draw < 0.75:
                question, variant, answer = fill(template, value=value), f"{kind}_yes", "yes"
            else:
                question, variant, answer = fill(template, value=rng.choice(others)), f"{kind}_no", "no"
    placements = place_images(rng, len(images), question, "random")
    return SampleSpec("medpix_image", variant, question, answer, placements, prompt_id, images)


TASK = Task("medpix_image", MedpixImageInputs, build,
            ("medpix_caption", "medpix_modality", "medpix_modality_yes_no", "medpix_plane", "medpix_plane_yes_no"))
