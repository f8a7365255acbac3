"""PMC-CaseReport: ``case_vqa``, 2D stream: a case report's context, a question about it, its figures.

Layout::

    <radfm>/filtered_case_report_{train,test}.csv     RadFM split files: PMC_id,img_ref,context,question,answer
    <raw>/data/{train,test}-*.parquet                  the publisher's (filtered) release, same columns + inline
    <raw>/../pmc_figures/                              the figure store, <PMC_id>_<figure id>.jpg
                                                       (``--store pmc_figures=DIR``)

``img_ref`` is a Python list literal of figure ids (``"['F1', 'F3']"``), read as a literal (never evaluated), at
most 64 KiB. Modes: ``radfm`` reads RadFM's CSVs, ``native`` the publisher's Parquet files.

One sample per row (``pipelines.tasks.case_vqa``: context truncation, ``Q:`` / ``A:`` removed, each figure at the
end of the context or of the question). A figure the store lacks is reported (``missing_file``) and the row keeps
its other figures, as RadFM skipped it; a row with none of its figures, or an ``img_ref`` that is not a list of
ids, is rejected.
"""

from __future__ import annotations

import ast
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from pipelines.records import ImageRef, Record, RecordFields, Reject, SampleSpec
from pipelines.sources.base import BuildContext, Source, Vocabulary
from pipelines.sources.images import store_image
from pipelines.sources.pmc_figures import STORE, figure_file
from pipelines.sources.tables import Row, file_reject, parquet_rows, table_rows
from pipelines.tasks import CaseVqaInputs

RADFM_FILES = {"train": "filtered_case_report_train.csv", "test": "filtered_case_report_test.csv"}
NATIVE_GLOB = "data/{split}-*.parquet"
COLUMNS = ("PMC_id", "img_ref", "context", "question", "answer")
MAX_IMG_REF = 64 * 1024


@dataclass(frozen=True)
class CaseFields(RecordFields):
    pmcid: str
    context: str
    question: str
    answer: str


def parse_img_ref(value: str) -> list[str] | str:
    """The figure ids of an ``img_ref`` cell, or what is wrong with it."""
    value = value.strip()
    if len(value) > MAX_IMG_REF:
        return f"img_ref is {len(value)} characters long"
    try:
        ids = ast.literal_eval(value)
    except (ValueError, SyntaxError, MemoryError, RecursionError, TypeError) as exc:
        return f"img_ref {value[:60]!r} is not a list literal ({type(exc).__name__})"
    if not isinstance(ids, (list, tuple)) or not all(isinstance(i, (str, int)) and str(i).strip() for i in ids):
        return f"img_ref {value[:60]!r} is not a list of figure ids"
    return [str(i).strip() for i in ids]


class PmcCaseReport(Source):
    name = "pmc_casereport"
    modes = ("radfm", "native")
    default_mode = "radfm"
    stores = (STORE,)

    def records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        for split, name in RADFM_FILES.items():
            if ctx.mode == "radfm":
                rows = table_rows(self.name, ctx.radfm_dir / name, COLUMNS, "RadFM split file", multiline=True)
                yield from self._rows(ctx, name, split, rows)
                continue
            files = sorted(ctx.raw.glob(NATIVE_GLOB.format(split=split)))
            if not files:
                yield file_reject(self.name, NATIVE_GLOB.format(split=split), "missing_file",
                                  f"no {NATIVE_GLOB.format(split=split)} under {ctx.raw} (the publisher's Parquet files)")
            for path in files:
                rel = path.relative_to(ctx.raw).as_posix()
                yield from self._rows(ctx, rel, split, parquet_rows(self.name, path, COLUMNS, "PMC-CaseReport file"))

    def samples(self, record: Record[CaseFields], vocab: Vocabulary, ctx: BuildContext) -> list[SampleSpec]:
        f = record.fields
        return [ctx.sample(record, CaseVqaInputs(f.context, f.question, f.answer))]

    def _rows(self, ctx: BuildContext, name: str, split: str, rows) -> Iterator[Record | Reject]:
        for row in rows:
            yield from [row] if isinstance(row, Reject) else self._row(ctx, name, split, row)

    def _row(self, ctx: BuildContext, name: str, split: str, row: Row) -> list[Record | Reject]:
        where = f"{name}:{'row' if name.endswith('.parquet') else 'line'}{row.line}"  # Parquet has rows, not lines
        v = row.values
        pmcid, context = v["PMC_id"].strip(), v["context"].strip()
        question, answer = v["question"].strip(), v["answer"].strip()
        empty = [c for c, x in (("PMC_id", pmcid), ("question", question), ("answer", answer)) if not x]
        if empty:
            return [self.reject(where, name, "bad_row", f"{where}: empty {', '.join(empty)}")]
        ids = parse_img_ref(v["img_ref"])
        if isinstance(ids, str):
            return [self.reject(where, name, "bad_row", f"{where}: {ids}")]
        out: list[Record | Reject] = []
        images: list[ImageRef] = []
        for fid in dict.fromkeys(ids):
            ref = store_image(ctx, self.name, STORE, figure_file(pmcid, fid), f"{where}:{fid}")
            (out if isinstance(ref, Reject) else images).append(ref)
        if not images:
            return out + [self.reject(where, name, "missing_file", f"{where}: none of its figures is in the store "
                                      f"({', '.join(ids) or 'img_ref is empty'})")]
        digest = hashlib.sha256("\n".join((context, question, answer)).encode()).hexdigest()[:12]
        out.append(Record(dataset=self.name, source_id=f"{pmcid}:{digest}", split=split, stream="2d",
                          images=tuple(images), fields=CaseFields(pmcid, context, question, answer)))
        return out


SOURCE = PmcCaseReport()
