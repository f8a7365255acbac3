"""Every case of the hostile corpus (tests/pipelines/hostile_corpus.py) through the real build: the build finishes
with its manifest and rejects, every data row is a sample or a reject (equality), each bad input has its specific
reason, and nothing outside the raw root is read; or it stops with the one clear line the case expects."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, build_shards
from hostile_corpus import CASES, Case, Outcome, write_case

from pipelines.build import BuildError
from shards_spec.reader import iter_raw_samples
from shards_spec.validate import validate_paths

SMALL = {"size_2d": 32, "size_3d": 32, "max_reject_fraction": 1.0}


def _samples(out: Path, dataset: str) -> list[dict]:
    return [raw.decode() for tar in sorted((out / dataset).rglob("*.tar")) for raw in iter_raw_samples(tar)]


def _run(c: Case, tmp_path: Path) -> tuple[Outcome | str, Path]:
    outcome = write_case(c, tmp_path / "in")
    out = tmp_path / "out"
    if isinstance(outcome, str):
        with pytest.raises(BuildError, match=outcome):
            build_shards(tmp_path / "in", out, c.dataset, mode=c.mode, **SMALL, **c.request)
        return outcome, out
    manifest = build_shards(tmp_path / "in", out, c.dataset, mode=c.mode, **SMALL, **c.request)
    rejects = [json.loads(line) for line in (out / c.dataset / "rejects.jsonl").read_text().splitlines()]
    reasons = dict(Counter(r["reason"] for r in rejects))
    assert (manifest["samples"], reasons) == (outcome.samples, outcome.rejects), rejects
    assert manifest["rejects"]["by_reason"] == outcome.rejects and manifest["rejects"]["total"] == len(rejects)
    assert manifest["samples"] + len(rejects) - outcome.file_rejects == outcome.rows  # every row accounted for
    assert validate_paths([str(out / c.dataset)]).violations == []
    for r in rejects:
        assert r["message"] and "Traceback" not in r["message"]
    return outcome, out


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_case(case: Case, tmp_path):
    outcome, out = _run(case, tmp_path)
    if isinstance(outcome, str):
        assert not (out / case.dataset / "manifest.json").exists()
        return
    samples = _samples(out, case.dataset)
    metas = [s["meta.json"] for s in samples]
    if "outside_root" in outcome.rejects or case.request.get("follow_symlinks_outside"):
        followed = [m for m in metas if any("link" in p or "secret" in p for p in m["source_paths"])]
        assert len(followed) == (1 if case.request.get("follow_symlinks_outside") else 0)
    check = EXTRA_CHECKS.get(case.name)
    if check:
        check(metas, samples)


# ------------------------------------------------------------------------------------------------- per-case checks
def _non_utf8_csv(metas, samples):
    (fixed,) = [m for m in metas if m["text_fixes"]["non_utf8"]]
    assert fixed["text_fixes"] == {"control_chars": 0, "non_utf8": 1} and "No acute process café." in fixed["answer"]


def _controls(metas, samples):
    (fixed,) = [m for m in metas if m["text_fixes"]["control_chars"]]
    assert fixed["text_fixes"] == {"control_chars": 5, "non_utf8": 0}
    assert fixed["answer"] == "Findings: The lungs are [1mclear. Impression: normal."
    assert all(not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f]", m["question"] + m["answer"]) for m in metas)


def _non_utf8_report(metas, samples):
    (fixed,) = [m for m in metas if m["text_fixes"]["non_utf8"]]
    assert fixed["text_fixes"]["non_utf8"] == 3 and "Épanchement “minime”." in fixed["answer"]


def _quote_vqa(metas, samples):
    questions = sorted(m["question"] for m in metas if m["task"] == "vqa")
    assert not any("\n" in q or "broken" in q for q in questions)
    assert [q for q in questions if "case" in q] == [f"What is shown in case {n}?" for n in (0, 1, 2, 3)]


def _colour(metas, samples):
    by_answer = {m["answer"]: s for m, s in zip(metas, samples)}
    colour = by_answer[next(a for a in by_answer if a.endswith("Colour."))]["vision.npy.zst"]
    grey = [s["vision.npy.zst"] for a, s in by_answer.items() if a.endswith("process.")]
    assert colour.shape[1] == 3 and not np.array_equal(colour[0, 0], colour[0, 2])
    assert all(g.shape[1] == 1 for g in grey)
    sideways = by_answer[next(a for a in by_answer if a.endswith("Sideways."))]["vision.npy.zst"].astype(np.float32)
    upright = by_answer[next(a for a in by_answer if a.endswith("Upright."))]["vision.npy.zst"].astype(np.float32)
    assert np.abs(sideways - upright).mean() < 6 < np.abs(np.rot90(sideways, 1, axes=(2, 3)) - upright).mean()


def _report_shapes(metas, samples):
    answers = {m["answer"] for m in metas}
    assert "Impression: No pneumothorax." in answers
    assert "Findings: LUNGS: Clear. HEART: Normal size. Impression: Normal." in answers


def _non_utf8_name(metas, samples):
    (named,) = [m for m in metas if "caf" in m["source_id"]]
    assert named["source_id"].endswith("café.jpg") and named["images"][0]["path"].endswith("caf\udce9.jpg")


EXTRA_CHECKS = {"non_utf8_byte_in_csv": _non_utf8_csv, "control_characters_in_text": _controls,
                "non_utf8_report": _non_utf8_report, "broken_quote_in_vqa_csv": _quote_vqa, "colour_and_exif": _colour,
                "report_shapes": _report_shapes, "non_utf8_file_name": _non_utf8_name}


def test_every_issue_failure_has_a_case():
    names = {c.name for c in CASES}
    assert len(names) == len(CASES) >= 25
    assert set(EXTRA_CHECKS) <= names


# ------------------------------------------------------------------------------------------------- newcomer messages
def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipelines.build", "--executor", "serial", "--quiet", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_newcomer_errors_are_one_line_without_a_traceback(tmp_path):
    write_case(next(c for c in CASES if c.name == "radfm_csvs_missing"), tmp_path / "in")
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("not a directory")
    runs = {
        "no csvs": _cli("--dataset", "mimic", "--raw", str(tmp_path / "in/mimic"), "--out", str(tmp_path / "o")),
        "empty raw": _cli("--dataset", "mimic", "--raw", str(tmp_path / "empty"), "--out", str(tmp_path / "o")),
        "out is a file": _cli("--dataset", "mimic", "--raw", str(tmp_path / "in/mimic"), "--out", str(tmp_path / "file")),
    }
    for what, res in runs.items():
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 1 and lines[-1].startswith("error: "), (what, res.stderr)
        assert "Traceback" not in res.stderr, what
    assert "mimic_caption_train.csv not found" in runs["no csvs"].stderr and "--mode native" in runs["no csvs"].stderr
    assert "is empty" in runs["empty raw"].stderr
    assert "is a file, not a directory" in runs["out is a file"].stderr
    # the output directory is created when it does not exist yet
    res = _cli("--dataset", "mimic", "--mode", "native", "--raw", str(tmp_path / "in/mimic"), "--out",
               str(tmp_path / "new/deeper"))
    assert res.returncode == 0, res.stderr and (tmp_path / "new/deeper/mimic/manifest.json").is_file()


@pytest.mark.slow
def test_hostile_inputs_under_ray_give_what_serial_gives(tmp_path):
    """One bad input no longer aborts a Ray build either: the hostile DICOM and the text cases build under Ray to the
    same shards and rejects as serially."""
    serial, ray_out = tmp_path / "serial", tmp_path / "ray"
    for name in ("dicom_rows_smaller_than_pixels", "control_characters_in_text"):
        c = next(c for c in CASES if c.name == name)
        raw = tmp_path / name
        write_case(c, raw)
        build_shards(raw, serial / name, c.dataset, mode=c.mode)
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        res = subprocess.run([sys.executable, "-m", "pipelines.build", "--dataset", c.dataset, "--raw", str(raw / c.dataset),
                              "--out", str(ray_out / name), "--executor", "ray", "--workers", "2", "--quiet"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-3000:]
        mine, theirs = (o / name / c.dataset for o in (serial, ray_out))
        assert (mine / "rejects.jsonl").read_text() == (theirs / "rejects.jsonl").read_text()
        assert json.loads((mine / "manifest.json").read_text())["shards"] == \
            json.loads((theirs / "manifest.json").read_text())["shards"]
