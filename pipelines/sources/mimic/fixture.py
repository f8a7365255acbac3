"""The MIMIC-CXR demo fixture: MIMIC-CXR-JPG's native layout (images, reports, split and metadata tables) and
RadFM's caption CSVs, with chest radiographs synthesised from a real CR and real OpenI report text.

Planted faults: a truncated JPEG and an empty one (in train studies), a RadFM row whose image is not part of the
download, a RadFM row with an empty ``image_path``; report variants: two impression-only reports and one with
neither section (an addendum only).
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from pipelines.demo.content import CHEST_CR, OPENI_REPORTS, OpenIReport, collapse, load_chest_base, load_openi_reports
from pipelines.demo.faults import fault, truncated
from pipelines.demo.fixture import DemoOptions, Fixture
from pipelines.demo.synth import ChestParams, distinct_ints, draw_chest_params, render_chest
from pipelines.demo.writers import jpeg_bytes, write_bytes, write_csv, write_csv_gz, write_text

#: Prefix of the image paths in RadFM's MIMIC split files (does not exist locally).
RADFM_PREFIX = "/gpfs/home/cs/leijiayu/data/MIMIC-CXR/"
JPEG_QUALITY = 90
DEFAULT_STUDIES = 24
MIN_STUDIES = 8

VIEW_MEANING = {"PA": "postero-anterior", "AP": "antero-posterior", "LATERAL": "lateral"}

ADDENDUM_TEXT = (
    "The study was reviewed again at the request of the clinical team. There is no change "
    "to the original interpretation. The result was discussed with Dr. ___ by telephone "
    "at 10:15 on ___, at the time of the review."
)


@dataclass
class MimicImage:
    dicom_id: str
    view: str
    params: ChestParams
    fault: str | None = None  # corrupt_jpeg / empty_file

    @property
    def rows(self) -> int:
        return self.params.out_h

    @property
    def columns(self) -> int:
        return self.params.out_w


@dataclass
class MimicStudy:
    subject_id: int
    study_id: int
    report: OpenIReport
    images: list[MimicImage] = field(default_factory=list)
    split: str = "train"
    sections: str = "full"  # full / impression_only / none
    study_date: int = 0
    study_time: str = ""

    @property
    def rel_dir(self) -> str:
        s = str(self.subject_id)
        return f"files/p{s[:2]}/p{s}/s{self.study_id}"

    @property
    def rel_report(self) -> str:
        return f"{self.rel_dir}.txt"

    def rel_image(self, dicom_id: str) -> str:
        return f"{self.rel_dir}/{dicom_id}.jpg"

    @property
    def procedure(self) -> str:
        views = [im.view for im in self.images]
        if "LATERAL" in views:
            return "CHEST (PA AND LAT)"
        return "CHEST (PORTABLE AP)" if views == ["AP"] else "CHEST (SINGLE VIEW)"

    @property
    def label(self) -> str:
        """RadFM's caption: ``Findings: ... Impression: ...`` ('' when neither exists)."""
        if self.sections == "none":
            return ""
        impression = f"Impression: {collapse(self.report.impression)}"
        if self.sections == "impression_only":
            return impression
        return f"Findings: {collapse(self.report.findings)} {impression}"


def _views_for(n_images: int, rng: np.random.Generator) -> list[str]:
    if n_images == 1:
        return ["AP"] if rng.random() < 0.5 else ["PA"]
    return ["PA", "LATERAL", "LATERAL"][:n_images]


def plan_mimic(
    rng: np.random.Generator,
    n_studies: int,
    reports: Sequence[OpenIReport],
    src_size: tuple[int, int],
    image_size: int | tuple[int, int] | None,
) -> list[MimicStudy]:
    """Ids, splits, views, image parameters and report variants of every study."""
    n_subjects = max(4, round(n_studies * 0.65))
    subjects = sorted(distinct_ints(rng, n_subjects, 10_000_000, 20_000_000))
    study_ids = distinct_ints(rng, n_studies, 50_000_000, 60_000_000)
    extra = rng.integers(0, n_subjects, n_studies - n_subjects)
    owners = list(range(n_subjects)) + [int(i) for i in extra]  # every subject has >= 1 study
    studies: list[MimicStudy] = []
    for k, owner in enumerate(sorted(owners)):
        study = MimicStudy(subject_id=subjects[owner], study_id=study_ids[k], report=reports[k])
        n_images = int(rng.choice([1, 2, 3], p=[0.45, 0.45, 0.10]))
        for view in _views_for(n_images, rng):
            params = draw_chest_params(rng, src_size, view == "LATERAL", image_size)
            study.images.append(MimicImage(_hex_id(rng), view, params))
        year, month, day = (int(rng.integers(lo, hi)) for lo, hi in ((2110, 2200), (1, 13), (1, 29)))
        study.study_date = year * 10000 + month * 100 + day  # MIMIC's shifted dates
        secs, millis = int(rng.integers(0, 86400)), int(rng.integers(0, 1000))
        study.study_time = f"{secs // 3600}{secs // 60 % 60:02d}{secs % 60:02d}.{millis:03d}"
        studies.append(study)
    studies.sort(key=lambda s: (s.subject_id, s.study_id))
    _assign_mimic_splits(rng, studies)
    _assign_mimic_variants(rng, studies)
    return studies


