"""PMC-OA: JSON Lines (a broken line is a ``bad_row``, the rest of the file is read), RadFM's CSVs, the caption
layout in built samples."""

from __future__ import annotations

import csv

from literature_helpers import accounted, check_layout, plan, samples

from pipelines.sources.pmc_oa import CaptionFields
from pipelines.sources.pmc_oa.source import NATIVE_FILES
from pipelines.tasks.common import prompts


def test_native_json_lines(demo_raw):
    records, read_rejects, jobs, rejects = plan(demo_raw, "pmc_oa", "native")
    lines = sum(len((demo_raw / "pmc_oa" / n).read_text().splitlines()) for n in NATIVE_FILES.values())
    accounted(records, read_rejects, lines)
    (bad,) = [r for r in rejects if r.reason == "bad_row"]
    assert bad.source_id.startswith("train.jsonl:line") and "not JSON" in bad.message
    assert {r.split for r in records} == {"train", "validate", "test"}
    assert all(isinstance(r.fields, CaptionFields) and r.fields.pmcid.startswith("PMC") for r in records)


def test_radfm_rows(demo_raw):
    records, read_rejects, _, _ = plan(demo_raw, "pmc_oa", "radfm")
    rows = 0
    for n in ("pmcoa_image_caption_train.csv", "pmcoa_image_caption_test.csv"):
        with open(demo_raw / "pmc_oa/radfm" / n, newline="") as fh:
            rows += sum(1 for _ in csv.DictReader(fh))
    accounted(records, read_rejects, rows)


def test_built_captions(demo_shards):
    built = samples(demo_shards, "pmc_oa")
    assert built
    for meta, decoded in built:
        assert meta.task == "caption" and meta.question in prompts("caption")
        assert check_layout(meta, decoded) == {"question": 1}
