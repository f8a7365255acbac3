"""VinDr-CXR's rules (pipelines/sources/vindr_cxr): three radiologists per training image merged by majority, the test
file's consensus row as published, unknown values and a broken table rejected with their reason."""

from __future__ import annotations

from xray_helpers import by_image, csv_text, plan, raw_tree, rejected

from pipelines.records import FileReject
from pipelines.sources.vindr_cxr.source import FINDINGS

IDS = [f"{k:032x}" for k in range(1, 7)]
HEADER = ["image_id", "rad_ID", *FINDINGS, "No finding"]


def row(image: str, reader: str, *marked: str, value: str = "1") -> list[str]:
    return [image, reader, *(value if f in marked else "0" for f in (*FINDINGS, "No finding"))]


def tree(tmp_path, train_rows, test_rows, missing=()):
    files = {"annotations/image_labels_train.csv": csv_text(HEADER, train_rows),
             "annotations/image_labels_test.csv": csv_text([h for h in HEADER if h != "rad_ID"],
                                                           [[r[0], *r[2:]] for r in test_rows])}
    for split, rows in (("train", train_rows), ("test", test_rows)):
        for r in rows:
            if r[0] and r[0] not in missing:
                files[f"{split}/{r[0]}.dicom"] = b""
    return raw_tree(tmp_path / "vindr_cxr", files)


def test_a_finding_is_present_when_a_majority_of_the_readers_mark_it(tmp_path):
    a, b, c, d = IDS[:4]
    train = [row(a, "R1", "Nodule/Mass", "Pleural effusion"), row(a, "R2", "Nodule/Mass"), row(a, "R3", "No finding"),
             row(b, "R1", "Pneumothorax"), row(b, "R2", "No finding"), row(b, "R3", "No finding"),
             row(c, "R1", "Edema"), row(c, "R2", "Pneumothorax"), row(c, "R3", "No finding")]
    test = [row(d, "", "Cardiomegaly", "Aortic enlargement")]
    jobs, rejects = plan(tree(tmp_path, train, test), "vindr_cxr")
    found = by_image(jobs)
    assert found[f"train/{a}.dicom"] == ("Nodule/Mass",)  # 2 of 3; the effusion only 1 of 3
    assert found[f"train/{b}.dicom"] == ()  # two readers say No finding: normal
    assert found[f"test/{d}.dicom"] == ("Aortic enlargement", "Cardiomegaly")  # the consensus row, label-set order
    (no_label,) = rejected(rejects, "no_label")  # c: no majority for anything
    assert no_label.source_id == f"train/{c}.dicom" and "3 readers" in no_label.message
    answers = {j.record.images[0].path: j.spec.answer for j in jobs if j.spec.task == "diagnosis_open"}
    assert answers[f"train/{b}.dicom"] == "No finding"


def test_an_unknown_value_a_missing_image_and_a_broken_table_are_rejected_with_their_reason(tmp_path):
    a, b, c = IDS[:3]
    train = [row(a, "R1", "Edema"), row(b, "R1", "ILD", value="2"), row(c, "R1", "ILD")]
    raw = tree(tmp_path, train, [row(IDS[3], "", "ILD")], missing=(c,))
    jobs, rejects = plan(raw, "vindr_cxr")
    (bad,) = rejected(rejects, "bad_row")
    assert bad.source_id == "image_labels_train.csv:line3" and "ILD='2'" in bad.message
    (missing,) = rejected(rejects, "missing_file")
    assert missing.file == f"train/{c}.dicom"
    assert set(by_image(jobs)) == {f"train/{a}.dicom", f"test/{IDS[3]}.dicom"}
    # a table without its label columns is one bad_file reject (the other split still builds)
    (raw / "annotations/image_labels_test.csv").write_text("image_id,whatever\nx,1\n")
    jobs, rejects = plan(raw, "vindr_cxr")
    files = [r for r in rejects if isinstance(r, FileReject)]
    assert [(r.file, r.reason) for r in files] == [("image_labels_test.csv", "bad_file")]
    assert "missing column" in files[0].message and {j.record.split for j in jobs} == {"train"}
