"""``diagnosis_open``: image -> the findings it shows (RadFM's ``ChestXray_Dataset`` on the classification files).

A prompt of the dataset's kind (``cls`` for chest X-rays, RadFM's choice for VinDr-PCXR too; ``mammo``; ``spinexr``),
the image always at the end of the question (RadFM's position rule for this class, §1.4), the answer the finding names
(the dataset's normal label, e.g. ``No Finding``, when there is none). The sample records its finding names and the
dataset's label set in ``meta.json`` (SPEC §3.2) for per-finding evaluation.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from pipelines.records import Record, SampleSpec
from pipelines.tasks.base import Task, TaskInputs
from pipelines.tasks.common import pick_prompt, place_images, select_images

PROMPT_KINDS = ("cls", "mammo", "spinexr")
#: How finding names are joined into an answer (the evaluation splits at commas).
SEPARATOR = ", "


def answer_for(findings: tuple[str, ...], normal: str) -> str:
    """The open-diagnosis answer: the finding names, or the dataset's normal label when there is none."""
    return SEPARATOR.join(findings) if findings else normal


@dataclass(frozen=True)
class DiagnosisOpenInputs(TaskInputs):
    task: ClassVar[str] = "diagnosis_open"
    answer: str  # what the model learns to say (``answer_for``, or RadFM's label text verbatim)
    findings: tuple[str, ...]  # the finding names the answer states (empty: normal)
    label_set: tuple[str, ...]  # every finding name of the dataset, with its normal label
    prompt_kind: str = "cls"

    def __post_init__(self) -> None:
        if self.prompt_kind not in PROMPT_KINDS:
            raise ValueError(f"diagnosis_open: prompt_kind must be one of {PROMPT_KINDS}, not {self.prompt_kind!r}")
        if not self.answer.strip():
            raise ValueError("diagnosis_open: empty answer")
        if not set(self.findings) <= set(self.label_set):
            raise ValueError(f"diagnosis_open: findings {sorted(set(self.findings) - set(self.label_set))} not in the label set")

    @classmethod
    def example(cls) -> DiagnosisOpenInputs:
        labels = ("Cardiomegaly", "Pleural Effusion", "No Finding")
        return cls("Cardiomegaly, Pleural Effusion", ("Cardiomegaly", "Pleural Effusion"), labels)


def build(rng: random.Random, record: Record, inputs: DiagnosisOpenInputs, *, max_images: int) -> SampleSpec:
    images = select_images(rng, len(record.images), max_images)
    question, prompt_id = pick_prompt(rng, inputs.prompt_kind)
    placements = place_images(rng, len(images), question, "end")
    return SampleSpec("diagnosis_open", "open", question, inputs.answer.strip(), placements, prompt_id, images,
                      findings=inputs.findings, label_set=inputs.label_set)


TASK = Task("diagnosis_open", DiagnosisOpenInputs, build, PROMPT_KINDS)
