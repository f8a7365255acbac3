"""``caption``: a caption prompt, the figure at the start or the end of the question, the caption as the answer."""

from __future__ import annotations

from task_helpers import record

from pipelines import tasks
from pipelines.tasks import CaptionInputs
from pipelines.tasks.common import prompts


def test_caption_prompt_position_and_answer():
    seen = set()
    for seed in range(30):
        spec = tasks.sample(seed, record(1, "fig-1", "pmc_oa", "2d"), CaptionInputs("  A. Axial CT of the chest. "), max_images=10)
        assert spec.task == spec.variant == "caption" and spec.answer == "A. Axial CT of the chest."
        assert spec.question in prompts("caption") and spec.prompt_id.startswith("caption/")
        (p,) = spec.placements
        assert p.where == "question" and p.char in (0, len(spec.question))
        seen.add(p.char == 0)
    assert seen == {True, False}  # RadFM's 50/50 start or end
