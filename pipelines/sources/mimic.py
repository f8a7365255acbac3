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
  study report's FINDINGS and IMPRESSION sections (a report with neither is rejected).
  Reports are looked for next to the images, then under ``<raw>/mimic-cxr-reports``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from pipelines import tasks
from pipelines.paths import UnresolvedPath
from pipelines.records import ImageRef, Record, Reject, SampleSpec
from pipelines.sources.base import BuildContext, MissingColumns, Source, read_table

RADFM_FILES = {"train": "mimic_caption_train.csv", "test": "mimic_caption_test.csv"}
SPLIT_FILE = "mimic-cxr-2.0.0-split.csv.gz"
METADATA_FILE = "mimic-cxr-2.0.0-metadata.csv.gz"
REPORT_DIRS = (".", "mimic-cxr-reports")

_SECTION = re.compile(r"^\s*([A-Z][A-Z /&()-]{2,}):", re.MULTILINE)


def report_sections(text: str) -> dict[str, str]:
    """Upper-case ``NAME:`` headed sections of a MIMIC report, whitespace collapsed."""
    matches = list(_SECTION.finditer(text))
    sections = {}
    for m, nxt in zip(matches, matches[1:] + [None]):
        body = text[m.end() : nxt.start() if nxt else len(text)]
        sections[m.group(1).strip()] = " ".join(body.split())
    return sections


def report_answer(text: str) -> str | None:
    """RadFM's answer format: ``Findings: … Impression: …`` (either part may be absent)."""
    sections = report_sections(text)
    findings = sections.get("FINDINGS", "")
    impression = sections.get("IMPRESSION", "")
    parts = [f"Findings: {findings}" if findings else "", f"Impression: {impression}" if impression else ""]
    answer = " ".join(p for p in parts if p)
    return answer or None


class Mimic(Source):
    name = "mimic"
    modes = ("radfm", "native")
    default_mode = "radfm"

    def records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        if ctx.mode == "radfm":
            yield from self._radfm_records(ctx)
        else:
            yield from self._native_records(ctx)

    def samples(self, record: Record, ctx: BuildContext) -> list[SampleSpec]:
        rng = tasks.task_rng(ctx.seed, record, "report")
        return [tasks.report(rng, record, record.fields["report"], prompt_kind="report", max_images=ctx.image.max_images)]

    # -- RadFM split files ----------------------------------------------------------------

    def _radfm_records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        for split, name in RADFM_FILES.items():
            path = ctx.radfm_dir / name
            if not path.exists():
                yield self.reject(f"{name}", name, "missing_file", f"RadFM split file {path} not found")
                continue
            try:
                rows, bad = read_table(path, ("image_path", "label"))
            except MissingColumns as exc:
                yield self.reject(name, name, "bad_file", str(exc))
                continue
            for msg in bad:
                yield self.reject(name, name, "bad_row", f"{name}: {msg}")
            for row in rows:
                where = f"{name}:row{row.line}"
                image_path, label = row.values["image_path"].strip(), row.values["label"].strip()
                if not image_path or not label:
                    empty = "image_path" if not image_path else "label"
                    yield self.reject(where, name, "bad_row", f"{name} row {row.line}: empty {empty}")
                    continue
                try:
                    rel = ctx.resolver.resolve(image_path)
                except UnresolvedPath as exc:
                    yield self.reject(image_path, image_path, "missing_file", f"{name} row {row.line}: {exc}")
                    continue
                yield Record(self.name, rel, split, "2d", (ImageRef(rel, "image2d"),), {"report": label}, "X-ray")

    # -- native layout ------------------------------------------------------------------

    def _native_records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        split_path = ctx.raw / SPLIT_FILE
        if not split_path.exists():
            yield self.reject(SPLIT_FILE, SPLIT_FILE, "missing_file", f"official split file {split_path} not found")
            return
        rows, bad = read_table(split_path, ("dicom_id", "study_id", "subject_id", "split"))
        for msg in bad:
            yield self.reject(SPLIT_FILE, SPLIT_FILE, "bad_row", f"{SPLIT_FILE}: {msg}")
        views = self._views(ctx.raw)
        answers: dict[str, str | Reject] = {}
        for row in rows:
            v = row.values
            dicom, study, subject, split = v["dicom_id"], v["study_id"], v["subject_id"], v["split"]
            if not (dicom and study.isdigit() and subject.isdigit() and split):
                yield self.reject(f"{SPLIT_FILE}:row{row.line}", SPLIT_FILE, "bad_row", f"{SPLIT_FILE} row {row.line}: bad ids {v}")
                continue
            study_dir = f"files/p{subject[:2]}/p{subject}/s{study}"
            rel = f"{study_dir}/{dicom}.jpg"
            if study not in answers:
                answers[study] = self._study_answer(ctx.raw, study_dir)
            answer = answers[study]
            if isinstance(answer, Reject):
                yield Reject(self.name, rel, answer.file, answer.reason, answer.message, "plan")
                continue
            fields = {"report": answer, "study_id": study, "view": views.get(dicom, "")}
            yield Record(self.name, rel, split, "2d", (ImageRef(rel, "image2d"),), fields, "X-ray")

    def _study_answer(self, raw: Path, study_dir: str) -> str | Reject:
        for base in REPORT_DIRS:
            rel = str(Path(base, f"{study_dir}.txt")).removeprefix("./")
            path = raw / rel
            if path.exists():
                answer = report_answer(path.read_text("utf-8", errors="replace"))
                if answer is None:
                    return self.reject(study_dir, rel, "no_report_sections", f"{rel}: neither FINDINGS nor IMPRESSION section")
                return answer
        return self.reject(study_dir, f"{study_dir}.txt", "missing_file", f"report {study_dir}.txt not found under {raw}")

    @staticmethod
    def _views(raw: Path) -> dict[str, str]:
        path = raw / METADATA_FILE
        if not path.exists():
            return {}
        rows, _ = read_table(path, ("dicom_id", "ViewPosition"))
        return {r.values["dicom_id"]: r.values["ViewPosition"] for r in rows}


SOURCE = Mimic()
