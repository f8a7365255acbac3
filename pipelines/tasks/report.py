"""``report``: image(s) -> report text.

MIMIC: a report prompt, the image at the end of the question. Rad3D (RadFM's caption branch): the patient context,
then a caption prompt, each image at the start or the end (``random``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from pipelines.records import Record, SampleSpec
from pipelines.tasks.base import Task, TaskInputs
from pipelines.tasks.common import POSITIONS, Position, join_text, pick_prompt, place_images, select_images

PROMPT_KINDS = ("report", "caption")


@dataclass(frozen=True)
class ReportInputs(TaskInputs):
    task: ClassVar[str] = "report"
    answer: str
    prompt_kind: str = "report"  # one of PROMPT_KINDS
    context: str = ""  # text put before the prompt (patient, presentation)
    position: Position = "end"

    def __post_init__(self) -> None:
        if self.prompt_kind not in PROMPT_KINDS:
            raise ValueError(f"report: prompt_kind must be one of {PROMPT_KINDS}, not {self.prompt_kind!r}")
        if self.position not in POSITIONS:
            raise ValueError(f"report: position must be one of {POSITIONS}, not {self.position!r}")

    @classmethod
    def example(cls) -> ReportInputs:
        return cls("Findings: The lungs are clear. Impression: No acute process.")


def build(rng: random.Random, record: Record, inputs: ReportInputs, *, max_images: int) -> SampleSpec:
    images = select_images(rng, len(record.images), max_images)
    prompt, prompt_id = pick_prompt(rng, inputs.prompt_kind)
    question = join_text(inputs.context, prompt)
    placements = place_images(rng, len(images), question, inputs.position)
    return SampleSpec("report", "report", question, inputs.answer, placements, prompt_id, images)


TASK = Task("report", ReportInputs, build, PROMPT_KINDS)
