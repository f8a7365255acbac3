"""The prompt files (pipelines/tasks/prompts/): RadFM's kinds and sizes, no duplicates, explicit slots."""

from __future__ import annotations

from pipelines.tasks import TASKS
from pipelines.tasks.common import prompt_kinds, prompts


def test_prompt_files_have_radfm_sizes_and_valid_slots():
    sizes = {"report": 20, "caption": 15, "radiology_feature": 10, "yes_no": 14, "modality": 5, "modality_yes_no": 3,
             "cls": 11, "mammo": 21, "spinexr": 11}
    assert set(prompt_kinds()) == set(sizes)
    for kind, n in sizes.items():
        options = prompts(kind)
        assert len(options) == n == len(set(options))
    assert all("{disease}" in p for p in prompts("yes_no"))
    assert all("{modality}" in p for p in prompts("modality_yes_no"))


def test_every_declared_prompt_kind_ships():
    for task in TASKS.values():
        assert all(prompts(kind) for kind in task.prompt_kinds)
