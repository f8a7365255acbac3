"""Reading a source's files: rows, items and text or rejects, every data line accounted for
(pipelines.sources.tables)."""

from __future__ import annotations

import gzip
import json

import pytest

from pipelines.paths import PathResolver
from pipelines.records import FileReject, Reject
from pipelines.sources.tables import (
    BadLine,
    FileProblem,
    Item,
    Row,
    json_items,
    optional_json,
    optional_table,
    read_table,
    table_rows,
    text_file,
)


def test_every_line_is_a_row_or_a_bad_line(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text('image_path,label\na.jpg,"Findings: x, y"\nb.jpg\n\nc.jpg,z\n')
    rows, bad = read_table(p, ("image_path", "label"))
    assert [(r.line, r.values["image_path"]) for r in rows] == [(2, "a.jpg"), (5, "c.jpg")]  # physical lines
    assert rows[0].values["label"] == "Findings: x, y"
    assert bad == [BadLine(3, "1 fields, header has 2: 'b.jpg'")]  # the blank line 4 is not data
    with pytest.raises(FileProblem, match="missing column"):
        read_table(p, ("image_path", "report"))


def test_a_broken_quote_costs_its_own_line_only(tmp_path):
    """An unterminated quote used to swallow the following rows into one reject (or one garbage value)."""
    p = tmp_path / "t.csv"
    p.write_text('a,b,c\n1,"unterminated,x\n2,y,z\n3,"q",w\n7,"bad"x,y\n8,"ok, fine",v\n')
    rows, bad = read_table(p, ("a", "b", "c"))
    assert [r.values for r in rows] == [{"a": "2", "b": "y", "c": "z"}, {"a": "3", "b": "q", "c": "w"},
                                        {"a": "8", "b": "ok, fine", "c": "v"}]
    assert [(b.line, b.problem.split(" (")[0]) for b in bad] == [(2, "broken quoting"), (5, "broken quoting")]
    data_lines = 5
    assert len(rows) + len(bad) == data_lines


def test_multiline_tables_accept_quoted_newlines_but_not_swallowed_rows(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text('a,b\n1,"two\nlines"\n2,"open\n3,x\n4,y\n')
    rows, bad = read_table(p, ("a", "b"), multiline=True)
    assert [(r.line, r.values) for r in rows] == [(2, {"a": "1", "b": "two\nlines"}), (5, {"a": "3", "b": "x"}),
                                                  (6, {"a": "4", "b": "y"})]
    assert [b.line for b in bad] == [4]
    rows, bad = read_table(p, ("a", "b"))  # one row per line: the quoted newline is broken quoting
    assert [b.line for b in bad] == [2, 3, 4] and [r.line for r in rows] == [5, 6]


def test_table_rows_yields_rows_and_rejects_in_line_order(tmp_path):
    p = tmp_path / "t.csv.gz"
    p.write_bytes(gzip.compress(b"a,b\n1,2\n3\n4,5\n", mtime=0))
    got = list(table_rows("ds", p, ("a", "b"), "test table"))
    assert [type(x) for x in got] == [Row, Reject, Row]
    assert got[1].reason == "bad_row" and got[1].file == "t.csv.gz" and got[1].source_id == "t.csv.gz:line3"
    assert [r.values for r in (got[0], got[2])] == [{"a": "1", "b": "2"}, {"a": "4", "b": "5"}]


@pytest.mark.parametrize("name, content, reason, words", [
    ("none.csv", None, "missing_file", "test table"),
    ("cols.csv", b"a,c\n1,2\n", "bad_file", "missing column(s) b"),
    ("bad.csv.gz", b"not gzip at all", "bad_file", "bad.csv.gz"),
    ("cut.csv.gz", gzip.compress(b"a,b\n" + b"1,2\n" * 1000, mtime=0)[:-40], "bad_file", "cut.csv.gz"),
    ("empty.csv", b"", "bad_file", "no header"),
])
def test_unreadable_tables_are_one_file_reject(tmp_path, name, content, reason, words):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    (reject,) = table_rows("ds", tmp_path / name, ("a", "b"), "test table")
    assert isinstance(reject, FileReject) and reject.reason == reason and words in reject.message


def test_a_directory_where_a_table_belongs(tmp_path):
    (tmp_path / "dir.csv").mkdir()
    (reject,) = table_rows("ds", tmp_path / "dir.csv", ("a",), "test table")
    assert reject.reason == "bad_file" and "is a directory" in reject.message


def test_non_utf8_bytes_do_not_lose_the_file(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes("a,b\n1,caf\xe9 ok\n2,fine\n".encode("latin-1"))
    rows, bad = read_table(p, ("a", "b"))
    assert bad == [] and rows[0].values["b"] == "caf\udce9 ok"  # kept as a surrogate for the build's hygiene


def test_optional_table_reports_and_skips(tmp_path):
    assert optional_table("ds", tmp_path / "none.csv", ("a",)) == ([], [])
    (tmp_path / "m.csv").write_text("x,y\n1,2\n")
    rows, (reject,) = optional_table("ds", tmp_path / "m.csv", ("a",))
    assert rows == [] and reject.reason == "bad_file" and "skipped" in reject.message
    (tmp_path / "m.csv").write_text("a,b\n1,2\n3\n")
    rows, (reject,) = optional_table("ds", tmp_path / "m.csv", ("a",))
    assert [r.values["a"] for r in rows] == ["1"] and reject.reason == "bad_row"


def test_json_items_yields_entries_or_rejects(tmp_path):
    (tmp_path / "l.json").write_text('[{"x": 1}, 2]')
    assert list(json_items("ds", tmp_path / "l.json", "list")) == [Item(0, {"x": 1}), Item(1, 2)]
    (tmp_path / "o.json").write_text('{"x": 1}')
    (tmp_path / "bad.json").write_text('[{"x": ')
    (tmp_path / "utf16.json").write_bytes('[{"x": 1}]'.encode("utf-16"))
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    for name, reason in (("o.json", "bad_file"), ("bad.json", "bad_file"), ("none.json", "missing_file"),
                         ("utf16.json", "bad_file"), ("deep.json", "bad_file")):
        (reject,) = json_items("ds", tmp_path / name, "list")
        assert isinstance(reject, FileReject) and reject.reason == reason and reject.source_id == name
    assert "expected a JSON list of entries, got object" in next(json_items("ds", tmp_path / "o.json", "list")).message


def test_optional_json_checks_its_shape(tmp_path):
    (tmp_path / "o.json").write_text('{"x": 1}')
    (tmp_path / "bad.json").write_text('[{"x": ')
    assert optional_json("ds", tmp_path / "none.json") == (None, None)
    assert optional_json("ds", tmp_path / "o.json", dict) == ({"x": 1}, None)
    for name, expected in (("bad.json", object), ("o.json", list)):
        value, reject = optional_json("ds", tmp_path / name, expected)
        assert value is None and reject.reason == "bad_file" and "skipped" in reject.message
    (tmp_path / "latin.json").write_bytes(json.dumps({"t": "x"}).replace("x", "caf\xe9").encode("latin-1"))
    assert optional_json("ds", tmp_path / "latin.json")[0] == {"t": "caf\udce9"}


def test_text_file_is_confined_and_never_raises(tmp_path):
    raw = tmp_path / "raw"
    (raw / "r").mkdir(parents=True)
    (raw / "r" / "a.txt").write_bytes(b"FINDINGS: clear.\n")
    (raw / "r" / "dir.txt").mkdir()
    (tmp_path / "secret.txt").write_text("outside")
    (raw / "r" / "link.txt").symlink_to(tmp_path / "secret.txt")
    resolver = PathResolver(raw)
    assert text_file("ds", resolver, "r/a.txt", "s1", "report") == "FINDINGS: clear.\n"
    for rel, reason in (("r/dir.txt", "bad_file"), ("r/none.txt", "missing_file"), ("r/../../secret.txt", "outside_root"),
                        ("r/link.txt", "outside_root")):
        reject = text_file("ds", resolver, rel, "s1", "report")
        assert isinstance(reject, Reject) and reject.reason == reason, (rel, reject)
    assert text_file("ds", PathResolver(raw, follow_symlinks_outside=True), "r/link.txt", "s1", "report") == "outside"
