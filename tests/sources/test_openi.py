"""OpenI's rules (pipelines/sources/openi): one record per study with frontal then lateral, ``XXXX`` written as ``___``,
``Problems`` as finding names (MeSH inversions undone), ``No Indexing`` gives the report alone; bad projection rows,
unknown uids and studies without an image are rejected with their reasons."""

from __future__ import annotations

from xray_helpers import csv_text, plan, raw_tree, rejected

from pipelines.sources.openi.source import IMAGES, problem_names

REPORTS = ["uid", "MeSH", "Problems", "image", "indication", "comparison", "findings", "impression"]


def test_studies_reports_and_projections(tmp_path):
    reports = [[1, "normal", "normal", "Xray Chest PA and Lateral", "XXXX-year-old male", "None",
                "The cardiac silhouette is normal. XXXX XXXX are intact.", "No acute disease."],
               [2, '"Hernia, Hiatal/small"', '"Hernia, Hiatal;Cardiomegaly"', "PA", "", "", "Heart is enlarged.",
                '"Hiatal hernia.\nNo effusion."'],  # a value spanning two lines (read as one row)
               [3, "No Indexing", "No Indexing", "PA", "", "", "", "Stable chest."],
               [4, "normal", "normal", "PA", "", "", "Clear lungs.", ""]]  # no image
    projections = [[1, "1_IM-0001-3001.dcm.png", "Lateral"], [1, "1_IM-0001-4001.dcm.png", "Frontal"],
                   [2, "2_IM-0652-1001.dcm.png", "Frontal"], [3, "3_IM-1384-1001.dcm.png", "Frontal"],
                   [3, "3_IM-1384-2001.dcm.png", "Oblique"], [99, "99_IM-0000-1001.dcm.png", "Frontal"]]
    raw = raw_tree(tmp_path / "openi", {
        "indiana_reports.csv": csv_text(REPORTS, reports),
        "indiana_projections.csv": csv_text(["uid", "filename", "projection"], projections),
        **{f"{IMAGES}/{name}": b"" for _, name, _ in projections}})
    jobs, rejects = plan(raw, "openi")
    by = {(j.record.source_id, j.spec.task): j for j in jobs}
    study1 = by[("study:1", "report")]
    assert [r.path.rsplit("/", 1)[1] for r in study1.record.images] == ["1_IM-0001-4001.dcm.png", "1_IM-0001-3001.dcm.png"]
    assert study1.spec.answer == "Findings: The cardiac silhouette is normal. ___ ___ are intact. " \
                                 "Impression: No acute disease."
    assert len(study1.spec.placements) == 2 and "XXXX" not in study1.spec.answer
    assert by[("study:1", "diagnosis_open")].spec.answer == "normal"
    assert by[("study:2", "diagnosis_open")].spec.findings == ("Cardiomegaly", "Hiatal Hernia")
    assert by[("study:2", "report")].spec.answer.endswith("Impression: Hiatal hernia. No effusion.")
    assert ("study:3", "report") in by and ("study:3", "diagnosis_open") not in by  # No Indexing: the report only
    bad = {r.source_id: r.message for r in rejected(rejects, "bad_row")}
    assert set(bad) == {"indiana_projections.csv:line6", "indiana_projections.csv:line7"}
    assert "Oblique" in bad["indiana_projections.csv:line6"] and "not in indiana_reports.csv" in bad["indiana_projections.csv:line7"]
    (missing,) = rejected(rejects, "missing_file")
    assert missing.source_id == "study:4" and "no usable image" in missing.message


def test_problem_names_put_mesh_inversions_in_reading_order():
    assert problem_names("Hernia, Hiatal;Opacity;Pulmonary Disease, Chronic Obstructive") == (
        "Hiatal Hernia", "Opacity", "Chronic Obstructive Pulmonary Disease")
