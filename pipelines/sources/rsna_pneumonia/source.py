"""RSNA Pneumonia Detection Challenge (stage 2): ``diagnosis_open`` and ``diagnosis_yesno``, 2D stream, DICOM.

Layout (the Kaggle download)::

    <raw>/stage_2_train_images/<patientId>.dcm        26,684 chest radiographs (DICOM, JPEG baseline, 1024 x 1024)
    <raw>/stage_2_train_labels.csv                    patientId,x,y,width,height,Target: one row per lung-opacity box
                                                      (Target 1), or one row with empty box (Target 0)
    <raw>/stage_2_detailed_class_info.csv             patientId,class (not needed: Target decides)
    <raw>/stage_2_test_images/                        unlabelled (not used)

Native mode: one record per patient (one image each): ``Target`` 1 on its rows is the finding ``Pneumonia`` (the
challenge's label: opacities suggestive of pneumonia), 0 answers ``No pneumonia``; a Target 1 row needs its box, a
Target 0 row has none (else ``bad_row``), and a patient whose rows disagree is a ``no_label`` reject. There is no
labelled test set: 20 % of the patients are test by a stable hash of the patientId. RadFM mode: its rows of the
shared chest files, recognised by the patientId (a UUID) file name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import polars as pl

from pipelines.records import Record, Reject
from pipelines.sources.base import BuildContext
from pipelines.sources.diagnosis import DiagnosisSource, hashed_split, label_frame, listed_labels, row_rejects

LABELS = "stage_2_train_labels.csv"
IMAGES = "stage_2_train_images"
BOX = ("x", "y", "width", "height")


class RsnaPneumonia(DiagnosisSource):
    name = "rsna_pneumonia"
    findings = ("Pneumonia",)
    normal = "No pneumonia"
    radfm_path = re.compile(r"(?:^|/)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.(?:dcm|dicom|png|jpe?g)$")
    converted_suffixes = (".dcm",)

    def native_records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        frame, rejects = label_frame(self.name, ctx.raw / LABELS, ("patientId", *BOX, "Target"), "label table")
        yield from rejects
        if frame is None:
            return
        numeric = pl.all_horizontal([pl.col(c).str.contains(r"^\d+(?:\.\d+)?$") for c in BOX])
        empty = pl.all_horizontal([pl.col(c) == "" for c in BOX])
        frame = frame.with_columns(
            pl.when(pl.col("patientId") == "").then(pl.lit("empty patientId"))
            .when(~pl.col("Target").is_in(["0", "1"])).then(pl.format("Target {} is neither 0 nor 1", pl.col("Target")))
            .when((pl.col("Target") == "1") & ~numeric).then(pl.lit("a Target 1 row without its box"))
            .when((pl.col("Target") == "0") & ~empty).then(pl.lit("a Target 0 row with a box"))
            .otherwise(pl.lit("")).alias("_problem"),
            pl.when(pl.col("Target") == "1").then(pl.lit(self.findings[0])).otherwise(pl.lit(self.normal)).alias("_name"))
        yield from row_rejects(self.name, LABELS, frame, "patientId")
        for item in listed_labels(frame.filter(pl.col("_problem") == ""), "patientId", "_name", self.normal,
                                  self.findings, conflict=True):
            yield self.labels_record(ctx, item, f"{IMAGES}/{item.key}.dcm", hashed_split(self.name, item.key), LABELS)


SOURCE = RsnaPneumonia()
