"""SLAKE: English rows only (every other row a ``not_english`` reject), both modes, splits, answer types."""

from __future__ import annotations

import csv
import json

from literature_helpers import accounted, check_layout, plan, samples

from pipelines.sources.slake.source import SPLIT_FILES, Slake


def test_native_keeps_english_rows_and_accounts_for_the_others(demo_raw):
    records, read_rejects, jobs, rejects = plan(demo_raw, "slake", "native")
    entries = {split: json.loads((demo_raw / "slake" / name).read_text()) for split, name in SPLIT_FILES.items()}
    accounted(records, read_rejects, sum(len(e) for e in entries.values()))
    chinese = sum(e.get("q_lang") == "zh" for es in entries.values() for e in es)
    assert sum(r.reason == "not_english" for r in rejects) == chinese > 0
    assert any(r.reason == "bad_row" and "keys" in r.message for r in rejects)
    assert {r.split for r in records} == {"train", "validate", "test"}
    assert all(r.modality in ("CT", "MRI", "X-Ray") and r.fields.answer_type for r in records)
    assert all(not any("\u4e00" <= ch <= "\u9fff" for ch in j.spec.question) for j in jobs)
    assert Slake.max_reject_fraction > 0.5  # half of SLAKE is Chinese


def test_radfm_rows_skip_chinese_and_join_the_publishers_facts(demo_raw):
    records, read_rejects, _, rejects = plan(demo_raw, "slake", "radfm")
    rows = 0
    for name in ("slakevqa_train.csv", "slakevqa_test.csv"):
        with open(demo_raw / "slake/radfm" / name, newline="") as fh:
            rows += sum(1 for _ in csv.DictReader(fh))
    accounted(records, read_rejects, rows)
    assert [r.reason for r in rejects] == ["not_english"]
    assert all(r.fields.answer_type in ("closed", "open") and r.modality for r in records)


def test_built_slake_samples(demo_shards):
    for meta, decoded in samples(demo_shards, "slake"):
        assert meta.answer_type in ("closed", "open") and check_layout(meta, decoded) == {"question": 1}
