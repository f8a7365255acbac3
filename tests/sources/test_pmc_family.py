"""PMC-Figures (the store), PMC-Inline (both JSON layouts, windows, figures at their reference positions, the whole
text learned) and PMC-CaseReport (RadFM's CSVs and the Parquet release, img_ref literals, figure positions)."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from literature_helpers import accounted, check_layout, plan, rejects_of, samples

from pipelines.build import BuildError, BuildRequest, build, make_context
from pipelines.sources import get_source
from pipelines.sources.pmc_casereport import parse_img_ref
from pipelines.sources.pmc_figures import SOURCE as STORE
from pipelines.sources.pmc_inline import parse_paper, split_text, windows
from pipelines.sources.pmc_inline.source import MAX_FIGURES, MAX_SENTENCES, Sentence

# --------------------------------------------------------------------------- the store


def test_store_layout_and_where_it_is_found(demo_raw, tmp_path):
    assert STORE.follows_layout("PMC1999654_pone-0001008-g001.jpg") and not STORE.follows_layout("Thumbs.db")
    source = get_source("pmc_inline")
    ctx = make_context(source, demo_raw / "pmc_inline")
    assert ctx.store_root("pmc_figures") == (demo_raw / "pmc_figures").resolve()
    alone = tmp_path / "pmc_inline"
    shutil.copytree(demo_raw / "pmc_inline", alone)
    with pytest.raises(BuildError, match="--store pmc_figures=DIR"):
        make_context(source, alone)
    assert make_context(source, alone, stores=[("pmc_figures", demo_raw / "pmc_figures")]).stores
    empty = tmp_path / "empty_store"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    with pytest.raises(BuildError, match="does not look like the pmc_figures store"):
        make_context(source, alone, stores=[("pmc_figures", empty)])
    with pytest.raises(BuildError, match="reads no store named"):
        build(BuildRequest(dataset="pmc_inline", raw=alone, out=tmp_path / "o", stores=(("other", empty),)))


def test_store_figures_are_confined_to_the_store(demo_raw, tmp_path):
    """A store figure that is a symbolic link to a file outside the store is ``outside_root`` (as a raw-root path
    would be), and only that row's figure; ``--follow-symlinks-outside`` reads it."""
    from pipelines.build import check_record
    from pipelines.records import ImageRef, Record
    from pipelines.sources.pmc_casereport.source import CaseFields

    store = tmp_path / "pmc_figures"
    shutil.copytree(demo_raw / "pmc_figures", store)
    outside = tmp_path / "elsewhere.jpg"
    figure = sorted(p for p in store.iterdir() if p.suffix == ".jpg")[0]
    shutil.copy(figure, outside)
    figure.unlink()
    figure.symlink_to(outside)
    source = get_source("pmc_casereport")
    ref = ImageRef(figure.name, "image2d", store="pmc_figures")
    record = Record(dataset="pmc_casereport", source_id="x", split="train", stream="2d", images=(ref,),
                    fields=CaseFields("PMC1", "A context.", "A question?", "An answer."))
    for follow, reason in ((False, "outside_root"), (True, None)):
        ctx = make_context(source, demo_raw / "pmc_casereport", stores=[("pmc_figures", store)],
                           follow_symlinks_outside=follow)
        checked = check_record(record, ctx)
        assert getattr(checked, "reason", None) == reason
        if reason is None:
            assert checked.images == (ref,)


# --------------------------------------------------------------------------- PMC-Inline


def test_both_paper_layouts_give_the_same_sentences():
    text = "\nTitle of the paper\nFirst sentence. Second one (Figure 1).\nThird? Fourth!"
    spans = split_text(text)
    assert "".join(text[s:e] for s, e in spans) == text
    public = {"info": {"pmc": "PMC1"}, "text": text, "img_ref": [{"id": "g1", "start": text.index("Figure 1"),
                                                                   "end": text.index("Figure 1") + 8}]}
    pmcid, sentences, problems = parse_paper(public, "x.json")
    assert pmcid == "PMC1" and not problems
    assert [s.text.strip() for s in sentences] == ["Title of the paper", "First sentence.", "Second one (Figure 1).",
                                                   "Third?", "Fourth!"]
    assert [s.refs for s in sentences] == [(), (), ("g1",), (), ()]
    radfm = [{"text": s.text.strip(), "img_ref": list(s.refs)} for s in sentences]
    assert [(s.text, s.refs) for s in parse_paper(radfm, "PMC1.json")[1]] == [(s.text.strip(), s.refs) for s in sentences]
    bad = dict(public, img_ref=[{"id": "g1", "start": 999, "end": 1003}])
    assert "inside the text" in parse_paper(bad, "x")[2][0]
    assert isinstance(parse_paper({"no": "text"}, "x"), str) and isinstance(parse_paper([{"img_ref": []}], "x"), str)


