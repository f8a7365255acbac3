"""python -m train.evaluate end to end on the demo test shards with a tiny random model: RadFM's CSV (one row per
sample), metrics.json, report.md; a killed evaluation resumes; several processes give the same CSV as one."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT
from eval_helpers import FAST

from evaluation.predictions import CSV_COLUMNS, part_path


def _test_samples(demo_shards) -> int:
    total = 0
    for manifest in demo_shards.glob("*/manifest.json"):
        total += json.loads(manifest.read_text())["counts"]["split"].get("test", 0)
    return total


def _evaluate(argv) -> int:
    from evaluation.cli import main

    return main([*argv, *FAST])


def test_csv_metrics_and_report(demo_shards, tiny_model, tmp_path):
    out = tmp_path / "eval"
    assert _evaluate(["--checkpoint", str(tiny_model), "--shards", str(demo_shards), "--out", str(out)]) == 0
    rows = list(csv.DictReader((out / "predictions.csv").open(newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == _test_samples(demo_shards) > 0
    assert [r["key"] for r in rows] == sorted(r["key"] for r in rows) and len({r["key"] for r in rows}) == len(rows)
    assert all("<IMG 0>" in r["Question"] and r["Ground Truth"] for r in rows)
    assert {r["belong_to"] for r in rows if r["dataset"] == "mimic"} == {"chestxray_caption_dataset"}

    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["samples"] == metrics["scored"] == len(rows) and metrics["errors"] == 0
    groups = {(g["dataset"], g["task"], g["kind"]): g for g in metrics["groups"]}
    assert ("mimic", "report", "text") in groups
    assert set(groups["mimic", "report", "text"]["metrics"]) == {"bleu4", "rouge_l"}
    assert sum(g["n"] for g in groups.values()) == len(rows)
    assert set(metrics["skipped"]) == {"bertscore_f1", "radgraph_f1"}
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert all(r["stopped"] in ("eos", "length") and r["n_new_tokens"] <= 3 for r in records)

    report = (out / "report.md").read_text()
    assert "| mimic | report | text |" in report and "## Examples" in report
    thumbs = list((out / "report").glob("*.png"))
    assert thumbs and all(f"report/{t.name}" in report for t in thumbs)

    from evaluation.score import main as score_main  # rescoring saved predictions gives the same metrics
    before = (out / "metrics.json").read_text()
    assert score_main([str(out)]) == 0
    assert (out / "metrics.json").read_text() == before


def test_a_killed_evaluation_resumes_where_it_stopped(demo_shards, tiny_model, tmp_path, monkeypatch, capsys):
    import evaluation.cli as cli

    args = ["--checkpoint", str(tiny_model), "--shards", str(demo_shards), "--batch-size", "2"]
    assert _evaluate([*args, "--out", str(tmp_path / "full")]) == 0
    full = (tmp_path / "full" / "predictions.csv").read_bytes()

    out = tmp_path / "killed"
    real_append, written = cli.append_batch, []

    def append_then_die(path, records):
        if len(written) == 2:
            with open(path, "ab") as fh:  # the third batch is torn mid-write
                fh.write(json.dumps(records[0]).encode()[:40])
            raise KeyboardInterrupt("killed")
        real_append(path, records)
        written.append(records)

    monkeypatch.setattr(cli, "append_batch", append_then_die)
    with pytest.raises(KeyboardInterrupt):
        _evaluate([*args, "--out", str(out)])
    monkeypatch.setattr(cli, "append_batch", real_append)
    assert not (out / "predictions.csv").exists()
    capsys.readouterr()

    assert _evaluate([*args, "--out", str(out)]) == 0
    assert "2 already done" in capsys.readouterr().err
    assert (out / "predictions.csv").read_bytes() == full
    assert len(part_path(out, 0).read_text().splitlines()) == _test_samples(demo_shards)

    # other settings are refused in the same directory, unless --overwrite
    assert _evaluate([*args, "--out", str(out), "--batch-size", "3"]) == 2
    assert "other settings" in capsys.readouterr().err
    assert _evaluate([*args, "--out", str(out), "--batch-size", "3", "--overwrite"]) == 0


def test_errors_for_people_are_one_line(demo_shards, tiny_model, tmp_path, capsys):
    assert _evaluate(["--checkpoint", str(tmp_path / "nope"), "--shards", str(demo_shards), "--out", str(tmp_path)]) == 2
    assert "no such folder or file" in capsys.readouterr().err
    assert _evaluate(["--checkpoint", str(tiny_model), "--shards", str(tmp_path / "none"), "--out", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert _evaluate(["--checkpoint", str(tiny_model), "--shards", str(demo_shards), "--out", str(tmp_path),
                      "--tasks", "segmentation"]) == 2
    assert "no samples to evaluate" in capsys.readouterr().err


@pytest.mark.slow
def test_two_processes_give_the_same_csv_as_one(demo_shards, tiny_model, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    args = ["-m", "train.evaluate", "--checkpoint", str(tiny_model), "--shards", str(demo_shards), "--batch-size", "2",
            *FAST]
    one = subprocess.run([sys.executable, *args, "--out", str(tmp_path / "one")], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-3000:]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    two = subprocess.run([*torchrun, *args, "--out", str(tmp_path / "two")], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-3000:]
    assert "rank 1:" in two.stderr
    assert part_path(tmp_path / "two", 1).exists()
    assert (tmp_path / "two" / "predictions.csv").read_bytes() == (tmp_path / "one" / "predictions.csv").read_bytes()
    m1, m2 = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("one", "two"))
    assert m1["groups"] == m2["groups"]
