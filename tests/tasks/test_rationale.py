"""``rationale``: features (diagnosis explained) or yes/no on the diagnosis, negatives from other titles."""

from __future__ import annotations

import random

from task_helpers import record

from pipelines.tasks import RationaleInputs, rationale
from pipelines.tasks.rationale import FEATURES_BRIDGE


def test_rationale_variants_and_negatives():
    inputs = RationaleInputs("45 years old, female.", "Meningioma", ("An article.",), ("A dural tail.",),
                             ("Meningioma", "meningioma ", "Glioblastoma"))
    seen = set()
    for i in range(100):
        spec = rationale.build(random.Random(i), record(), inputs, max_images=10)
        seen.add(spec.variant)
        assert spec.question.startswith("45 years old, female.")
        if spec.variant == "features":
            assert spec.answer == f"An article. {FEATURES_BRIDGE} A dural tail."
        elif spec.variant == "no":
            assert "Glioblastoma" in spec.question and "Meningioma" not in spec.question and spec.answer == "no"
        else:
            assert "Meningioma" in spec.question and spec.answer == "yes"
    assert seen == {"features", "yes", "no"}
