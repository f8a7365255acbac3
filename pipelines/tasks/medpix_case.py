"""``medpix_case`` (MedPix, case level): one of the 7 case questions about all images of a case.

The question is a prompt of the row's type (``txFollowup``, ``ddx``, ``dxHow``, ``diagnosis``, ``findings``,
``exam``, ``discussion``; prompt files ``medpix_<type>``), with the patient history put before it half of the time
(RadFM's coin flip) when the case has one. The answer is the row's text without its ``•`` bullets; for
``findings`` measurements (``12 mm``, ``3.5cm``, ``3x4 cm``) are removed, as RadFM did. All images go to the start
or all to the end of the question; at most ``max_images``, a seeded subset kept in the case's order (RadFM's
``random.sample`` shuffled them).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import ClassVar

from pipelines.records import Record, SampleSpec
from pipelines.tasks.base import Task, TaskInputs
from pipelines.tasks.common import join_text, pick_prompt, place_images, select_images

#: MedPix's case question types (the ``type`` column of ``MedPix_multi_*.csv``) -> prompt file
CASE_KINDS: dict[str, str] = {
    "txFollowup": "medpix_txfollowup",
    "ddx": "medpix_ddx",
    "dxHow": "medpix_dxhow",
    "diagnosis": "medpix_diagnosis",
    "findings": "medpix_findings",
    "exam": "medpix_exam",
    "discussion": "medpix_discussion",
}
#: RadFM's measurement pattern for ``findings`` answers
MEASUREMENT = re.compile(r"\d+(\.\d+)?\s*(mm|cm|x\d+\s*cm)")


def strip_measurements(text: str) -> str:
    """``text`` without measurements (RadFM's pattern), with the spaces they leave behind tidied."""
    out = MEASUREMENT.sub("", text)
    out = re.sub(r"[ \t]{2,}", " ", out)
    out = re.sub(r" +([.,;:)])", r"\1", out)
    out = re.sub(r"\( +", "(", out)
    return out.strip()


def case_answer(kind: str, context: str) -> str:
    answer = context.replace("• ", "").strip()
    return strip_measurements(answer) if kind == "findings" else answer


@dataclass(frozen=True)
class MedpixCaseInputs(TaskInputs):
    task: ClassVar[str] = "medpix_case"
    kind: str  # one of CASE_KINDS
    context: str  # the answer text of the row
    history: str = ""  # the patient history ("" when the case has none)

    def __post_init__(self) -> None:
        if self.kind not in CASE_KINDS:
            raise ValueError(f"medpix_case: kind must be one of {tuple(CASE_KINDS)}, not {self.kind!r}")

    @classmethod
    def example(cls) -> MedpixCaseInputs:
        return cls("findings", "• A 23 mm enhancing mass in the left cerebellopontine angle.",
                   "45 year old woman with hearing loss on the left.")


def build(rng: random.Random, record: Record, inputs: MedpixCaseInputs, *, max_images: int) -> SampleSpec:
    images = select_images(rng, len(record.images), max_images)
    prompt, prompt_id = pick_prompt(rng, CASE_KINDS[inputs.kind])
    question = join_text(inputs.history, prompt) if inputs.history.strip() and rng.random() > 0.5 else prompt
    placements = place_images(rng, len(images), question, "random_all")
    return SampleSpec("medpix_case", inputs.kind, question, case_answer(inputs.kind, inputs.context), placements,
                      prompt_id, images)


TASK = Task("medpix_case", MedpixCaseInputs, build, tuple(CASE_KINDS.values()))
