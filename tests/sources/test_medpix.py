"""MedPix: RadFM's three files, the vocabulary of MedPix's categories, rejects (unknown type, missing image kept
out of its case), every row accounted for, the case / image / QA layouts in built samples."""

from __future__ import annotations

import csv

from literature_helpers import accounted, check_layout, plan, rejects_of, samples

from pipelines.build import make_context, read_dataset
from pipelines.sources import get_source
from pipelines.sources.medpix import MedpixVocabulary
from pipelines.sources.medpix.source import CATEGORIES, CaseFields, ImageFields, QaFields

FILES = [f"MedPix_{kind}_{split}.csv" for kind in ("multi", "single", "questions") for split in ("train", "test")]


def _rows(raw, name):
    with open(raw / "medpix/radfm" / name, newline="") as fh:
        return list(csv.DictReader(fh))


def test_every_row_is_a_record_or_a_reject(demo_raw):
    records, read_rejects, jobs, rejects = plan(demo_raw, "medpix")
    accounted(records, read_rejects, sum(len(_rows(demo_raw, f)) for f in FILES))
    kinds = {type(r.fields) for r in records}
    assert kinds == {CaseFields, ImageFields, QaFields}
    assert {j.spec.task for j in jobs} == {"medpix_case", "medpix_image", "medpix_qa"}
    bad = [r for r in rejects if r.reason == "bad_row"]
    assert len(bad) == 1 and "'orientation' is not one of caption, modality, plane" in bad[0].message


def test_a_missing_image_leaves_its_case_with_the_others(demo_raw):
    records, _, _, rejects = plan(demo_raw, "medpix")
    (missing,) = [r for r in rejects if r.reason == "missing_file"]
    row_id, image = missing.source_id.rsplit(":", 1)
    exam = [r for r in records if isinstance(r.fields, CaseFields) and r.fields.kind == "exam"]
    assert len(exam) == 1 and image not in {i.path.rsplit("/", 1)[-1] for i in exam[0].images} and exam[0].images
    assert image in exam[0].source_id  # the row named it


def test_vocabulary_has_medpix_categories_and_the_files_values(demo_raw):
    source = get_source("medpix")
    records, vocab, _ = read_dataset(source, make_context(source, demo_raw / "medpix"))
    assert isinstance(vocab, MedpixVocabulary) and len(CATEGORIES["modality"]) == 74 and len(CATEGORIES["plane"]) == 24
    used = {r.fields.value for r in records if isinstance(r.fields, ImageFields) and r.fields.kind == "modality"}
    assert set(CATEGORIES["modality"]) | used == set(vocab.modalities)


def test_built_medpix_layouts(demo_shards):
    built = samples(demo_shards, "medpix")
    by_task = {}
    for meta, decoded in built:
        where = check_layout(meta, decoded)
        assert set(where) == {"question"}  # every MedPix image goes into the question
        by_task.setdefault(meta.task, []).append(meta)
        if meta.task == "medpix_case":
            assert len(meta.images) >= 2 and "•" not in meta.answer.replace("• ", "")
            if meta.variant == "findings":
                assert " mm" not in meta.answer and "cm" not in meta.answer
            chars = {s.char for s in meta.image_spans}
            assert len(chars) == 1  # all at the start or all at the end
        if meta.task == "medpix_image" and meta.variant.endswith(("_yes", "_no")):
            assert meta.answer in ("yes", "no")
    assert set(by_task) == {"medpix_case", "medpix_image", "medpix_qa"}
    assert {m.variant for m in by_task["medpix_case"]} >= {"findings", "diagnosis", "ddx", "dxHow", "discussion"}
    assert "undecodable" in {r["reason"] for r in rejects_of(demo_shards, "medpix")}
