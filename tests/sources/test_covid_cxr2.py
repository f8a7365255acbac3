"""COVIDx CXR-2's rules (pipelines/sources/covid_cxr2): the space-separated split files, ``positive`` as the finding
``COVID-19`` and ``negative`` as ``No COVID-19``; a short line, another class and a path leaving the raw root are
rejected with their reasons."""

from __future__ import annotations

from xray_helpers import by_image, plan, raw_tree, rejected


def test_split_files_classes_and_bad_lines(tmp_path):
    train = ["101 covid-001.png positive cohen", "102 normal scan 7.jpeg negative rsna", "103 short.png",
             "104 x.png maybe sirm", "105 ../../outside.png positive cohen", "", "106 gone.png negative rsna"]
    raw = raw_tree(tmp_path / "covid_cxr2", {
        "train.txt": "\n".join(train) + "\n", "test.txt": "201 t1.png positive bimcv\n",
        "train/covid-001.png": b"", "train/normal scan 7.jpeg": b"", "test/t1.png": b""})
    jobs, rejects = plan(raw, "covid_cxr2")
    assert by_image(jobs) == {"train/covid-001.png": ("COVID-19",), "train/normal scan 7.jpeg": (),
                              "test/t1.png": ("COVID-19",)}
    assert {j.spec.answer for j in jobs if j.spec.task == "diagnosis_open"} == {"COVID-19", "No COVID-19"}
    bad = {r.source_id: r.message for r in rejected(rejects, "bad_row")}
    assert set(bad) == {"train.txt:line3", "train.txt:line4"}
    assert "expected 'patient_id filename class source'" in bad["train.txt:line3"] and "'maybe'" in bad["train.txt:line4"]
    assert [r.reason for r in rejects if "outside" in r.message or "climbs" in r.message] == ["outside_root"]
    assert [r.file for r in rejected(rejects, "missing_file")] == ["train/gone.png"]
    # a missing split file is one file-level reject, the other split still builds
    (raw / "test.txt").unlink()
    jobs, rejects = plan(raw, "covid_cxr2")
    assert [(r.file, r.reason) for r in rejects if r.file == "test.txt"] == [("test.txt", "missing_file")]
    assert {j.record.split for j in jobs} == {"train"}
