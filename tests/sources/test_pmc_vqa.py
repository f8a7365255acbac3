"""PMC-VQA: the publisher's multiple-choice CSVs (choices without letters), RadFM's CSVs with the choices joined in,
rejects, and the choices in the built samples."""

from __future__ import annotations

import csv

from literature_helpers import accounted, check_layout, plan, rejects_of, samples

from pipelines.sources.pmc_vqa import choice_text


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_choice_letters_are_removed():
    assert choice_text(" A:Diffuse uptake pattern") == "Diffuse uptake pattern"
    assert choice_text("B) Focal") == "Focal" and choice_text("C. No uptake") == "No uptake"
    assert choice_text("Axial") == "Axial"


def test_native_rows(demo_raw):
    records, read_rejects, jobs, rejects = plan(demo_raw, "pmc_vqa", "native")
    rows = {n: _rows(demo_raw / "pmc_vqa" / n) for n in ("train.csv", "test.csv")}
    accounted(records, read_rejects, sum(len(r) for r in rows.values()))
    assert {r.reason for r in rejects} == {"bad_row", "missing_file"}
    for r in records:
        assert len(r.fields.choices) == 4 and r.fields.answer in r.fields.choices and r.fields.answer_type == "closed"
        assert not any(c[:2] in ("A:", "B:", "C:", "D:") for c in r.fields.choices)


def test_radfm_rows_carry_the_choices(demo_raw):
    records, read_rejects, _, _ = plan(demo_raw, "pmc_vqa", "radfm")
    rows = sum(len(_rows(demo_raw / "pmc_vqa/radfm" / n)) for n in ("pmcvqa_train.csv", "pmcvqa_test.csv"))
    accounted(records, read_rejects, rows)
    assert all(len(r.fields.choices) == 4 and r.fields.answer in r.fields.choices for r in records)


def test_built_samples_keep_choices_for_evaluation(demo_shards):
    built = samples(demo_shards, "pmc_vqa")
    assert built
    for meta, decoded in built:
        assert meta.answer_type == "closed" and len(meta.choices) == 4 and meta.answer in meta.choices
        assert check_layout(meta, decoded) == {"question": 1}
    assert "undecodable" in {r["reason"] for r in rejects_of(demo_shards, "pmc_vqa")}  # the truncated figure