def _assign_mimic_splits(rng: np.random.Generator, studies: list[MimicStudy]) -> None:
    """~80/10/10 train/validate/test by study; all studies of a subject share a split."""
    by_subject: dict[int, list[MimicStudy]] = {}
    for study in studies:
        by_subject.setdefault(study.subject_id, []).append(study)
    subjects = sorted(by_subject)
    target = max(1, round(0.1 * len(studies)))
    order = [subjects[int(i)] for i in rng.permutation(len(subjects))]
    for split in ("test", "validate"):
        taken = 0
        while taken < target and len(order) > 1:
            subject = order.pop()
            for study in by_subject[subject]:
                study.split = split
            taken += len(by_subject[subject])


def _assign_mimic_variants(rng: np.random.Generator, studies: list[MimicStudy]) -> None:
    """2 impression-only reports, 1 report with neither section, 1 corrupt + 1 empty JPEG."""
    order = [int(i) for i in rng.permutation(len(studies))]
    for k, idx in enumerate(order[:3]):
        studies[idx].sections = "impression_only" if k < 2 else "none"
    # Faulty images live in ordinary train studies, so they show up in RadFM's train csv.
    candidates = [i for i in order[3:] if studies[i].split == "train"]
    images = [im for i in candidates for im in studies[i].images]
    if len(images) < 2:
        images = [im for i in order[3:] for im in studies[i].images]
    images[0].fault = "corrupt_jpeg"
    images[-1].fault = "empty_file"


def mimic_report_text(study: MimicStudy) -> str:
    """A report in MIMIC-CXR's free-text layout, with the OpenI sections as content."""

    def para(text: str) -> list[str]:
        return textwrap.wrap(text, width=70, initial_indent=" ", subsequent_indent=" ")

    def heading(name: str, text: str) -> list[str]:
        return para(f"{name}:  {collapse(text)}") + [" "]  # two spaces, as in MIMIC

    r = study.report
    lines = ["                                 FINAL REPORT"]
    if study.sections == "none":
        lines += [" ADDENDUM:", " "] + para(collapse(ADDENDUM_TEXT))
        return "\n".join(lines) + "\n"
    views = [im.view for im in study.images]
    technique = "Chest PA and lateral" if "LATERAL" in views else f"Single {views[0]} view of the chest"
    lines += heading("EXAMINATION", study.procedure)
    lines += heading("INDICATION", collapse(r.indication) or "___")
    lines += heading("TECHNIQUE", technique)
    lines += heading("COMPARISON", collapse(r.comparison) or "None.")
    if study.sections == "full":
        lines += [" FINDINGS: ", " "] + para(collapse(r.findings)) + [" "]
    lines += [" IMPRESSION: ", " "] + para(collapse(r.impression))
    return "\n".join(lines) + "\n"


def write_mimic_images(root: Path, studies: Sequence[MimicStudy], base: Image.Image) -> int:
    count = 0
    for study in studies:
        for image in study.images:
            path = root / study.rel_image(image.dicom_id)
            if image.fault == "empty_file":
                write_bytes(path, b"")
            else:
                data = jpeg_bytes(render_chest(base, image.params), JPEG_QUALITY)
                if image.fault == "corrupt_jpeg":
                    data = truncated(data)  # valid header, truncated scan
                write_bytes(path, data)
            count += 1
    return count


def write_mimic_reports(root: Path, studies: Sequence[MimicStudy]) -> int:
    for study in studies:
        write_text(root / study.rel_report, mimic_report_text(study))
    return len(studies)


