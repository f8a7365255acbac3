"""VQA-RAD: both modes (the publisher's JSON, RadFM's CSVs with answer types joined in), rejects, every row
accounted for, the VQA layout in built samples."""

from __future__ import annotations

import json

from literature_helpers import accounted, check_layout, plan, rejects_of, samples

from pipelines.sources.radfm_vqa import VqaFields
from pipelines.sources.vqa_rad.source import IMAGE_FOLDER, PUBLIC_JSON


def test_native_reads_the_public_json(demo_raw):
    records, read_rejects, jobs, rejects = plan(demo_raw, "vqa_rad", "native")
    entries = json.loads((demo_raw / "vqa_rad" / PUBLIC_JSON).read_text())
    accounted(records, read_rejects, len(entries))
    by_reason = {r.reason: r for r in rejects}
    assert "expected an object with keys" in by_reason["bad_row"].message  # the entry without a question
    assert by_reason["missing_file"].file.startswith("synpic")
    assert {r.split for r in records} == {"train", "test"}
    test_q = sum(e.get("phrase_type", "").startswith("test") for e in entries if "question" in e)
    assert sum(r.split == "test" for r in records) == test_q
    assert all(isinstance(r.fields, VqaFields) and r.fields.answer_type in ("closed", "open") for r in records)
    assert all(r.images[0].path.startswith(IMAGE_FOLDER + "/") for r in records)
    assert {j.spec.variant for j in jobs} == {"closed", "open"}


def test_radfm_rows_take_the_publishers_answer_types(demo_raw):
    records, read_rejects, jobs, _ = plan(demo_raw, "vqa_rad", "radfm")
    rows = sum(len((demo_raw / "vqa_rad/radfm" / f).read_text().splitlines()) - 1 for f in ("vqarad_train.csv", "vqarad_test.csv"))
    accounted(records, read_rejects, rows)
    assert all(r.fields.answer_type in ("closed", "open") for r in records)
    assert all(j.spec.answer_type == j.record.fields.answer_type for j in jobs)


def test_built_samples_record_the_answer_type(demo_shards):
    built = samples(demo_shards, "vqa_rad")
    assert built
    for meta, decoded in built:
        assert meta.task == "vqa" and meta.answer_type in ("closed", "open") and meta.variant == meta.answer_type
        assert check_layout(meta, decoded) == {"question": 1}  # the image is in the question, the answer learned
    assert {r["reason"] for r in rejects_of(demo_shards, "vqa_rad")} == {"bad_row", "missing_file"}
