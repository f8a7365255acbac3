"""VinDr-PCXR's rules (pipelines/sources/vindr_pcxr): one-hot tables at the root, and RadFM split mode whose cluster
paths name PNG copies that the download does not have (the DICOM is used), its own files only."""

from __future__ import annotations

from xray_helpers import by_image, csv_text, plan, raw_tree, rejected

from pipelines.sources.diagnosis import PCXR_FILES
from pipelines.sources.vindr_pcxr.source import FINDINGS

A, B, C = (f"{k:032x}" for k in (10, 11, 12))
CLUSTER = "/mnt/petrelfs/share_data/VinDr-PCXR/process/"


def onehot(image: str, *marked: str) -> list[str]:
    return [image, "R1", *("1" if f in marked else "0" for f in (*FINDINGS, "No finding"))]


def test_native_tables_and_radfm_png_paths_fall_back_to_the_dicom(tmp_path):
    header = ["image_id", "rad_ID", *FINDINGS, "No finding"]
    open_rows = [[f"{CLUSTER}train/{A}.png", "Bronchitis"], [f"{CLUSTER}train/{B}.png", "No finding"],
                 [f"{CLUSTER}train/{C}.png", "Pneumonia"]]  # C: not in the download
    raw = raw_tree(tmp_path / "vindr_pcxr", {
        "image_labels_train.csv": csv_text(header, [onehot(A, "Bronchitis", "Pneumonia"), onehot(B, "No finding")]),
        "image_labels_test.csv": csv_text(header, []),
        f"train/{A}.dicom": b"", f"train/{B}.dicom": b"",
        f"radfm/{PCXR_FILES.open['train']}": csv_text(["image_path", "label"], open_rows),
        f"radfm/{PCXR_FILES.open['test']}": csv_text(["image_path", "label"], []),
        f"radfm/{PCXR_FILES.yes_no['train']}": csv_text(["image_path", "disease", "label"],
                                                         [[f"{CLUSTER}train/{A}.png", "Bronchitis", "1"],
                                                          [f"{CLUSTER}train/{B}.png", "Bronchitis", "maybe"]]),
        f"radfm/{PCXR_FILES.yes_no['test']}": csv_text(["image_path", "disease", "label"], []),
    })
    jobs, rejects = plan(raw, "vindr_pcxr")
    assert by_image(jobs) == {f"train/{A}.dicom": ("Bronchitis", "Pneumonia"), f"train/{B}.dicom": ()}

    jobs, rejects = plan(raw, "vindr_pcxr", "radfm")
    opened = {j.record.images[0].path: j.spec.answer for j in jobs if j.spec.task == "diagnosis_open"}
    assert opened == {f"train/{A}.dicom": "Bronchitis", f"train/{B}.dicom": "No finding"}  # RadFM's text, verbatim
    (yes,) = [j for j in jobs if j.spec.task == "diagnosis_yesno"]
    assert yes.spec.answer == "yes" and "Bronchitis" in yes.spec.question
    (missing,) = rejected(rejects, "missing_file")
    assert C in missing.message and missing.source_id.endswith(f"{C}.png")
    (bad,) = rejected(rejects, "bad_row")
    assert bad.source_id == f"{PCXR_FILES.yes_no['train']}:line3" and "'maybe'" in bad.message