def write_mimic_tables(root: Path, studies: Sequence[MimicStudy]) -> dict[str, int]:
    split_rows, meta_rows = [], []
    for study in studies:
        for image in sorted(study.images, key=lambda im: im.dicom_id):
            split_rows.append([image.dicom_id, study.study_id, study.subject_id, study.split])
            meta_rows.append(
                [
                    image.dicom_id,
                    study.subject_id,
                    study.study_id,
                    study.procedure,
                    image.view,
                    image.rows,
                    image.columns,
                    study.study_date,
                    study.study_time,
                    study.procedure,
                    VIEW_MEANING[image.view],
                    "Recumbent" if image.view == "AP" else "Erect",
                ]
            )
    split_name, meta_name = "mimic-cxr-2.0.0-split.csv.gz", "mimic-cxr-2.0.0-metadata.csv.gz"
    return {
        split_name: write_csv_gz(root / split_name, ["dicom_id", "study_id", "subject_id", "split"], split_rows),
        meta_name: write_csv_gz(
            root / meta_name,
            [
                "dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription",
                "ViewPosition", "Rows", "Columns", "StudyDate", "StudyTime",
                "ProcedureCodeSequence_CodeMeaning", "ViewCodeSequence_CodeMeaning",
                "PatientOrientationCodeSequence_CodeMeaning",
            ],
            meta_rows,
        ),
    }


def write_mimic_radfm(
    root: Path, studies: Sequence[MimicStudy], rng: np.random.Generator, planted: list[dict]
) -> dict[str, int]:
    """RadFM's per-image caption csvs (train = train + validate studies)."""
    rows: dict[str, list[list[str]]] = {"train": [], "test": []}
    for study in studies:
        if not study.label:
            continue  # RadFM has no caption for a report without sections
        target = rows["test" if study.split == "test" else "train"]
        for image in study.images:
            target.append([RADFM_PREFIX + study.rel_image(image.dicom_id), study.label])

    train = rows["train"]
    # A row whose image is not part of the local download.
    host = next(s for s in studies if s.split != "test" and s.sections == "full")
    missing = host.rel_image(_hex_id(rng))
    train.insert(int(rng.integers(0, len(train) + 1)), [RADFM_PREFIX + missing, host.label])
    planted.append(fault("mimic", missing, "missing_file"))
    # A malformed row: empty image_path.
    bad_at = int(rng.integers(0, len(train) + 1))
    train.insert(bad_at, ["", host.label])
    planted.append(fault("mimic", "radfm/mimic_caption_train.csv", "bad_row", row=bad_at))

    header = ["image_path", "label"]
    return {
        f"radfm/mimic_caption_{name}.csv": write_csv(root / f"radfm/mimic_caption_{name}.csv", header, rows[name])
        for name in ("train", "test")
    }


def _hex_id(rng: np.random.Generator) -> str:
    """A MIMIC-style dicom_id: five dash-separated groups of 8 hex digits."""
    return "-".join(f"{int(v):08x}" for v in rng.integers(0, 2**32, size=5))


class MimicFixture(Fixture):
    name = "mimic"
    rng_stream = 1
    size_unit = "studies"
    default_size = DEFAULT_STUDIES
    min_size = MIN_STUDIES
    description = f"MIMIC-CXR-JPG native layout + RadFM split csvs (radfm/), prefix {RADFM_PREFIX}"
    requires = (OPENI_REPORTS, CHEST_CR)
    shard_args = ("--samples-per-shard-2d", "8")

    def write(self, root: Path, rng: np.random.Generator, size: int, options: DemoOptions) -> tuple[dict, list[dict]]:
        reports = load_openi_reports(rng, size)
        base = load_chest_base()
        studies = plan_mimic(rng, size, reports, base.size, options.image_size)
        planted: list[dict] = []
        n_images = write_mimic_images(root, studies, base)
        n_reports = write_mimic_reports(root, studies)
        rows = write_mimic_tables(root, studies)
        for study in studies:
            for image in study.images:
                if image.fault:
                    planted.append(fault("mimic", study.rel_image(image.dicom_id), image.fault))
        rows.update(write_mimic_radfm(root, studies, rng, planted))
        splits = {name: sum(s.split == name for s in studies) for name in ("train", "validate", "test")}
        info = {
            "root": str(root),
            "subjects": len({s.subject_id for s in studies}),
            "studies": len(studies),
            "images": n_images,
            "reports": n_reports,
            "splits": splits,
            "rows": rows,
            "radfm_prefix": RADFM_PREFIX,
            "report_variants": {
                "impression_only": [s.rel_report for s in studies if s.sections == "impression_only"],
                "no_sections": [s.rel_report for s in studies if s.sections == "none"],
            },
            "openi_ids": [s.report.uid for s in studies],
        }
        return info, planted


FIXTURE = MimicFixture()
