"""VinDr-SpineXR's rules (pipelines/sources/vindr_spinexr): one annotation row per lesion box, ``No finding`` rows
without a box, the ``spinexr`` prompts; a lesion row without its box is a ``bad_row``."""

from __future__ import annotations

from xray_helpers import by_image, csv_text, plan, raw_tree, rejected

from pipelines.tasks.common import prompts

A, B, C = (f"{k:032x}" for k in (20, 21, 22))
HEADER = ["image_id", "study_id", "series_id", "rad_id", "lesion_type", "xmin", "ymin", "xmax", "ymax"]


def test_lesion_rows_merge_per_image_and_a_row_without_its_box_is_rejected(tmp_path):
    train = [[A, "s", "r", "rad1", "Osteophytes", 10, 20, 30, 40], [A, "s", "r", "rad1", "Osteophytes", 50, 60, 70, 80],
             [A, "s", "r", "rad1", "Disc space narrowing", 1, 2, 3, 4], [B, "s", "r", "rad2", "No finding", "", "", "", ""],
             [C, "s", "r", "rad2", "Surgical implant", "", "", "", ""]]
    raw = raw_tree(tmp_path / "vindr_spinexr", {
        "annotations/train.csv": csv_text(HEADER, train), "annotations/test.csv": csv_text(HEADER, []),
        f"train_images/{A}.dicom": b"", f"train_images/{B}.dicom": b"", f"train_images/{C}.dicom": b""})
    jobs, rejects = plan(raw, "vindr_spinexr")
    assert by_image(jobs) == {f"train_images/{A}.dicom": ("Osteophytes", "Disc space narrowing"),
                              f"train_images/{B}.dicom": ()}
    (bad,) = rejected(rejects, "bad_row")
    assert bad.source_id == "train.csv:line6" and "box" in bad.message
    for job in jobs:
        if job.spec.task == "diagnosis_open":
            assert job.spec.prompt_id.startswith("spinexr/") and job.spec.question in prompts("spinexr")
