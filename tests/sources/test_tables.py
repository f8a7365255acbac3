"""Reading a source's tables and JSON lists: rows or rejects (pipelines.sources.tables)."""

from __future__ import annotations

import gzip

import pytest

from pipelines.records import Reject
from pipelines.sources.tables import Item, Row, json_items, optional_json, read_table, table_rows


def test_read_table_reports_ragged_rows(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text('image_path,label\na.jpg,"Findings: x, y"\nb.jpg\nc.jpg,z\n')
    rows, bad = read_table(p, ("image_path", "label"))
    assert [r.values["image_path"] for r in rows] == ["a.jpg", "c.jpg"]
    assert rows[0].values["label"] == "Findings: x, y"
    assert len(bad) == 1 and "1 fields, header has 2" in bad[0] and "'b.jpg'" in bad[0]
    assert [r.line for r in rows] == [1, 2]
    with pytest.raises(ValueError, match="missing column"):
        read_table(p, ("image_path", "report"))


def test_table_rows_yields_rows_or_rejects(tmp_path):
    p = tmp_path / "t.csv.gz"
    p.write_bytes(gzip.compress(b"a,b\n1,2\n3\n4,5\n", mtime=0))
    got = list(table_rows("ds", p, ("a", "b"), "test table"))
    assert [type(x) for x in got] == [Reject, Row, Row]  # the malformed row first, then the good rows
    assert got[0].reason == "bad_row" and got[0].file == "t.csv.gz" and got[0].dataset == "ds"
    assert [r.values for r in got[1:]] == [{"a": "1", "b": "2"}, {"a": "4", "b": "5"}]

    (missing,) = table_rows("ds", tmp_path / "none.csv", ("a",), "test table")
    assert missing.reason == "missing_file" and "test table" in missing.message
    (no_column,) = table_rows("ds", p, ("a", "c"), "test table")
    assert no_column.reason == "bad_file" and "missing column(s) c" in no_column.message
    (tmp_path / "bad.csv.gz").write_bytes(b"not gzip at all")
    (broken,) = table_rows("ds", tmp_path / "bad.csv.gz", ("a",), "test table")
    assert broken.reason == "bad_file" and "bad.csv.gz" in broken.message


def test_json_items_yields_entries_or_rejects(tmp_path):
    (tmp_path / "l.json").write_text('[{"x": 1}, 2]')
    assert list(json_items("ds", tmp_path / "l.json", "list")) == [Item(0, {"x": 1}), Item(1, 2)]
    (tmp_path / "o.json").write_text('{"x": 1}')
    (tmp_path / "bad.json").write_text('[{"x": ')
    for name, reason in (("o.json", "bad_file"), ("bad.json", "bad_file"), ("none.json", "missing_file")):
        (reject,) = json_items("ds", tmp_path / name, "list")
        assert reject.reason == reason and reject.source_id == name
    assert optional_json("ds", tmp_path / "none.json") == (None, None)
    assert optional_json("ds", tmp_path / "o.json") == ({"x": 1}, None)
    value, reject = optional_json("ds", tmp_path / "bad.json")
    assert value is None and reject.reason == "bad_file" and "skipped" in reject.message
