"""ChestX-ray14's rules (pipelines/sources/nih_cxr14): ``|``-separated labels, ``No Finding`` alone is normal and beside
a finding is dropped, names written with spaces, the official split lists, the 2017 table's trailing commas."""

from __future__ import annotations

from xray_helpers import by_image, plan, raw_tree, rejected

HEADER = "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position," \
         "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],"


def test_labels_split_lists_and_bad_rows(tmp_path):
    rows = ["00000001_000.png,Cardiomegaly|Emphysema,0,1,58,M,PA,2682,2749,0.143,0.143,",
            "00000001_001.png,No Finding,1,1,58,M,PA,2894,2729,0.143,0.143,",
            "00000002_000.png,Pleural_Thickening|No Finding,0,2,81,M,AP,2500,2048,0.168,0.168,",
            "00000003_000.png,Hernia|Cardiomegally,0,3,74,F,PA,2500,2048,0.168,0.168,",  # misspelt label
            "00000004_000.png,Mass,0,4,82,M,AP,2500,2048,0.168,0.168,",  # in no split list
            "00000005_000.png,Nodule,0,5,70,F,PA,2500,2048,0.168,0.168"]  # one field short (no trailing comma)
    images = {f"images_001/images/{r.split(',')[0]}": b"" for r in rows}
    raw = raw_tree(tmp_path / "nih_cxr14", {
        "Data_Entry_2017.csv": "\n".join([HEADER, *rows]) + "\n", **images,
        "train_val_list.txt": "00000001_000.png\n00000001_001.png\n00000003_000.png\n00000005_000.png\n",
        "test_list.txt": "00000002_000.png\n00000099_000.png\n"})
    jobs, rejects = plan(raw, "nih_cxr14")
    found = by_image(jobs)
    assert found == {"images_001/images/00000001_000.png": ("Cardiomegaly", "Emphysema"),
                     "images_001/images/00000001_001.png": (),
                     "images_001/images/00000002_000.png": ("Pleural Thickening",)}
    splits = {j.record.images[0].path: j.record.split for j in jobs}
    assert splits["images_001/images/00000002_000.png"] == "test"
    answers = {j.spec.answer for j in jobs if j.spec.task == "diagnosis_open"}
    assert answers == {"Cardiomegaly, Emphysema", "No Finding", "Pleural Thickening"}
    bad = {r.source_id: r.message for r in rejected(rejects, "bad_row")}
    # a list line naming an image the table lacks (or whose row was rejected) is a bad_row of the list
    assert set(bad) == {"Data_Entry_2017.csv:line5", "Data_Entry_2017.csv:line7", "test_list.txt:line2",
                        "train_val_list.txt:line4"}
    assert "Cardiomegally" in bad["Data_Entry_2017.csv:line5"] and "fields" in bad["Data_Entry_2017.csv:line7"]
    (no_split,) = rejected(rejects, "no_split")
    assert "00000004_000.png" in no_split.message and "neither" in no_split.message
