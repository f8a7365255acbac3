"""``vqa``: the dataset's own question and answer; seeded image positions; the 10-image cap."""

from __future__ import annotations

from task_helpers import record

from pipelines import tasks
from pipelines.tasks import VqaInputs


def test_task_choices_are_seeded_by_record_and_capped():
    rec = record(n_images=14, source_id="case-1")
    a = tasks.sample(0, rec, VqaInputs("Q?", "A"), max_images=10)
    b = tasks.sample(0, rec, VqaInputs("Q?", "A"), max_images=10)
    assert a == b and len(a.image_indices) == 10 == len(a.placements)
    assert list(a.image_indices) == sorted(a.image_indices)
    c = tasks.sample(1, rec, VqaInputs("Q?", "A"), max_images=10)
    assert c != a
    assert {p.char for p in a.placements} <= {0, len("Q?")}
    assert (a.question, a.answer, a.variant) == ("Q?", "A", "qa")


def test_answer_type_and_choices_travel_with_the_sample():
    rec = record(n_images=1, source_id="q-7", dataset="pmc_vqa", stream="2d")
    spec = tasks.sample(0, rec, VqaInputs("What is shown?", "CT", "closed", ("CT", "MRI", "X-ray", "US")), max_images=10)
    assert (spec.variant, spec.answer_type, spec.choices) == ("closed", "closed", ("CT", "MRI", "X-ray", "US"))
    assert tasks.sample(0, rec, VqaInputs("Where?", "Lung", "open"), max_images=10).variant == "open"
    try:
        VqaInputs("q", "a", "multiple")
    except ValueError as exc:
        assert "answer_type" in str(exc)
    else:
        raise AssertionError("an unknown answer type was accepted")
