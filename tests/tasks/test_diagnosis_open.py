"""``diagnosis_open``: a prompt of the dataset's kind, the image at the end (RadFM's rule), the answer as given, the
findings and label set carried to meta; inputs that contradict themselves are refused."""

from __future__ import annotations

import random

import pytest
from task_helpers import record

from pipelines.tasks import DiagnosisOpenInputs, diagnosis_open
from pipelines.tasks.common import prompts
from pipelines.tasks.diagnosis_open import answer_for

LABELS = ("Cardiomegaly", "Edema", "No Finding")


@pytest.mark.parametrize("kind", ["cls", "mammo", "spinexr"])
def test_prompt_of_the_kind_image_at_the_end(kind):
    used = set()
    for i in range(60):
        inputs = DiagnosisOpenInputs("Cardiomegaly, Edema", ("Cardiomegaly", "Edema"), LABELS, kind)
        spec = diagnosis_open.build(random.Random(i), record(1, stream="2d", dataset="x"), inputs, max_images=10)
        assert spec.question in prompts(kind) and spec.prompt_id.startswith(f"{kind}/")
        assert [p.char for p in spec.placements] == [len(spec.question)]
        assert spec.answer == "Cardiomegaly, Edema" and spec.findings == ("Cardiomegaly", "Edema")
        assert spec.label_set == LABELS and spec.task == "diagnosis_open"
        used.add(spec.prompt_id)
    assert len(used) > 3


def test_answer_is_the_findings_or_the_normal_label():
    assert answer_for(("Cardiomegaly", "Edema"), "No Finding") == "Cardiomegaly, Edema"
    assert answer_for((), "No Finding") == "No Finding"


def test_inconsistent_inputs_are_refused():
    with pytest.raises(ValueError, match="not in the label set"):
        DiagnosisOpenInputs("Hernia", ("Hernia",), LABELS)
    with pytest.raises(ValueError, match="prompt_kind"):
        DiagnosisOpenInputs("Edema", ("Edema",), LABELS, "report")
    with pytest.raises(ValueError, match="empty answer"):
        DiagnosisOpenInputs(" ", (), LABELS)
