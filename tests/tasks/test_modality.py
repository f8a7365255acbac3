"""``modality``: direct, yes and no variants; the "no" question names another modality (RadFM bug §9.2)."""

from __future__ import annotations

import random

from task_helpers import record

from pipelines.tasks import ModalityInputs, modality


def test_modality_negatives_use_a_different_modality():
    """RadFM built the 'no' question with the true modality; ours names another one."""
    seen = set()
    for i in range(200):
        spec = modality.build(random.Random(i), record(), ModalityInputs("CT", ("CT", "MRI", "X-ray")), max_images=10)
        seen.add(spec.variant)
        if spec.variant == "no":
            assert "CT" not in spec.question and ("MRI" in spec.question or "X-ray" in spec.question)
        elif spec.variant == "yes":
            assert "CT" in spec.question and spec.answer == "yes"
        else:
            assert spec.answer == "CT"
    assert seen == {"direct", "yes", "no"}


def test_without_other_modalities_only_the_direct_question():
    for i in range(50):
        spec = modality.build(random.Random(i), record(3), ModalityInputs("CT", ("ct",)), max_images=10)
        assert spec.variant == "direct" and len({p.char for p in spec.placements}) == 1  # all images at one end
