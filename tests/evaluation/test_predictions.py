"""Prediction records: compact image spans, per-batch atomic part files, repair after a kill, RadFM's CSV."""

from __future__ import annotations

import csv
import json

from evaluation.predictions import (
    CSV_COLUMNS,
    append_batch,
    compact_text,
    part_path,
    read_parts,
    repair,
    write_predictions,
)
from pipelines.records import ImagePlacement
from shards_spec.schema import ImageSpan


def test_compact_text_follows_radfms_position_rule():
    q = "Is there an effusion?"
    end = [ImageSpan(0, "question", len(q), 7)]
    assert compact_text(q, end, "question") == "Is there an effusion<IMG 0>?"
    assert compact_text(q, [ImageSpan(0, "question", 0, 1), ImageSpan(1, "question", 1, 35)], "question") == \
        "<IMG 0><IMG 1>Is there an effusion?"
    assert compact_text(q, [ImageSpan(0, "question", 99, 1)], "question") == q + "<IMG 0>"  # past the end
    assert compact_text(q, end, "answer") == q  # spans of the other text are not shown
    assert compact_text("ab", [ImagePlacement("question", 2), ImagePlacement("question", 0)], "question") == \
        "<IMG 1>a<IMG 0>b"  # placements: the image index is the position in the list


def _record(key: str, pred: str = "yes") -> dict:
    return {"key": key, "dataset": "mimic", "task": "report", "question": "Q?", "question_compact": "Q<IMG 0>?",
            "truth": "T, with a comma", "truth_compact": "T, with a comma", "pred": pred, "belong_to": "b"}


def test_parts_append_whole_batches_and_repair_a_torn_last_line(tmp_path):
    part = part_path(tmp_path, 0)
    append_batch(part, [_record("k1"), _record("k2")])
    append_batch(part, [_record("k3")])
    good = part.read_bytes()
    with open(part, "ab") as fh:  # a writer killed in the middle of a batch
        fh.write(json.dumps(_record("k4")).encode()[:17])
    assert set(read_parts(tmp_path)) == {"k1", "k2", "k3"}  # readers skip the partial line
    repair(part)
    assert part.read_bytes() == good
    with open(part, "ab") as fh:  # a complete but unparseable last line is cut too
        fh.write(b"{not json}\n")
    repair(part)
    assert part.read_bytes() == good
    repair(part)  # idempotent
    assert part.read_bytes() == good
    append_batch(part_path(tmp_path, 1), [_record("k2", pred="other"), _record("k5")])
    merged = read_parts(tmp_path)
    assert sorted(merged) == ["k1", "k2", "k3", "k5"] and merged["k2"]["pred"] == "yes"  # first one wins


def test_predictions_csv_has_radfms_columns_one_row_per_record_in_key_order(tmp_path):
    jsonl, table = write_predictions(tmp_path, [_record("k2", pred='say "no",\nthen stop'), _record("k1")])
    rows = list(csv.DictReader(table.open(newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["key"] for r in rows] == ["k1", "k2"]
    assert rows[1]["Pred"] == 'say "no",\nthen stop' and rows[1]["Question"] == "Q<IMG 0>?"
    assert rows[0]["Ground Truth"] == "T, with a comma"
    assert [json.loads(line)["key"] for line in jsonl.read_text().splitlines()] == ["k1", "k2"]
