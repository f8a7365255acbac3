"""The task -> kind -> metric registry (evaluation.tasks)."""

from __future__ import annotations

import pytest

from evaluation.metrics import METRICS, UNAVAILABLE
from evaluation.tasks import KINDS, TASK_KINDS, UnknownTask, belong_to, check_tasks, kind_of


@pytest.mark.parametrize("task, variant, truth, kind", [
    ("report", "report", "Findings: ...", "text"),
    ("rationale", "features", "A normal brain ...", "text"),
    ("rationale", "yes", "yes", "yesno"),
    ("modality", "direct", "MRI", "modality"),
    ("modality", "no", "no", "yesno"),
    ("vqa", "qa", "Yes", "yesno"),
    ("vqa", "qa", "Normal brain MRI", "open"),
    ("vqa", "qa", "no mass is seen", "open"),  # a sentence starting with "no" is an open answer
    ("vqa", "closed", "left", "closed"),  # a source that records closed questions (VQA-RAD answer types)
    ("vqa", "closed", "no", "yesno"),
    ("vqa", "open", "yes", "open"),
    ("diagnosis_open", "open", "Atelectasis, Effusion", "findings"),
    ("diagnosis_yesno", "yes", "yes", "yesno"),
    ("caption", "caption", "An axial CT ...", "text"),
])
def test_kind_of(task, variant, truth, kind):
    assert kind_of(task, variant, truth) == kind


def test_unknown_tasks_and_variants_say_where_to_add_them():
    with pytest.raises(UnknownTask, match="TASK_KINDS"):
        kind_of("segmentation", "x", "y")
    with pytest.raises(UnknownTask, match="variant 'maybe'"):
        kind_of("modality", "maybe", "y")
    check_tasks(["report", "vqa"])
    with pytest.raises(UnknownTask, match="segmentation"):
        check_tasks(["report", "segmentation"])


def test_every_kind_names_registered_metrics_and_a_headline():
    for name, kind in KINDS.items():
        assert all(m in METRICS or m in UNAVAILABLE for m in kind.metrics), name
        assert kind.headline in kind.metrics and kind.headline in METRICS
    for task, rule in TASK_KINDS.items():
        kinds = rule.values() if isinstance(rule, dict) else []
        assert all(k in KINDS for k in kinds), task


def test_every_task_the_build_registers_has_an_evaluation_rule():
    from pipelines.tasks import TASKS

    assert set(TASKS) <= set(TASK_KINDS)


def test_belong_to_uses_radfm_names():
    assert belong_to("mimic", "report") == "chestxray_caption_dataset"
    assert belong_to("rad3d", "vqa") == "radiovqa_dataset"
    assert belong_to("vqa_rad", "vqa") == "vqa_rad_vqa"
