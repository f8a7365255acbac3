"""The twelve X-ray classification sources, each on its demo data (pipelines.sources.diagnosis and the source
modules): native labels as the fixture wrote them, balanced and seeded yes/no questions, RadFM split mode with its
remapped paths and the shared files' foreign rows left alone, and the dataset-level account (every image a sample or
a reject, every bad row a reject). Each source's own rules are tested in tests/sources/test_<dataset>.py."""

from __future__ import annotations

import json
from collections import Counter, defaultdict

import pytest
from xray_helpers import XRAY, plan, tasks

from pipelines.sources import get_source
from pipelines.sources.diagnosis import DiagnosisFields, RadfmOpenFields, RadfmYesNoFields
from pipelines.tasks.common import prompts
from shards_spec.reader import iter_raw_samples
from shards_spec.schema import SampleMeta


def planted(info: dict, dataset: str, kind: str | None = None) -> list[dict]:
    return [p for p in info["planted"] if p["dataset"] == dataset and (kind is None or p["kind"] == kind)]


@pytest.mark.parametrize("dataset", XRAY)
def test_native_open_diagnosis_states_the_fixture_labels(demo_tree, dataset):
    out, info = demo_tree
    source = get_source(dataset)
    jobs, _ = plan(out / dataset, dataset)
    opened = tasks(jobs, "diagnosis_open")
    assert opened
    labels = info[dataset]["labels"]
    for job in opened:
        fields = job.record.fields
        assert isinstance(fields, DiagnosisFields) and fields.labelled
        expected = {tuple(sorted(labels[ref.path])) for ref in job.record.images}
        if dataset == "chexpert" and ref_is(info, dataset, "only_uncertain", job):
            continue
        assert expected == {tuple(sorted(fields.findings))}, job.record.source_id
        assert job.spec.answer == (", ".join(fields.findings) or source.normal)
        assert job.spec.findings == fields.findings and set(job.spec.findings) <= set(job.spec.label_set)
        assert job.spec.label_set[-1] == source.normal and job.spec.prompt_id.startswith(f"{source.prompt_kind}/")
        assert job.spec.question in prompts(source.prompt_kind)
        assert [p.char for p in job.spec.placements] == [len(job.spec.question)] * len(job.record.images)  # end
    assert {j.record.split for j in opened} == {"train", "test"}


def names_in(path: str, message: str) -> bool:
    """Whether a message names the image: its path, file name or file name without extension (the table's id)."""
    name = path.rsplit("/", 1)[-1]
    return path in message or name in message or name.split(".")[0] in message


def ref_is(info, dataset, key, job) -> bool:
    return any(ref.path == info[dataset].get(key) for ref in job.record.images)


@pytest.mark.parametrize("dataset", XRAY)
def test_native_yes_no_is_balanced_per_finding_from_the_dataset_own_labels(demo_tree, dataset):
    out, info = demo_tree
    jobs, _ = plan(out / dataset, dataset)
    asked = tasks(jobs, "diagnosis_yesno")
    assert asked
    counts: Counter = Counter()
    for job in asked:
        fields, disease = job.record.fields, job.spec.variant.split(":", 1)[1]
        present = job.spec.answer == "yes"
        assert job.spec.variant.startswith(job.spec.answer + ":") and disease in job.spec.question
        assert disease in job.spec.label_set[:-1]  # a finding of the dataset, never its normal label
        assert (disease in fields.findings) == present and disease not in fields.uncertain
        assert job.spec.prompt_id.startswith("yes_no/")
        assert [p.char for p in job.spec.placements] == [len(job.spec.question)] * len(job.record.images)
        counts[(job.record.split, disease, present)] += 1
    for split, disease, present in counts:
        assert counts[(split, disease, True)] == counts[(split, disease, False)], (split, disease)
    # seeded: the same seed asks the same questions; another seed draws other images where there is a choice
    again, _ = plan(out / dataset, dataset)
    assert [(j.key, j.spec) for j in tasks(again, "diagnosis_yesno")] == [(j.key, j.spec) for j in asked]


def test_another_seed_draws_other_questions(demo_tree):
    out, _ = demo_tree
    pick = {seed: {j.key for j in tasks(plan(out / "nih_cxr14", "nih_cxr14", seed=seed)[0], "diagnosis_yesno")}
            for seed in (0, 1, 2)}
    assert len({frozenset(v) for v in pick.values()}) > 1


@pytest.mark.parametrize("dataset", XRAY)
def test_radfm_mode_takes_its_rows_remapped_and_leaves_the_others(demo_tree, dataset):
    out, info = demo_tree
    raw, source = out / dataset, get_source(dataset)
    jobs, rejects = plan(raw, dataset, "radfm")
    own = defaultdict(int)
    for name in (*source.radfm.open.values(), *source.radfm.yes_no.values()):
        lines = (raw / "radfm" / name).read_text().splitlines()[1:]
        own[name] = sum(source.owns(line.split(",")[0]) for line in lines)
        assert own[name] > 0
    for job in jobs:
        assert isinstance(job.record.fields, (RadfmOpenFields, RadfmYesNoFields))
        (ref,) = job.record.images
        assert not ref.path.startswith("/") and (raw / ref.path).is_file()  # remapped onto the raw root
        assert ref.path in info[dataset]["labels"]  # one of this dataset's images, never another's
    file_rejects = [r for r in rejects if r.reason != "duplicate"]
    # every row of this dataset in RadFM's files is a sample or a reject
    assert len(jobs) + len(file_rejects) == sum(own.values())
    missing = [r for r in rejects if r.reason == "missing_file"]
    assert [r.source_id for r in missing] == [info[dataset]["radfm_missing"]]
    assert {j.spec.task for j in jobs} == {"diagnosis_open", "diagnosis_yesno"}
    for job in tasks(jobs, "diagnosis_yesno"):
        assert job.spec.answer in ("yes", "no") and job.record.fields.disease in job.spec.question


@pytest.mark.parametrize("dataset", XRAY)
def test_every_image_is_a_sample_or_a_reject(demo_tree, demo_shards, dataset):
    out, info = demo_tree
    root = demo_shards / dataset
    manifest = json.loads((root / "manifest.json").read_text())
    rejects = [json.loads(line) for line in (root / "rejects.jsonl").read_text().splitlines()]
    sampled: set[str] = set()
    n = 0
    for shard in manifest["shards"]:
        for raw in iter_raw_samples(root / shard["path"]):
            meta = SampleMeta.from_dict(raw.decode()["meta.json"])
            sampled.update(meta.source_paths)
            n += 1
            assert meta.task in ("diagnosis_open", "diagnosis_yesno", "report")
            if meta.task != "report":
                assert meta.label_set and set(meta.findings) <= set(meta.label_set)
    assert n == manifest["samples"]
    images = set(info[dataset]["labels"])
    rejected = {p for p in images if any(p == r["file"] or p == r["source_id"] or names_in(p, r["message"]) for r in rejects)}
    assert sampled <= images
    assert sampled | rejected == images  # (an image can be both: one reader's row rejected, the others sampled)
    broken = {p["file"] for p in planted(info, dataset) if p["kind"] != "bad_row"}
    assert broken <= rejected and not broken & sampled
    # every planted bad row is a reject, and no other line of the dataset's own tables is
    bad = [r for r in rejects if r["reason"] == "bad_row"]
    assert len(bad) == len(planted(info, dataset, "bad_row"))
