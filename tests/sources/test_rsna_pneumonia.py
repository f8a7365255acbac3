"""RSNA Pneumonia's rules (pipelines/sources/rsna_pneumonia): several box rows of a patient are one image with
``Pneumonia``, a Target 0 row is ``No pneumonia``, rows that disagree have no label, boxes must match Target."""

from __future__ import annotations

from xray_helpers import by_image, csv_text, plan, raw_tree, rejected

from pipelines.sources.diagnosis import hashed_split

P = [f"{k:08x}-1111-2222-3333-444455556666" for k in range(1, 6)]


def test_box_rows_per_patient(tmp_path):
    rows = [[P[0], 264, 152, 213, 379, 1], [P[0], 562, 152, 256, 453, 1], [P[1], "", "", "", "", 0],
            [P[2], 1, 2, 3, 4, 1], [P[2], "", "", "", "", 0], [P[3], "", "", "", "", 1], [P[4], 1, 2, 3, 4, 0]]
    raw = raw_tree(tmp_path / "rsna_pneumonia", {
        "stage_2_train_labels.csv": csv_text(["patientId", "x", "y", "width", "height", "Target"], rows),
        **{f"stage_2_train_images/{p}.dcm": b"" for p in P}})
    jobs, rejects = plan(raw, "rsna_pneumonia")
    assert by_image(jobs) == {f"stage_2_train_images/{P[0]}.dcm": ("Pneumonia",),
                              f"stage_2_train_images/{P[1]}.dcm": ()}
    assert {j.record.split for j in jobs if j.record.source_id.endswith(f"{P[0]}.dcm")} == {hashed_split("rsna_pneumonia", P[0])}
    (no_label,) = rejected(rejects, "no_label")
    assert P[2] in no_label.message and "lines 5, 6" in no_label.message and "disagree" in no_label.message
    bad = {r.source_id: r.message for r in rejected(rejects, "bad_row")}
    assert set(bad) == {"stage_2_train_labels.csv:line7", "stage_2_train_labels.csv:line8"}
    assert "without its box" in bad["stage_2_train_labels.csv:line7"] and "with a box" in bad["stage_2_train_labels.csv:line8"]
