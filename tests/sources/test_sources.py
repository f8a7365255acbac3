"""Source modules and the shared pieces they use: path remapping, tables, report parsing,
image-reference expansion, tasks (prompt/position/variant rules and RadFM bug fixes)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pipelines import tasks
from pipelines.build import plan_jobs
from pipelines.paths import PathResolver, UnresolvedPath, parse_path_maps
from pipelines.records import ImageRef, Record, sample_key
from pipelines.sources import BuildContext, get_source
from pipelines.sources.base import image_refs_for, read_table
from pipelines.sources.mimic import report_answer


def test_path_resolver_longest_suffix_learns_prefix(tmp_path):
    (tmp_path / "files/p10/p1/s5").mkdir(parents=True)
    (tmp_path / "files/p10/p1/s5/a.jpg").write_bytes(b"x")
    r = PathResolver(tmp_path)
    assert r.resolve("/gpfs/home/x/MIMIC-CXR/files/p10/p1/s5/a.jpg") == "files/p10/p1/s5/a.jpg"
    assert r.learned_prefixes() == {"/gpfs/home/x/MIMIC-CXR": ""}
    # later paths with the learned prefix map without touching the file system
    assert r.resolve("/gpfs/home/x/MIMIC-CXR/files/p11/p2/s6/b.jpg") == "files/p11/p2/s6/b.jpg"
    with pytest.raises(UnresolvedPath):
        r.resolve("/elsewhere/nothing/here.jpg")
    with pytest.raises(UnresolvedPath):
        r.resolve("  ")


def test_path_map_overrides(tmp_path):
    r = PathResolver(tmp_path, parse_path_maps(["/mnt/data/mimic=jpg"]))
    assert r.resolve("/mnt/data/mimic/files/a.jpg") == "jpg/files/a.jpg"
    with pytest.raises(ValueError):
        parse_path_maps(["no-equals-sign"])


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


def test_mimic_report_sections():
    text = """                                 FINAL REPORT
 EXAMINATION:  CHEST (PA AND LAT)
 INDICATION:  Cough.
 FINDINGS:  The heart is normal in size.
   No pleural effusion.
 IMPRESSION:  No acute process.
"""
    assert report_answer(text) == "Findings: The heart is normal in size. No pleural effusion. Impression: No acute process."
    assert report_answer("IMPRESSION: Stable.") == "Impression: Stable."
    assert report_answer("ADDENDUM: see prior.") is None


def test_image_refs_expand_npy_series_and_series_folders(tmp_path):
    np.save(tmp_path / "case.npy", np.zeros((3, 3, 4, 4, 2), np.uint8))
    np.save(tmp_path / "vol.npy", np.zeros((4, 4, 2), np.uint8))
    for name in ("MRI_10", "MRI_2", "CT_0"):
        (tmp_path / "c1" / name).mkdir(parents=True)
    assert image_refs_for(tmp_path, "case.npy") == [ImageRef("case.npy", "npy", i) for i in range(3)]
    assert image_refs_for(tmp_path, "vol.npy") == [ImageRef("vol.npy", "npy", 0)]
    assert [r.path for r in image_refs_for(tmp_path, "c1")] == ["c1/CT_0", "c1/MRI_2", "c1/MRI_10"]
    assert image_refs_for(tmp_path, "c1/CT_0") == [ImageRef("c1/CT_0", "volume")]


def _record(n_images=1, source_id="x"):
    return Record("rad3d", source_id, "train", "3d", tuple(ImageRef(f"i{k}", "volume") for k in range(n_images)))


def test_modality_negatives_use_a_different_modality():
    """RadFM built the 'no' question with the true modality; ours names another one."""
    seen = set()
    for i in range(200):
        rng = random.Random(i)
        spec = tasks.modality(rng, _record(), "CT", ["CT", "MRI", "X-ray"], max_images=10)
        seen.add(spec.variant)
        if spec.variant == "no":
            assert "CT" not in spec.question and ("MRI" in spec.question or "X-ray" in spec.question)
        elif spec.variant == "yes":
            assert "CT" in spec.question and spec.answer == "yes"
        else:
            assert spec.answer == "CT"
    assert seen == {"direct", "yes", "no"}


def test_task_choices_are_seeded_by_record_and_capped():
    rec = _record(n_images=14, source_id="case-1")
    a = tasks.vqa(tasks.task_rng(0, rec, "vqa"), rec, "Q?", "A", max_images=10)
    b = tasks.vqa(tasks.task_rng(0, rec, "vqa"), rec, "Q?", "A", max_images=10)
    assert a == b and len(a.image_indices) == 10 == len(a.placements)
    assert list(a.image_indices) == sorted(a.image_indices)
    c = tasks.vqa(tasks.task_rng(1, rec, "vqa"), rec, "Q?", "A", max_images=10)
    assert c != a
    assert {p.char for p in a.placements} <= {0, len("Q?")}


def test_report_positions_follow_radfm():
    rec = Record("mimic", "m", "train", "2d", (ImageRef("a.jpg", "image2d"),))
    spec = tasks.report(random.Random(0), rec, "Findings: x", prompt_kind="report", max_images=10)
    assert spec.placements[0].char == len(spec.question) and spec.prompt_id.startswith("report/")
    assert spec.question in tasks.prompts("report")


def test_prompt_files_have_radfm_sizes_and_valid_slots():
    sizes = {"report": 20, "caption": 15, "radiology_feature": 10, "yes_no": 14, "modality": 5, "modality_yes_no": 3,
             "cls": 11, "mammo": 21, "spinexr": 11}
    for kind, n in sizes.items():
        options = tasks.prompts(kind)
        assert len(options) == n == len(set(options))
    assert all("{disease}" in p for p in tasks.prompts("yes_no"))
    assert all("{modality}" in p for p in tasks.prompts("modality_yes_no"))


def test_rad3d_plan_on_demo(demo_raw):
    source = get_source("rad3d")
    ctx = BuildContext(demo_raw / "rad3d", "radfm", demo_raw / "rad3d" / "radfm", PathResolver(demo_raw / "rad3d"))
    jobs, rejects = plan_jobs(source, ctx, None)
    tasks_seen = {j.spec.task for j in jobs}
    assert tasks_seen == {"report", "rationale", "vqa", "modality"}
    assert all(j.record.stream == "3d" for j in jobs)
    assert any(r.reason == "bad_row" for r in rejects)
    terms = source.label_terms(ctx)  # diagnoses and modalities join the keyword lexicon
    assert "MRI" in terms and any(j.record.fields.get("title") in terms for j in jobs if j.record.fields.get("kind") == "article")
    for j in jobs:
        assert j.key == sample_key("rad3d", j.record.source_id, j.spec.task, j.spec.variant)
        if j.spec.task == "rationale" and j.spec.variant == "no":
            assert j.record.fields["title"] not in j.spec.question
        if j.spec.task == "report":
            assert j.spec.answer.startswith(("Finding:", "Impression:")) and "Impression:" in j.spec.answer


def test_duplicate_rows_are_rejected_not_doubled(demo_raw, tmp_path):
    import shutil
    raw = tmp_path / "mimic"
    shutil.copytree(demo_raw / "mimic", raw)
    csv = raw / "radfm" / "mimic_caption_test.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(lines + [lines[1]]) + "\n")
    ctx = BuildContext(raw, "radfm", raw / "radfm", PathResolver(raw))
    jobs, rejects = plan_jobs(get_source("mimic"), ctx, None)
    assert len({j.key for j in jobs}) == len(jobs)
    assert [r.reason for r in rejects].count("duplicate") == 1
