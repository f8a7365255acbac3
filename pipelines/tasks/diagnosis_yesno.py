"""``diagnosis_yesno``: image + a finding name -> yes / no (RadFM's ``Binary_Dataset`` on the ``*_balance_*`` files).

A ``yes_no`` prompt with the finding in its ``{disease}`` slot, the answer ``yes`` or ``no``, the image always at the end
of the question (RadFM's position rule for this class, §1.2). One image can carry several questions (one per finding
asked about), so the variant names the finding and the prompt is drawn per question. Which questions a dataset asks
(balanced per finding, negatives from its own label set) is the source's choice
(``pipelines.sources.diagnosis.balanced_questions``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from pipelines.records import Record, SampleSpec
from pipelines.tasks.base import Task, TaskInputs
from pipelines.tasks.common import fill, pick_prompt, place_images, select_images
from shards_spec.hashing import BUILD_SEP, seed_from


@dataclass(frozen=True)
class DiagnosisYesNoInputs(TaskInputs):
    task: ClassVar[str] = "diagnosis_yesno"
    disease: str  # the finding asked about
    present: bool
    findings: tuple[str, ...] = ()  # the image's finding names (meta.json)
    label_set: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.disease.strip():
            raise ValueError("diagnosis_yesno: empty disease name")
        if self.label_set and not set(self.findings) <= set(self.label_set):
            raise ValueError(f"diagnosis_yesno: findings {sorted(set(self.findings) - set(self.label_set))} not in the label set")

    @classmethod
    def example(cls) -> DiagnosisYesNoInputs:
        return cls("Pneumothorax", False, ("Cardiomegaly",), ("Cardiomegaly", "Pneumothorax", "No Finding"))


def build(rng: random.Random, record: Record, inputs: DiagnosisYesNoInputs, *, max_images: int) -> SampleSpec:
    # the record's rng is the same for every question of one image: mix in the finding so prompts differ per question
    rng = random.Random(seed_from(rng.getrandbits(64), inputs.disease, sep=BUILD_SEP))
    images = select_images(rng, len(record.images), max_images)
    template, prompt_id = pick_prompt(rng, "yes_no")
    question = fill(template, disease=inputs.disease.strip())
    answer = "yes" if inputs.present else "no"
    placements = place_images(rng, len(images), question, "end")
    return SampleSpec("diagnosis_yesno", f"{answer}:{inputs.disease.strip()}", question, answer, placements, prompt_id,
                      images, findings=inputs.findings, label_set=inputs.label_set)


TASK = Task("diagnosis_yesno", DiagnosisYesNoInputs, build, ("yes_no",))
