"""OpenI (Indiana University chest X-rays, the Kaggle ``chest-xrays-indiana-university`` layout): ``report``,
``diagnosis_open`` and ``diagnosis_yesno``, 2D stream, PNG.

Layout::

    <raw>/indiana_reports.csv        uid,MeSH,Problems,image,indication,comparison,findings,impression: one row per study
    <raw>/indiana_projections.csv    uid,filename,projection: one row per image, projection Frontal / Lateral
    <raw>/images/images_normalized/<filename>          e.g. 1_IM-0001-4001.dcm.png

Native mode: one record per study holding its images in a fixed order (frontal before lateral, then by file name),
so every sample sees the frontal and the lateral view together. Tasks: ``report`` when the study has findings or an
impression (``Findings: … Impression: …`` as for MIMIC-CXR), and the diagnosis tasks from ``Problems`` (``;``-separated
MeSH terms, inverted headings put in reading order: ``Hernia, Hiatal`` -> ``Hiatal Hernia``; ``normal`` is the normal
label; ``No Indexing`` or empty: no diagnosis sample). The de-identification
mark ``XXXX`` is written as MIMIC-CXR's ``___`` (one placeholder for both report sources). A projection row with
another projection value, an unknown uid or a missing image is a reject of its own, and a study left without an image
is rejected. There is no official split: 20 % of the studies are test by a stable hash of the uid. RadFM mode: its
rows of the shared chest files (one image each), recognised by the ``<uid>_IM-NNNN-NNNN`` names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import polars as pl

from pipelines.records import ImageRef, Record, Reject, SampleSpec
from pipelines.sources.base import BuildContext
from pipelines.sources.diagnosis import (
    LINE,
    DiagnosisFields,
    DiagnosisSource,
    DiagnosisVocabulary,
    hashed_split,
    label_frame,
    row_rejects,
)
from pipelines.tasks import ReportInputs

REPORTS = "indiana_reports.csv"
PROJECTIONS = "indiana_projections.csv"
IMAGES = "images/images_normalized"
ORDER = {"Frontal": 0, "Lateral": 1}
UNINDEXED = "No Indexing"
DEID = re.compile(r"\bX{4,}\b")


def deidentified(text: str) -> str:
    """OpenI's ``XXXX`` marks written as ``___``, whitespace collapsed."""
    return " ".join(DEID.sub("___", text).split())


def problem_names(text: str) -> tuple[str, ...]:
    """The ``;``-separated Problems as finding names, MeSH's inverted headings put in reading order
    (``Hernia, Hiatal`` -> ``Hiatal Hernia``): a name holds no comma, so an answer listing names stays splittable."""
    names = []
    for part in text.split(";"):
        words = [w.strip() for w in part.split(",") if w.strip()]
        if words:
            names.append(" ".join([*reversed(words[1:]), words[0]]))
    return tuple(dict.fromkeys(names))


def report_text(findings: str, impression: str) -> str:
    parts = [f"Findings: {findings}" if findings else "", f"Impression: {impression}" if impression else ""]
    return " ".join(p for p in parts if p)


class OpenI(DiagnosisSource):
    name = "openi"
    normal = "normal"
    radfm_path = re.compile(r"(?:^|/)(?:CXR)?\d+(?:_\d+)?_IM-\d{4}-\d{4,5}(?:-\d+)?(?:\.dcm)?\.png$")

    def native_records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        reports, rejects = label_frame(self.name, ctx.raw / REPORTS, ("uid", "Problems", "findings", "impression"),
                                       "report table", multiline=True)
        yield from rejects
        images, rejects = label_frame(self.name, ctx.raw / PROJECTIONS, ("uid", "filename", "projection"),
                                      "projection table")
        yield from rejects
        if reports is None:
            return
        reports = reports.with_columns(
            pl.when(pl.col("uid") == "").then(pl.lit("empty uid"))
            .when(pl.col("uid").is_duplicated() & (pl.col(LINE) != pl.col(LINE).min().over("uid")))
            .then(pl.lit("uid listed again")).otherwise(pl.lit("")).alias("_problem"))
        yield from row_rejects(self.name, REPORTS, reports, "uid")
        reports = reports.filter(pl.col("_problem") == "")
        by_uid: dict[str, list[tuple[int, str, str]]] = {}
        if images is not None:
            images = images.with_columns(
                pl.when(~pl.col("projection").is_in(list(ORDER))).then(pl.format("projection {} is neither Frontal nor "
                                                                                  "Lateral", pl.col("projection")))
                .when(pl.col("filename") == "").then(pl.lit("empty filename"))
                .when(~pl.col("uid").is_in(reports["uid"].implode())).then(pl.lit(f"uid not in {REPORTS}"))
                .otherwise(pl.lit("")).alias("_problem"))
            yield from row_rejects(self.name, PROJECTIONS, images, "filename")
            for line, uid, filename, projection in images.filter(pl.col("_problem") == "").sort(
                    "uid", pl.col("projection").replace_strict(ORDER, return_dtype=pl.Int8), "filename").select(
                    LINE, "uid", "filename", "projection").iter_rows():
                by_uid.setdefault(uid, []).append((line, filename, projection))
        for row in reports.iter_rows(named=True):
            kept = []
            for line, filename, projection in by_uid.get(row["uid"], []):
                image = self.local_image(ctx, f"{IMAGES}/{filename}", f"{PROJECTIONS} line {line}")
                if isinstance(image, Reject):
                    yield image
                else:
                    kept.append((image, projection))
            yield self._study(row, kept)

    def _study(self, row: dict, images: list[tuple[ImageRef, str]]) -> Record | Reject:
        uid, where = row["uid"], f"{REPORTS} line {row[LINE]}"
        source_id = f"study:{uid}"
        if not images:
            return self.reject(source_id, REPORTS, "missing_file", f"{where}: study {uid} has no usable image in "
                               f"{PROJECTIONS}")
        names = problem_names(deidentified(row["Problems"]))
        labelled = bool(names) and UNINDEXED not in names
        report = report_text(deidentified(row["findings"]), deidentified(row["impression"]))
        if not labelled and not report:
            return self.no_label(source_id, REPORTS, f"{where}: study {uid} has neither Problems nor a report")
        findings = tuple(sorted(n for n in names if n.lower() != self.normal)) if labelled else ()
        fields = DiagnosisFields(findings, labelled=labelled, view="+".join(p for _, p in images), report=report)
        return self.record(source_id, hashed_split(self.name, uid), tuple(ref for ref, _ in images), fields)

    def extra_samples(self, record: Record, vocab: DiagnosisVocabulary, ctx: BuildContext) -> list[SampleSpec]:
        if not record.fields.report:
            return []
        return [ctx.sample(record, ReportInputs(record.fields.report, prompt_kind="report", position="end"))]


SOURCE = OpenI()
