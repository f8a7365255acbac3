"""``diagnosis_yesno``: the finding in the ``{disease}`` slot of a yes/no prompt, ``yes``/``no`` as RadFM's
``{0: 'no', 1: 'yes'}``, the image at the end, a variant per question so one image can carry several."""

from __future__ import annotations

import random

from task_helpers import record

from pipelines.tasks import DiagnosisYesNoInputs, diagnosis_yesno
from pipelines.tasks.common import prompts

LABELS = ("Cardiomegaly", "Pneumothorax", "No Finding")


def test_question_answer_variant_and_position():
    templates = prompts("yes_no")
    for i in range(40):
        for disease, present in (("Pneumothorax", False), ("Cardiomegaly", True)):
            inputs = DiagnosisYesNoInputs(disease, present, ("Cardiomegaly",), LABELS)
            spec = diagnosis_yesno.build(random.Random(i), record(1, stream="2d", dataset="x"), inputs, max_images=10)
            assert spec.answer == ("yes" if present else "no") and spec.variant == f"{spec.answer}:{disease}"
            assert disease in spec.question and "{" not in spec.question
            assert templates[int(spec.prompt_id.split("/")[1])].format(disease=disease) == spec.question
            assert [p.char for p in spec.placements] == [len(spec.question)]
            assert spec.findings == ("Cardiomegaly",) and spec.label_set == LABELS


def test_questions_of_one_image_draw_their_prompts_independently():
    """The record's generator is the same for every question of an image; the finding is mixed in."""
    same = 0
    for i in range(30):
        a = diagnosis_yesno.build(random.Random(i), record(), DiagnosisYesNoInputs("Edema", True), max_images=10)
        b = diagnosis_yesno.build(random.Random(i), record(), DiagnosisYesNoInputs("Mass", True), max_images=10)
        same += a.prompt_id == b.prompt_id
    assert same < 15
