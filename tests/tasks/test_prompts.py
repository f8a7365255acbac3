"""The prompt files (pipelines/tasks/prompts/): RadFM's kinds and sizes, no duplicates, explicit slots."""

from __future__ import annotations

from pipelines.tasks import TASKS
from pipelines.tasks.common import prompt_kinds, prompts


def test_prompt_files_have_radfm_sizes_and_valid_slots():
    sizes = {"report": 20, "caption": 15, "radiology_feature": 10, "yes_no": 14, "modality": 5, "modality_yes_no": 3,
             "cls": 11, "mammo": 21, "spinexr": 11,
             # MedPix (RadFM's hard-coded lists: caption 10, modality 12, plane 12, yes/no 8 + 8, case types)
             "medpix_caption": 10, "medpix_modality": 12, "medpix_plane": 12, "medpix_modality_yes_no": 8,
             "medpix_plane_yes_no": 8, "medpix_txfollowup": 10, "medpix_ddx": 10, "medpix_dxhow": 10,
             "medpix_diagnosis": 17, "medpix_findings": 12, "medpix_exam": 10, "medpix_discussion": 12}
    assert set(prompt_kinds()) == set(sizes)
    for kind, n in sizes.items():
        options = prompts(kind)
        assert len(options) == n == len(set(options))
    assert all("{disease}" in p for p in prompts("yes_no"))
    assert all("{modality}" in p for p in prompts("modality_yes_no"))
    assert all("{value}" in p for kind in ("medpix_modality_yes_no", "medpix_plane_yes_no") for p in prompts(kind))


def test_every_declared_prompt_kind_ships():
    for task in TASKS.values():
        assert all(prompts(kind) for kind in task.prompt_kinds)
