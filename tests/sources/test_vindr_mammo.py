"""VinDr-Mammo's rules (pipelines/sources/vindr_mammo): the breast-level table lists the images and their split, the
finding table's list literals name the findings, laterality and view are kept; the ``mammo`` prompts."""

from __future__ import annotations

from xray_helpers import by_image, csv_text, plan, raw_tree, rejected

from pipelines.sources.vindr_mammo.source import BREAST_FILE, FINDING_FILE

S = "a" * 32
A, B, C, D = (f"{k:032x}" for k in (30, 31, 32, 33))
BREAST = ["study_id", "series_id", "image_id", "laterality", "view_position", "height", "width", "breast_birads",
          "breast_density", "split"]
FINDING = ["study_id", "series_id", "image_id", "laterality", "view_position", "height", "width", "breast_birads",
           "breast_density", "finding_categories", "finding_birads", "xmin", "ymin", "xmax", "ymax", "split"]


def finding(image: str, categories: str) -> list[str]:
    return [S, "x", image, "L", "CC", 3518, 2800, "BI-RADS 4", "DENSITY C", categories, "BI-RADS 4", 1, 2, 3, 4,
            "training"]


def test_findings_from_the_list_literals_with_laterality_view_and_split(tmp_path):
    breast = [[S, "x", A, "L", "CC", 3518, 2800, "BI-RADS 4", "DENSITY C", "training"],
              [S, "x", B, "R", "MLO", 3518, 2800, "BI-RADS 1", "DENSITY C", "test"],
              [S, "x", C, "R", "CC", 3518, 2800, "BI-RADS 1", "DENSITY C", "training"],  # no finding row
              [S, "x", D, "R", "CC", 3518, 2800, "BI-RADS 1", "DENSITY C", "validation"]]  # no such split
    rows = [finding(A, '"[\'Mass\', \'Suspicious Calcification\']"'), finding(A, "\"['Mass']\""),
            finding(B, "\"['No Finding']\""), finding("f" * 32, "\"['Mass']\""), finding(C, "Mass")]
    raw = raw_tree(tmp_path / "vindr_mammo", {
        BREAST_FILE: csv_text(BREAST, breast), FINDING_FILE: csv_text(FINDING, rows),
        **{f"images/{S}/{i}.dicom": b"" for i in (A, B, C, D)}})
    jobs, rejects = plan(raw, "vindr_mammo")
    assert by_image(jobs) == {f"images/{S}/{A}.dicom": ("Mass", "Suspicious Calcification"),
                              f"images/{S}/{B}.dicom": ()}
    views = {j.record.images[0].path: (j.record.fields.view, j.record.split, j.record.modality) for j in jobs}
    assert views[f"images/{S}/{A}.dicom"] == ("L-CC", "train", "Mammography")
    assert views[f"images/{S}/{B}.dicom"] == ("R-MLO", "test", "Mammography")
    bad = sorted(r.source_id for r in rejected(rejects, "bad_row"))
    assert bad == [f"{BREAST_FILE}:line5", f"{FINDING_FILE}:line5", f"{FINDING_FILE}:line6"]
    (no_label,) = rejected(rejects, "no_label")
    assert no_label.source_id == f"images/{S}/{C}.dicom"
    assert all(j.spec.prompt_id.startswith(("mammo/", "yes_no/")) for j in jobs)
    assert {j.spec.answer for j in jobs if j.spec.task == "diagnosis_open"} == {"Mass, Suspicious Calcification",
                                                                                 "No Finding"}
