"""VinDr-Mammo (PhysioNet ``vindr-mammo`` 1.0.0): ``diagnosis_open`` and ``diagnosis_yesno`` with the ``mammo``
prompts, 2D stream, DICOM.

Layout::

    <raw>/images/<study_id>/<image_id>.dicom       20,000 full-field digital mammograms, 4 views per study
    <raw>/breast-level_annotations.csv             study_id,series_id,image_id,laterality,view_position,height,width,
                                                   breast_birads,breast_density,split   (one row per image;
                                                   split ``training`` / ``test``)
    <raw>/finding_annotations.csv                  the same ids, then finding_categories (a list literal such as
                                                   ``['Mass', 'Suspicious Calcification']`` or ``['No Finding']``),
                                                   finding_birads, xmin,ymin,xmax,ymax, split: one row per finding

Native mode: one record per row of the breast-level table (its split as published), its findings the categories of
the image's finding rows; an image without any finding row is a ``no_label`` reject, a finding row of an image the
breast-level table does not list a ``bad_row``. Mammograms are stored like every 2D image (squashed to a square, as
RadFM's random resized crop did) and not flipped: a right breast keeps its chest wall on the side the DICOM has it;
laterality and view are kept in the record (``view``: ``R-CC``, ``L-MLO`` …). RadFM mode: ``mammo_{train_new,test}.csv``
and ``mammo_balance_{train,test}.csv``, whose paths name RadFM's PNG copies ``process/images/<study>/<image>.png``
(the DICOM is used).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import polars as pl

from pipelines.records import Record, Reject
from pipelines.sources.base import BuildContext
from pipelines.sources.diagnosis import LINE, MAMMO_FILES, DiagnosisSource, label_frame, listed_labels, row_rejects

BREAST_FILE = "breast-level_annotations.csv"
FINDING_FILE = "finding_annotations.csv"
SPLITS = {"training": "train", "test": "test"}
FINDINGS = ("Mass", "Suspicious Calcification", "Asymmetry", "Focal Asymmetry", "Global Asymmetry",
            "Architectural Distortion", "Skin Thickening", "Skin Retraction", "Nipple Retraction",
            "Suspicious Lymph Node")
#: a Python list literal of quoted names, as the finding table writes it
CATEGORY_LIST = r"^\[\s*'[^']+'(?:\s*,\s*'[^']+')*\s*\]$"


class VinDrMammo(DiagnosisSource):
    name = "vindr_mammo"
    prompt_kind = "mammo"
    findings = FINDINGS
    normal = "No Finding"
    modality = "Mammography"
    radfm = MAMMO_FILES
    radfm_path = re.compile(r"(?:^|/)images/[0-9a-f]{32}/[0-9a-f]{32}\.(?:dicom|dcm|png|jpe?g)$")
    converted_suffixes = (".dicom",)

    def native_records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        images, rejects = label_frame(self.name, ctx.raw / BREAST_FILE,
                                      ("study_id", "image_id", "laterality", "view_position", "split"), "annotation table")
        yield from rejects
        findings, rejects = label_frame(self.name, ctx.raw / FINDING_FILE, ("image_id", "finding_categories"),
                                        "annotation table")
        yield from rejects
        if images is None:
            return
        images = images.with_columns(
            pl.when((pl.col("study_id") == "") | (pl.col("image_id") == "")).then(pl.lit("empty study_id or image_id"))
            .when(~pl.col("split").is_in(list(SPLITS))).then(pl.lit("split is neither 'training' nor 'test'"))
            .otherwise(pl.lit("")).alias("_problem"))
        yield from row_rejects(self.name, BREAST_FILE, images, "image_id")
        images = images.filter(pl.col("_problem") == "")
        labels = {}
        if findings is not None:
            known = images.select("image_id").unique()
            findings = findings.with_columns(
                pl.when(~pl.col("finding_categories").str.contains(CATEGORY_LIST))
                .then(pl.lit("finding_categories is not a list of quoted names"))
                .when(~pl.col("image_id").is_in(known["image_id"].implode()))
                .then(pl.lit(f"image_id not listed in {BREAST_FILE}"))
                .otherwise(pl.lit("")).alias("_problem"))
            yield from row_rejects(self.name, FINDING_FILE, findings, "image_id")
            named = (findings.filter(pl.col("_problem") == "")
                     .with_columns(pl.col("finding_categories").str.extract_all(r"'[^']+'").alias("_name"))
                     .explode("_name").with_columns(pl.col("_name").str.strip_chars("'").str.strip_chars()))
            labels = {item.key: item for item in listed_labels(named, "image_id", "_name", self.normal, self.findings)}
        for row in images.iter_rows(named=True):
            rel = f"images/{row['study_id']}/{row['image_id']}.dicom"
            item = labels.get(row["image_id"])
            if item is None:
                yield self.no_label(rel, FINDING_FILE, f"{BREAST_FILE} line {row[LINE]}: image {row['image_id']} has no "
                                    f"row in {FINDING_FILE}")
                continue
            view = f"{row['laterality']}-{row['view_position']}"
            yield self.labels_record(ctx, item, rel, SPLITS[row["split"]], FINDING_FILE, view)


SOURCE = VinDrMammo()
