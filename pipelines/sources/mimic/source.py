"""MIMIC-CXR (JPG release + reports): the ``report`` task, 2D stream.

Layout (what a credentialed user downloads)::

    <raw>/files/p10/p10000032/s50414267/<dicom_id>.jpg     images (MIMIC-CXR-JPG)
    <raw>/files/p10/p10000032/s50414267.txt                 free-text report (MIMIC-CXR)
    <raw>/mimic-cxr-2.0.0-split.csv.gz                      dicom_id,study_id,subject_id,split
    <raw>/mimic-cxr-2.0.0-metadata.csv.gz                   (optional) ViewPosition per dicom_id
    <radfm>/mimic_caption_{train,test}.csv                  RadFM split files: image_path,label

Modes:
* ``radfm``: one sample per row of RadFM's caption CSVs; their absolute ``image_path``
  values are remapped onto the raw root; ``label`` ("Findings: … Impression: …") is the answer.
* ``native``: one sample per image of the official split file, the answer built from the
  study report's FINDINGS and IMPRESSION sections (``sections.py``: the report shapes the official MIMIC-CXR
  tooling documents; a report with neither is rejected ``no_report_sections``).
  Reports are looked for next to the images, then under ``<raw>/mimic-cxr-reports``. The metadata file is optional:
  when it is broken it is reported (``bad_file``) and the views are left empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pipelines.paths import UnresolvedPath
from pipelines.records import ImageRef, Record, RecordFields, Reject, SampleSpec
from pipelines.sources.base import BuildContext, Source, Vocabulary
from pipelines.sources.mimic.sections import report_answer
from pipelines.sources.tables import Row, optional_table, table_rows, text_file
from pipelines.tasks import ReportInputs

RADFM_FILES = {"train": "mimic_caption_train.csv", "test": "mimic_caption_test.csv"}
SPLIT_FILE = "mimic-cxr-2.0.0-split.csv.gz"
METADATA_FILE = "mimic-cxr-2.0.0-metadata.csv.gz"
REPORT_DIRS = (".", "mimic-cxr-reports")

@dataclass(frozen=True)
class MimicFields(RecordFields):
    report: str  # "Findings: … Impression: …"
    study_id: str = ""  # native mode
    view: str = ""  # native mode: ViewPosition from the metadata file, when present


class Mimic(Source):
    name = "mimic"
    modes = ("radfm", "native")
    default_mode = "radfm"

    def records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        if ctx.mode == "radfm":
            yield from self._radfm_records(ctx)
        else:
            yield from self._native_records(ctx)

    def samples(self, record: Record[MimicFields], vocab: Vocabulary, ctx: BuildContext) -> list[SampleSpec]:
        return [ctx.sample(record, ReportInputs(record.fields.report, prompt_kind="report", position="end"))]

    def _record(self, rel: str, split: str, fields: MimicFields) -> Record[MimicFields]:
        return Record(dataset=self.name, source_id=rel, split=split, stream="2d", images=(ImageRef(rel, "image2d"),),
                      fields=fields, modality="X-ray")

    # -- RadFM split files ----------------------------------------------------------------

    def _radfm_records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        for split, name in RADFM_FILES.items():
            for row in table_rows(self.name, ctx.radfm_dir / name, ("image_path", "label"), "RadFM split file"):
                if isinstance(row, Reject):
                    yield row
                    continue
                yield self._radfm_row(ctx, name, split, row)

    def _radfm_row(self, ctx: BuildContext, name: str, split: str, row: Row) -> Record | Reject:
        image_path, label = row.values["image_path"].strip(), row.values["label"].strip()
        if not image_path or not label:
            empty = "image_path" if not image_path else "label"
            return self.reject(f"{name}:line{row.line}", name, "bad_row", f"{name} line {row.line}: empty {empty}")
        try:
            rel = ctx.resolver.resolve(image_path)
        except UnresolvedPath as exc:
            return self.reject(image_path, image_path, exc.reason, f"{name} line {row.line}: {exc}")
        return self._record(rel, split, MimicFields(label))

    # -- native layout ------------------------------------------------------------------

    def _native_records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        metadata, bad_metadata = optional_table(self.name, ctx.raw / METADATA_FILE, ("dicom_id", "ViewPosition"))
        yield from bad_metadata
        views = {r.values["dicom_id"]: r.values["ViewPosition"] for r in metadata}
        answers: dict[str, str | Reject] = {}
        required = ("dicom_id", "study_id", "subject_id", "split")
        for row in table_rows(self.name, ctx.raw / SPLIT_FILE, required, "official split file"):
            if isinstance(row, Reject):
                yield row
                continue
            v = row.values
            dicom, study, subject, split = v["dicom_id"], v["study_id"], v["subject_id"], v["split"]
            if not (dicom and study.isdigit() and subject.isdigit() and split):
                yield self.reject(f"{SPLIT_FILE}:line{row.line}", SPLIT_FILE, "bad_row",
                                  f"{SPLIT_FILE} line {row.line}: bad ids {v}")
                continue
            study_dir = f"files/p{subject[:2]}/p{subject}/s{study}"
            rel = f"{study_dir}/{dicom}.jpg"
            if study not in answers:
                answers[study] = self._study_answer(ctx, study_dir)
            answer = answers[study]
            if isinstance(answer, Reject):
                yield Reject(self.name, rel, answer.file, answer.reason, answer.message, "plan")
                continue
            yield self._record(rel, split, MimicFields(answer, study_id=study, view=views.get(dicom, "")))

    def _study_answer(self, ctx: BuildContext, study_dir: str) -> str | Reject:
        for base in REPORT_DIRS:
            rel = str(Path(base, f"{study_dir}.txt")).removeprefix("./")
            if (ctx.raw / rel).exists():
                text = text_file(self.name, ctx.resolver, rel, study_dir, "report")
                if isinstance(text, Reject):
                    return text
                answer = report_answer(text)
                if answer is None:
                    return self.reject(study_dir, rel, "no_report_sections", f"{rel}: neither FINDINGS nor IMPRESSION section")
                return answer
        return self.reject(study_dir, f"{study_dir}.txt", "missing_file", f"report {study_dir}.txt not found under {ctx.raw}")


SOURCE = Mimic()
