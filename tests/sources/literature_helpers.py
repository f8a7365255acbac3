"""Helpers for the literature, VQA and case source tests: planning a demo dataset in a mode, reading its built
samples, and the token-layout facts every sample must show."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np

from pipelines.build import make_context, plan_jobs, read_dataset
from pipelines.records import Record, Reject
from pipelines.sources import get_source
from shards_spec.layout import FIELD_INPUT_IDS, FIELD_LABELS, FIELD_LOSS_WEIGHT, FIELD_META, FIELD_VISION, IGNORE_INDEX
from shards_spec.reader import iter_raw_samples
from shards_spec.schema import SampleMeta

IMAGE_START, IMAGE_END = 32000, 32001


def plan(raw: Path, name: str, mode: str | None = None):
    """(records, rejects of reading, jobs, all plan rejects) of the demo dataset ``name`` in ``mode``."""
    source = get_source(name)
    ctx = make_context(source, raw / name, mode)
    records, _, read_rejects = read_dataset(source, ctx)
    jobs, rejects = plan_jobs(source, ctx, None)
    return records, read_rejects, jobs, rejects


ROW_ID = re.compile(r"(:row\d+|\[\d+\]|:line\d+)$")


def row_rejects(rejects: list[Reject]) -> list[Reject]:
    """Rejects that stand for a whole row, entry or line (``file:row3``, ``file.json[2]``, ``file.jsonl:line7``),
    not for one image of a row that was kept."""
    return [r for r in rejects if ROW_ID.search(r.source_id)]


def samples(shards: Path, name: str) -> list[tuple[SampleMeta, dict]]:
    out = []
    for tar in sorted((shards / name).rglob("*.tar")):
        for raw in iter_raw_samples(tar):
            decoded = raw.decode()
            out.append((SampleMeta.from_dict(decoded[FIELD_META]), decoded))
    return out


def rejects_of(shards: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (shards / name / "rejects.jsonl").read_text().splitlines()]


def check_layout(meta: SampleMeta, decoded: dict) -> dict:
    """RadFM's layout facts of one built sample; returns where its image spans sit ({"question": n, "answer": n})."""
    ids, labels, weights = decoded[FIELD_INPUT_IDS], decoded[FIELD_LABELS], decoded[FIELD_LOSS_WEIGHT]
    nq = meta.n_question_tokens
    image = ids >= IMAGE_START
    assert ids[0] == 1 and ids[-1] == 2
    # labels: nothing of the question, no image token; everything else of the answer (and EOS) is learned
    assert np.all(labels[:nq] == IGNORE_INDEX) and np.all(labels[image] == IGNORE_INDEX)
    answer = np.arange(ids.size) >= nq
    assert np.array_equal(labels[answer & ~image], ids[answer & ~image])
    assert np.all(weights[labels == IGNORE_INDEX] == 0) and np.all(weights[labels != IGNORE_INDEX] >= 1)
    starts = np.flatnonzero(ids == IMAGE_START)
    assert len(starts) == len(meta.images) == decoded[FIELD_VISION].shape[0] == len(meta.image_spans)
    where = Counter("question" if s < nq else "answer" for s in starts)
    for span in meta.image_spans:
        assert ids[span.token_start] == IMAGE_START and ids[span.token_start + 33] == IMAGE_END
        assert span.where == ("question" if span.token_start < nq else "answer")
    return dict(where)


def accounted(records: list[Record], rejects: list[Reject], rows: int) -> None:
    """Every row of the mode's input files is a record or a row reject."""
    assert len(records) + len(row_rejects(rejects)) == rows, (len(records), len(row_rejects(rejects)), rows)
