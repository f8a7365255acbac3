"""MedPix's three tasks: ``medpix_case`` (7 types, history, measurements, order), ``medpix_image`` (caption /
modality / plane with yes/no, candidates never shrink), ``medpix_qa``."""

from __future__ import annotations

from collections import Counter

import pytest
from task_helpers import record

from pipelines import tasks
from pipelines.tasks import MedpixCaseInputs, MedpixImageInputs, MedpixQaInputs
from pipelines.tasks.common import prompts
from pipelines.tasks.medpix_case import CASE_KINDS, strip_measurements
from pipelines.tasks.medpix_qa import qa_answer


def test_case_types_history_and_images_in_order():
    history = "45 year old woman with headache."
    with_history = 0
    for seed in range(40):
        rec = record(14, f"case-{seed}", "medpix", "2d")
        spec = tasks.sample(seed, rec, MedpixCaseInputs("ddx", "• Meningioma\n• Schwannoma", history), max_images=10)
        assert spec.variant == "ddx" and spec.answer == "Meningioma\nSchwannoma"
        assert spec.image_indices == tuple(sorted(spec.image_indices)) and len(spec.image_indices) == 10
        assert len({p.char for p in spec.placements}) == 1  # all images at the start or all at the end
        with_history += spec.question.startswith(history)
        assert spec.question.removeprefix(history + " ") in prompts("medpix_ddx")
    assert 10 < with_history < 30  # RadFM's coin flip
    assert set(CASE_KINDS) == {"txFollowup", "ddx", "dxHow", "diagnosis", "findings", "exam", "discussion"}
    with pytest.raises(ValueError):
        MedpixCaseInputs("history", "x")


def test_findings_lose_measurements_other_types_keep_them():
    text = "A 23 mm mass and a 3.5cm cyst, 3x4 cm overall (12 mm)."
    assert strip_measurements(text) == "A mass and a cyst, overall ()."
    spec = tasks.sample(0, record(1, "c", "medpix", "2d"), MedpixCaseInputs("findings", text), max_images=10)
    assert "mm" not in spec.answer and "cm" not in spec.answer
    spec = tasks.sample(0, record(1, "c", "medpix", "2d"), MedpixCaseInputs("diagnosis", text), max_images=10)
    assert spec.answer == text


def test_image_yes_no_draws_from_candidates_that_never_shrink():
    candidates = ("CT - noncontrast", "MR - FLAIR", "XR - Plain Film")
    variants = Counter()
    for seed in range(200):
        inputs = MedpixImageInputs("modality", "MR - FLAIR", candidates)
        spec = tasks.sample(seed, record(1, f"img-{seed}", "medpix", "2d"), inputs, max_images=10)
        variants[spec.variant] += 1
        if spec.variant == "modality_no":
            assert spec.answer == "no" and "MR - FLAIR" not in spec.question
            assert any(c in spec.question for c in candidates)
        elif spec.variant == "modality_yes":
            assert spec.answer == "yes" and "MR - FLAIR" in spec.question
        else:
            assert spec.variant == "modality" and spec.answer == "MR - FLAIR"
    assert inputs.candidates == candidates  # RadFM removed the truth from the shared list on every "no"
    assert all(n > 20 for n in variants.values()) and len(variants) == 3
    caption = tasks.sample(0, record(1, "x", "medpix", "2d"), MedpixImageInputs("caption", "Axial CT."), max_images=10)
    assert caption.variant == "caption" and caption.question in prompts("medpix_caption")


def test_qa_answer_and_explanation():
    assert qa_answer("Meningioma", "A dural tail is typical.") == "Meningioma. A dural tail is typical."
    assert qa_answer("Meningioma.", "A dural tail.") == "Meningioma. A dural tail."  # RadFM wrote "..". here
    assert qa_answer("Meningioma", "") == "Meningioma"
    spec = tasks.sample(0, record(1, "q", "medpix", "2d"), MedpixQaInputs("What is it?", "Meningioma", "Dural tail."),
                        max_images=10)
    assert (spec.task, spec.question, spec.answer) == ("medpix_qa", "What is it?", "Meningioma. Dural tail.")
