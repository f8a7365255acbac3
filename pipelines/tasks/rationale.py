"""``rationale`` (Rad3D): the diagnosis explained, or a yes/no question on the diagnosis.

Diagnosis + radiographic features (50 %), or yes/no on the disease with the true title or another article title
(25 % / 25 %). The patient context comes first in every variant (RadFM omitted it in yes/no; see
docs/deviations.md); each image at the start or the end.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import ClassVar

from pipelines.records import Record, SampleSpec
from pipelines.tasks.base import Task, TaskInputs
from pipelines.tasks.common import fill, join_text, pick_prompt, place_images, select_images

FEATURES_BRIDGE = "The radiographic features can be summarized as follows."


@dataclass(frozen=True)
class RationaleInputs(TaskInputs):
    task: ClassVar[str] = "rationale"
    context: str
    title: str  # the diagnosis (the article's title)
    articles: tuple[str, ...]
    features: tuple[str, ...]
    other_titles: tuple[str, ...]  # every title of the dataset (the negatives are drawn from it)

    @classmethod
    def example(cls) -> RationaleInputs:
        return cls("45 years old, female. Headache.", "Meningioma",
                   ("Meningiomas are the most common extra-axial tumours.",), ("A dural tail.",),
                   ("Meningioma", "Glioblastoma"))


def build(rng: random.Random, record: Record, inputs: RationaleInputs, *, max_images: int) -> SampleSpec:
    images = select_images(rng, len(record.images), max_images)
    title = inputs.title
    negatives = sorted({t for t in inputs.other_titles if t.strip().lower() != title.strip().lower()})
    if rng.random() < 0.5 or not negatives:
        prompt, prompt_id = pick_prompt(rng, "radiology_feature")
        question = join_text(inputs.context, prompt)
        answer = join_text(*inputs.articles, FEATURES_BRIDGE, *inputs.features)
        variant = "features"
    else:
        template, prompt_id = pick_prompt(rng, "yes_no")
        if rng.random() < 0.5:
            question, answer, variant = fill(template, disease=title), "yes", "yes"
        else:
            question, answer, variant = fill(template, disease=rng.choice(negatives)), "no", "no"
        question = join_text(inputs.context, question)
    placements = place_images(rng, len(images), question, "random")
    return SampleSpec("rationale", variant, question, answer, placements, prompt_id, images)


TASK = Task("rationale", RationaleInputs, build, ("radiology_feature", "yes_no"))
