"""The PMC-CaseReport demo fixture: the case rows of the demo's PMC corpus (:mod:`pipelines.demo.pmc`; real OpenI
report text as context and answer) as RadFM's ``radfm/filtered_case_report_{train,test}.csv`` and as the
publisher's Parquet release (``data/{train,test}-00000-of-00001.parquet``). Their figures are in the
``pmc_figures`` store, beside this folder.

Planted faults: a figure that is a truncated JPEG (``corrupt_jpeg``), a figure the store lacks (``missing_file``,
the row keeps its other figures), an ``img_ref`` that is not a list literal (``bad_row``).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from pipelines.demo.content import OPENI_REPORTS
from pipelines.demo.faults import fault
from pipelines.demo.figures import FIGURE_FILES
from pipelines.demo.fixture import DemoOptions, Fixture
from pipelines.demo.pmc import DEFAULT_CASES, STORE, corpus_for
from pipelines.demo.writers import write_bytes, write_csv
from pipelines.sources.pmc_casereport.source import COLUMNS, RADFM_FILES


def parquet_bytes(rows: list[dict]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = ("PMC_id", "context", "question", "answer", "inline", "img_ref")
    table = pa.table({c: pa.array([r[c] for r in rows], pa.string()) for c in columns})
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


class PmcCaseReportFixture(Fixture):
    name = "pmc_casereport"
    rng_stream = 148
    size_unit = "cases"
    default_size = DEFAULT_CASES
    min_size = 3
    description = "PMC-CaseReport rows (RadFM's filtered_case_report_*.csv, the publisher's Parquet); figures in ../pmc_figures"
    requires = (*FIGURE_FILES, OPENI_REPORTS)
    shard_args = ("--samples-per-shard-2d", "6")

    def write(self, root: Path, rng: np.random.Generator, size: int, options: DemoOptions) -> tuple[dict, list[dict]]:
        corpus = corpus_for(options)
        tables: dict[str, list[dict]] = {"train": [], "test": []}
        planted = []
        for case in corpus.cases:
            ids = "[" + ", ".join(repr(f.figure_id) for f in case.figures) + "]"
            tables[case.split].append({"PMC_id": case.pmcid, "img_ref": ids, "context": case.context,
                                       "question": case.question, "answer": case.answer,
                                       "inline": " ".join(f"Figure {k + 1}" for k in range(len(case.figures)))})
            for fig in case.figures:
                if fig.corrupt:
                    planted.append(fault(self.name, f"../{STORE}/{fig.file}", "corrupt_jpeg"))
                if not fig.present:
                    planted.append(fault(self.name, f"../{STORE}/{fig.file}", "missing_file"))
        bad = dict(tables["train"][0], img_ref="F1, F2", question="Q: Which lobe was affected?")
        tables["train"].insert(1, bad)
        planted.append(fault(self.name, f"radfm/{RADFM_FILES['train']}", "bad_row", row=1))
        rows = {}
        for split, table in tables.items():
            rel = f"radfm/{RADFM_FILES[split]}"
            rows[rel] = write_csv(root / rel, COLUMNS, [[r[c] for c in COLUMNS] for r in table])
            rel = f"data/{split}-00000-of-00001.parquet"
            write_bytes(root / rel, parquet_bytes(table))
            rows[rel] = len(table)
        info = {"root": str(root), "cases": len(corpus.cases), "rows": rows}
        return info, planted


FIXTURE = PmcCaseReportFixture()
