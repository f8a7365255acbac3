"""Predictions -> metrics: group by (dataset, task, kind), run each kind's metrics, print one table.

    python -m evaluation.score DIR [--bertscore-model PATH] [--labels DATASET=FILE ...] [--examples N]

rescores ``DIR/predictions.jsonl`` (written by ``python -m train.evaluate``) without generating again and rewrites
``DIR/metrics.json`` and ``DIR/report.md``: a new metric or normaliser reruns on old predictions.

``metrics.json``::

    {"format": "radfm-eval/1", "samples": 17, "scored": 17, "errors": 0, "error_reasons": {},
     "groups": [{"dataset": "mimic", "task": "report", "kind": "text", "n": 7, "belong_to": "...",
                 "metrics": {"bleu4": 0.02, "rouge_l": 0.18}, "details": {}}, ...],
     "skipped": {"bertscore_f1": "model-based; pass --bertscore-model DIR ...", "radgraph_f1": "..."},
     "settings": {...the run's settings (run.json)...}}

Every number is in [0, 1]. ``details`` holds per-finding tables (open diagnosis). Records with an ``error`` are
counted, never scored.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from evaluation.metrics import MetricContext, MetricSkipped, make_metric
from evaluation.tasks import KINDS, UnknownTask, belong_to, kind_of
from shards_spec.jsonio import write_json

FORMAT = "radfm-eval/1"


def group_key(record: Mapping[str, Any]) -> tuple[str, str, str]:
    return record["dataset"], record["task"], kind_of(record["task"], record.get("variant", ""), record["truth"])


def score_records(records: Sequence[Mapping[str, Any]], labels: Mapping[str, Sequence[str]] | None = None,
                  bertscore_model: str | None = None, options: Mapping[str, Any] | None = None,
                  settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``metrics.json`` object for ``records`` (see the module docstring)."""
    labels = labels or {}
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    errors: dict[str, int] = {}
    for r in sorted(records, key=lambda r: r["key"]):
        if r.get("error"):
            reason = str(r["error"]).split(":")[0]
            errors[reason] = errors.get(reason, 0) + 1
            continue
        groups.setdefault(group_key(r), []).append(r)
    skipped: dict[str, str] = {}
    out_groups = []
    for (dataset, task, kind), rows in sorted(groups.items()):
        context = MetricContext(labels=tuple(labels.get(dataset, ())), bertscore_model=bertscore_model,
                                options=dict(options or {}))
        values: dict[str, Any] = {}
        details: dict[str, Any] = {}
        for name in KINDS[kind].metrics:
            try:
                metric = make_metric(name, context)
            except MetricSkipped as exc:
                skipped[name] = str(exc)
                continue
            for r in rows:
                metric.update(r["pred"], r["truth"])
            for k, v in metric.compute().items():
                (values if isinstance(v, (int, float)) else details)[k] = v
        out_groups.append({"dataset": dataset, "task": task, "kind": kind, "n": len(rows),
                           "belong_to": belong_to(dataset, task), "metrics": values, "details": details})
    n_errors = sum(errors.values())
    return {"format": FORMAT, "samples": len(records), "scored": len(records) - n_errors, "errors": n_errors,
            "error_reasons": errors, "groups": out_groups, "skipped": skipped, "settings": dict(settings or {})}


def headline(metrics: Mapping[str, Any]) -> dict[str, float]:
    """``{"<dataset>/<task>/<kind>": headline value}`` (the number the trainer logs and plots per group)."""
    return {f"{g['dataset']}/{g['task']}/{g['kind']}": g["metrics"].get(KINDS[g["kind"]].headline, 0.0)
            for g in metrics["groups"]}


def table_rows(metrics: Mapping[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    rows = []
    for g in metrics["groups"]:
        for name, value in g["metrics"].items():
            rows.append((g["dataset"], g["task"], g["kind"], str(g["n"]), name, f"{value:.4f}"))
    return rows


HEADER = ("dataset", "task", "kind", "n", "metric", "value")


def format_table(metrics: Mapping[str, Any]) -> str:
    """The printed table: one line per (group, metric), then skipped metrics and errors."""
    rows = [HEADER, *table_rows(metrics)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    lines = ["  ".join(c.ljust(w) if i < 5 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    for name, reason in sorted(metrics["skipped"].items()):
        lines.append(f"skipped {name}: {reason}")
    if metrics["errors"]:
        lines.append(f"{metrics['errors']} of {metrics['samples']} samples could not be read and are not scored: "
                     f"{metrics['error_reasons']}")
    return "\n".join(lines)


def markdown_table(metrics: Mapping[str, Any]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "|".join(["---"] * 4 + ["---", "---:"]) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(metrics)]
    return "\n".join(lines)


def read_labels(specs: Sequence[str]) -> dict[str, list[str]]:
    """``DATASET=FILE`` (one finding name per line) -> ``{dataset: names}``."""
    out: dict[str, list[str]] = {}
    for spec in specs:
        if "=" not in spec:
            raise ValueError(f"--labels expects DATASET=FILE, got {spec!r}")
        dataset, path = spec.split("=", 1)
        names = [line.strip() for line in Path(path).read_text("utf-8").splitlines() if line.strip()]
        out.setdefault(dataset, []).extend(names)
    return out


def write_metrics(out: Path, metrics: Mapping[str, Any]) -> Path:
    path = Path(out) / "metrics.json"
    write_json(path, metrics)
    return path


def add_score_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bertscore-model", default=None, metavar="DIR",
                   help="a local Hugging Face encoder folder: enables BERTScore (otherwise listed as skipped)")
    p.add_argument("--labels", action="append", default=[], metavar="DATASET=FILE",
                   help="finding names of a dataset, one per line (open diagnosis; truths' names are always added)")
    p.add_argument("--examples", type=int, default=3, help="examples per dataset/task in report.md (default 3)")


def rescore(out: Path, labels: Sequence[str] = (), bertscore_model: str | None = None, examples: int = 3) -> dict:
    """Score ``out/predictions.jsonl`` again; writes metrics.json and report.md; returns the metrics."""
    from evaluation.predictions import read_predictions
    from evaluation.report import write_report

    records = read_predictions(out)
    run = Path(out) / "run.json"
    settings = json.loads(run.read_text()) if run.exists() else {}
    metrics = score_records(records, read_labels(labels), bertscore_model, settings=settings)
    write_metrics(out, metrics)
    write_report(out, metrics, records, examples=examples)
    return metrics


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evaluation.score",
                                description="Score an evaluation's predictions.jsonl again (no generation): "
                                            "rewrites metrics.json and report.md and prints the table.")
    p.add_argument("out", help="the evaluation's output directory (python -m train.evaluate --out DIR)")
    add_score_arguments(p)
    args = p.parse_args(argv)
    if not (Path(args.out) / "predictions.jsonl").is_file():
        print(f"error: {args.out}/predictions.jsonl not found; run python -m train.evaluate --out {args.out} first",
              file=sys.stderr)
        return 2
    try:
        metrics = rescore(Path(args.out), args.labels, args.bertscore_model, args.examples)
    except (UnknownTask, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(format_table(metrics))
    print(f"metrics: {Path(args.out) / 'metrics.json'}   report: {Path(args.out) / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
