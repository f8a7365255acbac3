"""SIIM-ACR Pneumothorax Segmentation (the original Kaggle release): ``diagnosis_open`` and ``diagnosis_yesno``, 2D
stream, DICOM.

Layout::

    <raw>/dicom-images-train/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm    (JPEG baseline DICOMs)
    <raw>/dicom-images-test/…                                                              (unlabelled, not used)
    <raw>/train-rle.csv          ImageId, EncodedPixels (the header has a space before EncodedPixels): one row per
                                 pneumothorax region as run-length pairs, or one row ``-1``: no pneumothorax

Native mode: one record per ImageId, its image found by file name under ``dicom-images-train``; a mask is the finding
``Pneumothorax``, ``-1`` answers ``No pneumothorax``; an EncodedPixels that is neither ``-1`` nor an even number of
integers is a ``bad_row``, an image with both ``-1`` and masks a ``no_label`` reject. There is no labelled test set:
20 % of the images are test by a stable hash of the ImageId. RadFM mode: its rows of the shared chest files,
recognised by the DICOM UID file name.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import polars as pl

from pipelines.records import Record, Reject
from pipelines.sources.base import BuildContext
from pipelines.sources.diagnosis import DiagnosisSource, hashed_split, label_frame, listed_labels, row_rejects

LABELS = "train-rle.csv"
IMAGES = "dicom-images-train"
RLE = r"^\d+(?: \d+)*$"


class SiimACR(DiagnosisSource):
    name = "siim_acr"
    findings = ("Pneumothorax",)
    normal = "No pneumothorax"
    radfm_path = re.compile(r"(?:^|/)\d+(?:\.\d+){6,}\.(?:dcm|dicom|png|jpe?g)$")
    converted_suffixes = (".dcm",)

    def native_records(self, ctx: BuildContext) -> Iterator[Record | Reject]:
        frame, rejects = label_frame(self.name, ctx.raw / LABELS, ("ImageId",), "label table")
        yield from rejects
        if frame is None:
            return
        if "EncodedPixels" not in frame.columns:
            yield self.reject(LABELS, LABELS, "bad_file", f"{ctx.raw / LABELS}: no EncodedPixels column "
                              f"(has: {', '.join(c for c in frame.columns if not c.startswith('_'))})")
            return
        pixels = pl.col("EncodedPixels")
        frame = frame.with_columns(
            pl.when(pl.col("ImageId") == "").then(pl.lit("empty ImageId"))
            .when((pixels != "-1") & ~(pixels.str.contains(RLE) & (pixels.str.count_matches(r"\d+") % 2 == 0)))
            .then(pl.lit("EncodedPixels is neither -1 nor run-length pairs"))
            .otherwise(pl.lit("")).alias("_problem"),
            pl.when(pixels == "-1").then(pl.lit(self.normal)).otherwise(pl.lit(self.findings[0])).alias("_name"))
        yield from row_rejects(self.name, LABELS, frame, "ImageId")
        files = {p.stem: str(p.relative_to(ctx.raw)) for p in sorted((ctx.raw / IMAGES).glob("*/*/*.dcm"))}
        for item in listed_labels(frame.filter(pl.col("_problem") == ""), "ImageId", "_name", self.normal,
                                  self.findings, conflict=True):
            rel = files.get(item.key, f"{IMAGES}/{item.key}.dcm")
            yield self.labels_record(ctx, item, rel, hashed_split(self.name, item.key), LABELS)


SOURCE = SiimACR()
