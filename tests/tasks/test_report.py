"""``report``: RadFM's report prompts with the image at the end (MIMIC), caption prompts after the context with
random positions (Rad3D)."""

from __future__ import annotations

import random

from task_helpers import record

from pipelines.tasks import ReportInputs, report
from pipelines.tasks.common import prompts


def test_report_positions_follow_radfm():
    rec = record(1, dataset="mimic", stream="2d")
    spec = report.build(random.Random(0), rec, ReportInputs("Findings: x"), max_images=10)
    assert spec.placements[0].char == len(spec.question) and spec.prompt_id.startswith("report/")
    assert spec.question in prompts("report")


def test_caption_report_puts_the_context_first():
    inputs = ReportInputs("Finding: x", prompt_kind="caption", context="45 years old, male.", position="random")
    positions = set()
    for i in range(30):
        spec = report.build(random.Random(i), record(2), inputs, max_images=10)
        assert spec.question.startswith("45 years old, male. ") and spec.prompt_id.startswith("caption/")
        assert {p.char for p in spec.placements} <= {0, len(spec.question)}
        positions |= {"start" if p.char == 0 else "end" for p in spec.placements}
    assert positions == {"start", "end"}
