"""CheXpert's rules (pipelines/sources/chexpert): ``1.0`` present, blank and ``0.0`` absent, ``-1.0`` uncertain
(neither listed nor asked: U-Ignore), only-uncertain images rejected; the raw root may be the CheXpert folder itself."""

from __future__ import annotations

from xray_helpers import csv_text, plan, raw_tree, rejected

from pipelines.sources.chexpert.source import FINDINGS

HEADER = ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA", "No Finding", *FINDINGS]
FOLDER = "CheXpert-v1.0-small"


def row(path: str, nf: str, **values: str) -> list[str]:
    return [path, "Female", 60, "Frontal", "AP", nf, *(values.get(f.replace(" ", "_"), "") for f in FINDINGS)]


def tree(root, prefix: str):
    rows = [row(f"{FOLDER}/train/patient{k:05d}/study1/view1_frontal.jpg", nf, **values) for k, (nf, values) in
            enumerate([("", {"Edema": "1.0", "Cardiomegaly": "-1.0", "Atelectasis": "0.0"}),
                       ("1.0", {}), ("", {"Cardiomegaly": "1.0"}), ("", {"Cardiomegaly": "0.0"}),
                       ("", {"Edema": "-1.0"}), ("", {"Edema": "yes"})], start=1)]
    valid = [row(f"{FOLDER}/valid/patient64541/study1/view1_frontal.jpg", "0.0", Cardiomegaly="1.0")]
    files = {f"{prefix}train.csv": csv_text(HEADER, rows), f"{prefix}valid.csv": csv_text(HEADER, valid)}
    for r in (*rows, *valid):
        files[prefix + r[0].split("/", 1)[1]] = b""
    return raw_tree(root, files)


def test_uncertain_blank_and_bad_values(tmp_path):
    raw = tree(tmp_path / "chexpert", f"{FOLDER}/")
    jobs, rejects = plan(raw, "chexpert")
    opened = {j.record.source_id.split("/")[2]: j for j in jobs if j.spec.task == "diagnosis_open"}
    assert opened["patient00001"].spec.findings == ("Edema",)
    assert opened["patient00001"].record.fields.uncertain == ("Cardiomegaly",)
    assert opened["patient00002"].spec.answer == "No Finding"
    assert set(opened) == {"patient00001", "patient00002", "patient00003", "patient64541"}
    assert opened["patient64541"].record.split == "test"
    for job in jobs:  # never asked about an uncertain observation
        if job.spec.task == "diagnosis_yesno":
            assert job.spec.variant.split(":", 1)[1] not in job.record.fields.uncertain
    no_label = {r.source_id.split("/")[2]: r.message for r in rejected(rejects, "no_label")}
    assert set(no_label) == {"patient00004", "patient00005"}  # only negatives / only uncertain, No Finding blank
    assert "only uncertain" in no_label["patient00005"]
    (bad,) = rejected(rejects, "bad_row")
    assert bad.source_id == "train.csv:line7" and "Edema='yes'" in bad.message


def test_the_raw_root_may_be_the_chexpert_folder(tmp_path):
    raw = tree(tmp_path / "chexpert", "")
    jobs, _ = plan(raw, "chexpert")
    assert {j.record.images[0].path for j in jobs} >= {"train/patient00001/study1/view1_frontal.jpg",
                                                       "valid/patient64541/study1/view1_frontal.jpg"}