def test_windows_hold_50_sentences_and_3_figures():
    sentences = [Sentence(f"S{i}.", ("f",) if i % 9 == 0 else ()) for i in range(130)]
    ws = windows(sentences)
    assert [i for w in ws for i in w] == list(range(130))  # consecutive, nothing dropped
    assert all(len(w) <= MAX_SENTENCES and sum(len(sentences[i].refs) for i in w) <= MAX_FIGURES for w in ws)
    assert any(sum(len(sentences[i].refs) for i in w) == MAX_FIGURES for w in ws)


def test_inline_rows_and_rejects(demo_raw, demo_tree):
    _, info = demo_tree
    for mode in ("radfm", "native"):
        records, read_rejects, jobs, rejects = plan(demo_raw, "pmc_inline", mode)
        reasons = {r.reason for r in rejects}
        assert {"missing_file", "bad_file", "bad_row", "too_many_images"} <= reasons
        missing = [r for r in rejects if r.reason == "missing_file" and r.file.startswith("pmc_figures/")]
        assert len(missing) == 1 and "not in the pmc_figures store" in missing[0].message
        # every sentence of every readable paper is in exactly one window
        for r in records:
            assert r.images and all(i.store == "pmc_figures" for i in r.images)
            assert sum(len(f) for f in r.fields.figures) == len(r.images) <= MAX_FIGURES
            assert len(r.fields.sentences) <= MAX_SENTENCES
        papers = {r.fields.pmcid for r in records}
        windows_of = sum(len(r.fields.sentences) for r in records)
        assert windows_of >= info["pmc_inline"]["sentences"] * 0.8 and len(papers) == info["pmc_inline"]["papers"]
    listed = len((demo_raw / "pmc_inline/radfm/paper_train.csv").read_text().splitlines()) - 1
    assert sum(1 for r in plan(demo_raw, "pmc_inline", "radfm")[3] if ":line" in r.source_id) == 2  # absent + broken
    assert listed == info["pmc_inline"]["papers"] + 2


def test_interleaved_samples_learn_the_whole_text(demo_shards):
    built = samples(demo_shards, "pmc_inline")
    assert built
    for meta, decoded in built:
        assert meta.question == "" and meta.n_question_tokens == 1
        assert check_layout(meta, decoded) == {"answer": len(meta.images)}
        assert all(i.store == "pmc_figures" for i in meta.images)
    # figures inside the text, not only at its start
    assert any(s.token_start > 1 for meta, _ in built for s in meta.image_spans)


# --------------------------------------------------------------------------- PMC-CaseReport


def test_img_ref_is_read_as_a_literal():
    assert parse_img_ref("['F1', 'F3']") == ["F1", "F3"] and parse_img_ref("[]") == []
    assert "not a list literal" in parse_img_ref("F1, F2")
    assert "not a list of figure ids" in parse_img_ref("{'a': 1}")
    assert "not a list literal" in parse_img_ref("__import__('os').system('true')")


def test_casereport_rows_in_both_modes(demo_raw):
    counts = {}
    for mode in ("radfm", "native"):
        records, read_rejects, jobs, rejects = plan(demo_raw, "pmc_casereport", mode)
        if mode == "radfm":
            rows = 0
            for name in ("filtered_case_report_train.csv", "filtered_case_report_test.csv"):
                with open(demo_raw / "pmc_casereport/radfm" / name, newline="") as fh:
                    rows += sum(1 for _ in csv.DictReader(fh))
        else:
            import pyarrow.parquet as pq

            rows = sum(pq.read_table(p).num_rows for p in (demo_raw / "pmc_casereport/data").glob("*.parquet"))
        accounted(records, read_rejects, rows)
        assert {r.reason for r in rejects} == {"bad_row", "missing_file"}
        assert all(r.images and all(i.store == "pmc_figures" for i in r.images) for r in records)
        counts[mode] = sorted((r.split, r.source_id) for r in records)
    assert counts["radfm"] == counts["native"]  # the same rows, the same records


def test_case_samples_put_figures_in_the_question(demo_shards):
    built = samples(demo_shards, "pmc_casereport")
    assert built
    for meta, decoded in built:
        assert check_layout(meta, decoded) == {"question": len(meta.images)}
        context, _, question = meta.question.rpartition("\n")
        assert context and question and not question.startswith("Q:") and not meta.answer.startswith("A:")
        assert {s.char for s in meta.image_spans} <= {len(context), len(meta.question)}
    assert {"undecodable", "missing_file", "bad_row"} <= {r["reason"] for r in rejects_of(demo_shards, "pmc_casereport")}


def test_papers_json_is_publisher_shaped(demo_raw):
    docs = []
    for path in sorted((demo_raw / "pmc_inline/papers").glob("*.json")):
        try:
            docs.append(json.loads(path.read_text()))
        except json.JSONDecodeError:  # the planted cut-off paper
            continue
    layouts = {"public" if isinstance(d, dict) else "radfm" for d in docs}
    assert layouts == {"public", "radfm"}
    for d in docs:
        if isinstance(d, dict):
            assert set(d) == {"info", "text", "img_ref"} and d["info"]["pmc"].startswith("PMC")
