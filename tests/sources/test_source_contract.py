"""The source contract over every registered source (pipelines.sources.base): its fixture writes the demo layout,
every mode plans records of its own typed fields and samples of registered tasks, the default mode builds shards
that validate, and every planted fault comes back as a reject with the reason its kind calls for."""

from __future__ import annotations

import json

import pytest

from pipelines.build import BuildRequest, build, derive_jobs, make_context, read_dataset
from pipelines.demo import get_fixture
from pipelines.demo.faults import REJECT_REASON
from pipelines.records import RecordFields
from pipelines.sources import REGISTRY, Store, Vocabulary, get_source, users_of
from pipelines.tasks import TASKS
from shards_spec.validate import validate_paths


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_source_contract(name, demo_tree, demo_shards):
    out, info = demo_tree
    source, fixture = get_source(name), get_fixture(name)
    assert source.name == fixture.name == name and source.default_mode in source.modes
    raw = out / name
    assert info[name]["root"] == str(raw) and raw.is_dir()
    if isinstance(source, Store):
        check_store(source, raw, info)
        return

    # fixture -> plan, in every mode
    for mode in source.modes:
        ctx = make_context(source, raw, mode)
        records, vocab, rejects = read_dataset(source, ctx)
        assert records, f"{name} ({mode}): no records from the demo"
        assert isinstance(vocab, Vocabulary) and all(isinstance(t, str) for t in source.label_terms(vocab))
        for record in records:
            assert record.dataset == name and record.split and record.stream in ("2d", "3d") and record.images
            assert type(record.fields) is not RecordFields and isinstance(record.fields, RecordFields)
            assert all(not ref.path.startswith("/") and ".." not in ref.path.split("/") for ref in record.images)
        assert all(r.dataset == name and r.stage == "plan" and r.reason and r.message for r in rejects)
        jobs, _ = derive_jobs(source, ctx, records, vocab, None)
        assert jobs and {j.spec.task for j in jobs} <= set(TASKS)

    # -> build (the session's demo shards, default mode) -> validate
    manifest = json.loads((demo_shards / name / "manifest.json").read_text())
    assert manifest["dataset"] == name and manifest["build"]["mode"] == source.default_mode and manifest["samples"] > 0
    assert validate_paths([str(demo_shards / name)]).violations == []

    # every planted fault is a reject with its reason
    rejects = [json.loads(line) for line in (demo_shards / name / "rejects.jsonl").read_text().splitlines()]
    planted = [p for p in info["planted"] if p["dataset"] == name]
    assert planted, f"the {name} fixture plants no fault"
    planted = [p for p in planted if p.get("mode", source.default_mode) == source.default_mode]  # others: per source
    for fault in planted:
        found = [r for r in rejects if r["reason"] == REJECT_REASON[fault["kind"]]
                 and (fault["kind"] == "bad_row" or fault["file"].rsplit("/", 1)[-1] in r["file"] + r["message"])]
        assert found, f"planted {fault} is not among the rejects"


def check_store(store: Store, raw, info) -> None:
    """A store: its fixture writes files of its layout and the planted strays, its check counts them, the datasets
    that read it say so, and building it describes it instead of writing shards."""
    check = store.check(raw)
    strays = [p for p in info["planted"] if p["dataset"] == store.name and p["kind"] == "stray_file"]
    assert strays and check.usable and check.scanned_all and check.strays == len(strays)
    assert {p["file"] for p in strays} <= set(check.examples)
    users = users_of(store.name)
    assert users and all(store.name in get_source(u).stores for u in users)
    described = build(BuildRequest(dataset=store.name, raw=raw, out=raw.parent / "unused", executor="serial", progress=False))
    assert described["store"] and described["used_by"] == users and described["files"] == check.files
    assert not (raw.parent / "unused").exists()
