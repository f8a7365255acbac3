"""Prediction records: written per batch while generating, merged in key order, shown as RadFM's CSV.

One record (a JSON object) per sample:

``key``, ``dataset``, ``split``, ``stream``, ``task``, ``variant``, ``prompt_id``, ``modality``, ``shard``, ``images``
    where the sample comes from (``images``: its source image paths)
``question``, ``truth``
    the sample's plain question and answer (``meta.json``)
``question_compact``, ``truth_compact``
    the same with each image span shown as ``<IMG i>`` where its 34 tokens sit (RadFM's CSV showed the 34 tokens)
``pred``
    the generated answer: the new tokens up to EOS, decoded with special tokens skipped, stripped
``n_prompt_tokens``, ``n_new_tokens``, ``stopped``
    prompt length, generated tokens (EOS excluded), ``"eos"`` or ``"length"`` (hit ``max_new_tokens``)
``error``
    only on a sample that could not be read (then ``pred`` is empty and the sample is not scored)

**Part files.** Each rank appends its batches to ``parts/rank-NNN.jsonl``: a batch's lines go to the file in one
``write`` on an append-only descriptor, then ``fsync``. A killed evaluation leaves at most a partial last line,
which :func:`repair` cuts off on restart; every batch whose keys are all in some part file is skipped, so the run
continues where it stopped (whatever the number of ranks). ``predictions.jsonl`` (all fields) and
``predictions.csv`` (RadFM's columns ``Question, Ground Truth, Pred, belong_to`` + ``dataset, task, key``) are
written from the merged parts, in key order, atomically.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from shards_spec.tario import atomic_write_bytes

PARTS = "parts"
CSV_COLUMNS = ("Question", "Ground Truth", "Pred", "belong_to", "dataset", "task", "key")
IMAGE_MARK = "<IMG {}>"


def compact_text(text: str, spans: Iterable[Any], where: str) -> str:
    """``text`` with ``<IMG i>`` where image ``i``'s token span sits (RadFM's rule: before character
    ``max(p - 1, 0)``; past the end: after the last character), for the spans placed in ``where``. ``spans`` are
    ``meta.json`` image spans or ``ImagePlacement`` s (then ``i`` is the position in the list)."""
    marks: dict[int, list[int]] = {}
    for i, span in enumerate(spans):
        if span.where == where:
            marks.setdefault(min(max(span.char - 1, 0), len(text)), []).append(getattr(span, "image", i))
    out = []
    for i in range(len(text) + 1):
        out.extend(IMAGE_MARK.format(k) for k in marks.get(i, ()))
        if i < len(text):
            out.append(text[i])
    return "".join(out)


def part_path(out: Path, rank: int) -> Path:
    return Path(out) / PARTS / f"rank-{rank:03d}.jsonl"


def repair(path: Path) -> None:
    """Cut a part file back to its last complete, parseable line (a killed writer leaves at most one bad line)."""
    if not path.exists():
        return
    data = path.read_bytes()
    keep = data.rfind(b"\n") + 1
    while keep > 0:
        start = data.rfind(b"\n", 0, keep - 1) + 1
        try:
            json.loads(data[start:keep])
            break
        except ValueError:
            keep = start
    if keep != len(data):
        with open(path, "r+b") as fh:
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())


def append_batch(path: Path, records: Sequence[dict]) -> None:
    """Append one batch's records as a single write, then fsync (see the module docstring)."""
    if not records:
        return
    data = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)


def read_parts(out: Path) -> dict[str, dict]:
    """Every complete record of every part file, by key (the first one wins)."""
    found: dict[str, dict] = {}
    for path in sorted((Path(out) / PARTS).glob("rank-*.jsonl")):
        for line in path.read_bytes().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a partial line of a killed writer (repaired by its rank on restart)
            if isinstance(record, dict) and isinstance(record.get("key"), str):
                found.setdefault(record["key"], record)
    return found


def csv_row(record: dict) -> dict[str, str]:
    return {"Question": record.get("question_compact", record.get("question", "")),
            "Ground Truth": record.get("truth_compact", record.get("truth", "")),
            "Pred": record.get("pred", ""), "belong_to": record.get("belong_to", ""),
            "dataset": record["dataset"], "task": record["task"], "key": record["key"]}


def write_predictions(out: Path, records: Sequence[dict]) -> tuple[Path, Path]:
    """``predictions.jsonl`` and ``predictions.csv`` (key order), each written atomically."""
    ordered = sorted(records, key=lambda r: r["key"])
    jsonl = Path(out) / "predictions.jsonl"
    atomic_write_bytes(jsonl, "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n"
                                      for r in ordered).encode("utf-8"))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for r in ordered:
        writer.writerow(csv_row(r))
    table = Path(out) / "predictions.csv"
    atomic_write_bytes(table, buf.getvalue().encode("utf-8"))
    return jsonl, table


def read_predictions(out: Path) -> list[dict]:
    path = Path(out) / "predictions.jsonl"
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
